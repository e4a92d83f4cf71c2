"""OpenLineage events of a stage run: valid against the spec, sent to a real HTTP receiver on
loopback, linked to the flow run; a collector that is down costs a short timeout, never the run."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import jsonschema
import pytest

from db.models import AssetKind
from reelforge.core.settings import get_settings
from tasks.openlineage import emit_failures, emit_stage_run
from tasks.record import AssetRef
from tests.loopback import Receiver

SCHEMA = json.loads((Path(__file__).with_name("OpenLineage.json")).read_text())


def assert_valid(event: dict) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(event)


@pytest.fixture
def transport(monkeypatch):
    def use(kind: str, **env: str) -> None:
        monkeypatch.setenv("REELFORGE_OPENLINEAGE_TRANSPORT", kind)
        for key, value in env.items():
            monkeypatch.setenv(f"REELFORGE_OPENLINEAGE_{key.upper()}", value)
        get_settings.cache_clear()

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()


def _asset(kind: AssetKind, key: str) -> AssetRef:
    return AssetRef(id=uuid.uuid4(), kind=kind, uri=f"s3://private/{key}", sha256="ab" * 32)


def test_http_events_are_valid_and_linked_to_the_flow_run(transport):
    flow_run, task_run = uuid.uuid4(), uuid.uuid4()
    prompt, clip = _asset(AssetKind.prompt, "t/prompt/a.txt"), _asset(AssetKind.raw_clip, "t/c.mp4")
    with Receiver(status=200) as collector:
        transport("http", url=collector.url)
        emit_stage_run(
            "generate",
            flow_run_id=flow_run,
            task_run_id=task_run,
            inputs=[prompt],
            outputs=[clip],
            model_version="tiny@abc",
        )
    events = [json.loads(r.body) for r in collector.requests]
    assert {r.path for r in collector.requests} == {"/api/v1/lineage"}
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        assert_valid(event)
        assert event["run"]["runId"] == str(task_run)
        assert event["job"] == {"namespace": "reelforge", "name": "adhoc.generate", "facets": {}}
        assert event["run"]["facets"]["parent"]["run"]["runId"] == str(flow_run)
    done = events[1]
    assert done["inputs"][0]["namespace"] == "s3://private"
    assert done["inputs"][0]["name"] == "t/prompt/a.txt"
    (output,) = done["outputs"]
    assert output["facets"]["reelforge"]["sha256"] == clip.sha256
    assert output["facets"]["reelforge"]["kind"] == "raw_clip"
    assert output["facets"]["reelforge"]["modelVersion"] == "tiny@abc"


def test_a_failed_stage_sends_fail_with_the_error(transport, tmp_path):
    path = tmp_path / "ol.jsonl"
    transport("file", file=str(path))
    emit_stage_run("publish", flow_run_id=None, task_run_id=None, error="S3Error: gone")
    start, fail = (json.loads(line) for line in path.read_text().splitlines())
    for event in (start, fail):
        assert_valid(event)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert start["run"]["runId"] == fail["run"]["runId"]
    assert fail["run"]["facets"]["errorMessage"]["message"] == "S3Error: gone"


def test_a_collector_that_is_down_is_counted_not_raised(transport):
    with Receiver() as gone:
        url = gone.url  # a port nobody listens on once the receiver stops
    transport("http", url=url, timeout_seconds="1")
    before = emit_failures.count
    started = time.monotonic()
    emit_stage_run("enhance", flow_run_id=uuid.uuid4(), task_run_id=uuid.uuid4())
    assert time.monotonic() - started < 5
    assert emit_failures.count == before + 1


def test_off_by_default_sends_nothing(transport, tmp_path):
    transport("off", file=str(tmp_path / "ol.jsonl"))
    emit_stage_run("enhance", flow_run_id=None, task_run_id=None)
    assert not (tmp_path / "ol.jsonl").exists()
