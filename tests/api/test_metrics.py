"""Real timings: after a generation, every stage's activity in lineage lasts as long as its
Prefect task run did, and `/metrics` counts the generation's GPU seconds (the generator's
own timing, recorded with the activity)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HAS_MODEL = (REPO / "models" / "tiny" / "model_index.json").is_file()
GPU_SECONDS = re.compile(r"^reelforge_gpu_seconds_total (\S+)$", re.MULTILINE)
QUEUE_WAITS = re.compile(r"^reelforge_queue_wait_seconds_count (\S+)$", re.MULTILINE)


def _metric(client, pattern: re.Pattern) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    (value,) = pattern.findall(response.text)
    return float(value)


def _stage_count(client, stage: str) -> float:
    pattern = rf'^reelforge_stage_duration_seconds_count\{{stage="{stage}"\}} (\S+)$'
    found = re.findall(pattern, client.get("/metrics").text, re.MULTILINE)
    return float(found[0]) if found else 0.0


def _finished_task_run(prefect, task_run_id):
    """A task run as the server has it once finished (the client reports task runs as
    events, which the server writes a moment later)."""
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + 60
    while True:
        try:
            task_run = prefect.read_task_run(task_run_id)
            if task_run.end_time is not None:
                return task_run
        except ObjectNotFound:
            pass
        assert time.monotonic() < deadline, f"task run {task_run_id} never reached the server"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.skipif(not HAS_MODEL, reason="the tiny model (models/tiny) is not trained yet")
def test_stage_durations_are_real_and_metrics_count_gpu_seconds(stack, client):
    from prefect import get_client
    from sqlalchemy import text

    from db import lineage
    from db.session import session_scope
    from reelforge.core.jobs import VideoJob
    from reelforge.ops.run import run_video

    gpu_before = _metric(client, GPU_SECONDS)
    waits_before = _metric(client, QUEUE_WAITS)
    generations_before = _stage_count(client, "generate")
    tenant = f"timing-{uuid.uuid4().hex[:10]}"
    job = VideoJob(tenant=tenant, prompt="a green square moves up", seed=3, aspect="1:1")
    result = run_video(job.model_copy(update={"speed": "fast"}))

    with session_scope() as session:
        activities = session.execute(
            text(
                "SELECT stage, task_run_id, started_at, ended_at, "
                "extract(epoch FROM ended_at - started_at)::float8 AS seconds, "
                "(parameters->'timings'->>'per_video_s')::float8 AS gpu_seconds, "
                "(parameters->>'queue_wait_s')::float8 AS queue_wait "
                "FROM activities WHERE flow_run_id = :run AND status = 'succeeded'"
            ),
            {"run": result.flow_run_id},
        ).all()
    stages = {a.stage for a in activities}
    assert {"generate", "postprocess", "publish"} <= stages, stages
    slack = timedelta(milliseconds=5)
    with get_client(sync_client=True) as prefect:
        for activity in activities:
            task_run = _finished_task_run(prefect, activity.task_run_id)
            wall = (task_run.end_time - task_run.start_time).total_seconds()
            assert activity.seconds > 0, activity
            # The activity starts with its task run and ends when its lineage commits, a
            # moment before the task run has persisted its result: inside the task run, and
            # within 20% of its wall time where that is more than Prefect's own bookkeeping
            # (tens of milliseconds per task, more on a loaded machine).
            assert abs(activity.started_at - task_run.start_time) <= slack, (activity, task_run)
            assert activity.ended_at <= task_run.end_time + slack, (activity, task_run)
            if wall >= 1.0:
                assert activity.seconds >= 0.8 * wall, (activity, wall)

    (generate,) = [a for a in activities if a.stage == "generate"]
    assert 0 < generate.gpu_seconds <= generate.seconds  # the generator's time, in the stage
    assert _stage_count(client, "generate") >= generations_before + 1
    # Other tests may generate meanwhile: the counter grows by at least this generation.
    assert _metric(client, GPU_SECONDS) >= gpu_before + generate.gpu_seconds * 0.999 > 0

    # Every activity keeps how long its flow run waited to start, as Prefect saw it.
    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(result.flow_run_id)
    waited = (run.start_time - run.expected_start_time).total_seconds()
    # (the run's Running state is stamped by this process, its start_time by the server: a
    # few milliseconds apart)
    assert len({a.queue_wait for a in activities}) == 1
    assert abs(activities[0].queue_wait - max(0.0, waited)) <= 0.02, (activities[0], waited)
    with session_scope() as session:
        nodes = lineage.upstream(session, result.video.asset_id)
    assert nodes[0].queue_wait_s == activities[0].queue_wait and nodes[0].duration_s > 0
    assert _metric(client, QUEUE_WAITS) >= waits_before + 1
