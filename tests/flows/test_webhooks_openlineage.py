"""A generation calls back and shows up in OpenLineage: a loopback receiver gets a signed
``video.completed``; the file transport holds START and COMPLETE for every stage, linked to the
flow run and valid against the spec; a crash after the publish commit still delivers, once."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
from standardwebhooks import Webhook

from reelforge.core.failpoints import CRASH_EXIT_CODE
from tests.loopback import Receiver
from tests.reliability.conftest import PROMPT, cli, cli_env, failpoints
from tests.tasks.test_openlineage import assert_valid

pytestmark = [pytest.mark.slow]
JOB = ("--aspect", "1:1", "--seed", "5", "--fast")


def _register(receiver: Receiver, tenant: str, env: dict[str, str]) -> str:
    added = cli(
        "webhook", "add", f"{receiver.url}/rf", "--tenant", tenant,
        "--events", "video.completed,video.failed", env=env,
    )  # fmt: skip
    assert added.code == 0, (added.payload, added.stderr[-2000:])
    return added.payload["secret"]


def test_a_generation_calls_back_signed_and_emits_openlineage(stack, committed, tmp_path):
    tenant = f"wh-{uuid.uuid4().hex[:8]}"
    lineage_file = tmp_path / "openlineage.jsonl"
    env = cli_env(
        REELFORGE_WEBHOOK_ALLOW_PRIVATE="true",
        REELFORGE_OPENLINEAGE_TRANSPORT="file",
        REELFORGE_OPENLINEAGE_FILE=str(lineage_file),
    )
    with Receiver() as receiver:
        secret = _register(receiver, tenant, env)
        made = cli("generate", PROMPT, "--tenant", tenant, *JOB, env=env)
        assert made.code == 0, (made.payload, made.stderr[-2000:])
    (request,) = receiver.requests  # delivered by `generate` itself, right after the run
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == "video.completed"
    assert event["data"]["asset_id"] == made.payload["asset_id"]
    assert event["data"]["flow_run_id"] == made.payload["flow_run_id"]

    flow_run = made.payload["flow_run_id"]
    stages = {
        row.stage
        for row in committed(
            "SELECT stage FROM activities WHERE flow_run_id = :run AND status = 'succeeded'",
            run=flow_run,
        )
    }
    events = [json.loads(line) for line in lineage_file.read_text().splitlines()]
    for ol in events:
        assert_valid(ol)
        assert ol["run"]["facets"]["parent"]["run"]["runId"] == flow_run
    seen = Counter((ol["job"]["name"].rsplit(".", 1)[1], ol["eventType"]) for ol in events)
    assert stages >= {"ingest", "enhance", "text_safety", "generate", "publish"}
    for stage in stages:
        assert seen[(stage, "START")] >= 1 and seen[(stage, "START")] == seen[(stage, "COMPLETE")]
    (publish,) = [
        ol for ol in events if ol["job"]["name"].endswith(".publish") and ol["outputs"] == []
        and ol["eventType"] == "COMPLETE"
    ]  # fmt: skip
    assert {d["facets"]["reelforge"]["kind"] for d in publish["inputs"]} == {
        "rendition",
        "thumbnail",
    }


def test_a_crash_after_publish_still_delivers_once(stack):
    tenant = f"wh-{uuid.uuid4().hex[:8]}"
    env = cli_env(REELFORGE_WEBHOOK_ALLOW_PRIVATE="true")
    with Receiver() as receiver:
        secret = _register(receiver, tenant, env)
        crash = {**env, "REELFORGE_FAILPOINTS": failpoints("published:1:crash")}
        first = cli("generate", PROMPT, "--tenant", tenant, *JOB, env=crash)
        assert first.code == CRASH_EXIT_CODE, (first.code, first.payload, first.stderr[-2000:])
        assert receiver.requests == []  # the process died between the commit and delivery
        for _ in range(2):  # a new process delivers it; running again sends nothing more
            drained = cli("webhook", "deliver", env=env)
            assert drained.code == 0, drained.payload
    ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert list(ids.values()) == [1]
    (request,) = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "video.completed"
