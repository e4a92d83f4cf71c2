"""Several workers: two `reelforge worker --pool gpu` processes on this machine share one
campaign's video runs; a personalised run completes from an emitted event alone, and the
second user of a product renders only their overlay (clip and base from the caches)."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import pytest

from reelforge.campaigns.load import load_spec
from reelforge.campaigns.spec import PersonalisationRequest
from tests.flows.workers import running_workers

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
HAS_MODEL = (REPO / "models" / "tiny" / "model_index.json").is_file()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAS_MODEL, reason="the tiny model (models/tiny) is not trained yet"),
]


def _runs_of(deployment_name: str):
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deployment_name)
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )


def test_two_workers_share_one_campaigns_runs(pools, tmp_path, tenant_slug, committed):
    from reelforge.ops.runs import run_campaign

    spec_path = tmp_path / "four.yaml"
    spec_path.write_text(
        f"name: spread-{uuid.uuid4().hex[:6]}\ntenant: {tenant_slug}\nproducts:\n"
        "  - {sku: S-1, name: One, prompt: a red circle moves right}\n"
        "  - {sku: S-2, name: Two, prompt: a blue square moves up}\n"
        "  - {sku: S-3, name: Three, prompt: a green triangle moves left}\n"
        "  - {sku: S-4, name: Four, prompt: a yellow circle moves down}\n"
        'renditions: ["1:1"]\ngeneration: {speed: fast}\nconcurrency: 2\n'
    )
    spec = load_spec(spec_path)
    with running_workers(2, "gpu", tmp_path) as names:
        report = run_campaign(spec, executor="pool")
    assert (report.made, report.failed) == (4, 0)
    runs = [
        r
        for r in _runs_of(f"video/{pools.gpu_pool}")
        if r.parameters["job"]["tenant"] == tenant_slug
    ]
    assert len(runs) == 4 and all(r.state.is_completed() for r in runs)
    workers = {r.labels.get("prefect.worker.name") for r in runs}
    assert workers == set(names), workers  # both machines' workers took part
    published = committed(
        "SELECT count(*) AS n FROM assets a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.kind = 'rendition' AND a.published_at IS NOT NULL",
        slug=tenant_slug,
    )
    assert published[0].n == 4


def _wait_completed(deployment_id, count: int, timeout: float = 900):
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
        final = [r for r in runs if r.state and r.state.is_final()]
        if len(final) >= count:
            return runs
        assert time.monotonic() < deadline, [r.state.name for r in runs]
        time.sleep(2)


def test_an_event_alone_completes_a_personalised_run(pools, tmp_path, tenant_slug, committed):
    from reelforge.ops.deployments import deploy_personalise, request_personalisation

    shutil.copytree(EXAMPLES, tmp_path / "ex")
    path = tmp_path / "ex" / "campaign.yaml"
    # A fresh tenant: its clip and base caches are empty (both are per tenant), while the
    # seed stays the example's, a clip the visual gate is known to pass.
    path.write_text(path.read_text().replace("tenant: example-shop", f"tenant: {tenant_slug}"))
    spec = load_spec(path)
    info = deploy_personalise(spec)
    with running_workers(1, "gpu", tmp_path):
        ana = PersonalisationRequest(user_id="u-1", sku="MUG-RED-01", fields={"first_name": "Ana"})
        request_personalisation(spec, [ana])  # nothing else: the trigger starts the run
        (first,) = _wait_completed(info.id, 1)
        assert first.state.is_completed(), first.state.message
        kenji = PersonalisationRequest(
            user_id="u-2", sku="MUG-RED-01", fields={"first_name": "Kenji"}
        )
        request_personalisation(spec, [kenji])
        runs = _wait_completed(info.id, 2)
    assert all(r.state.is_completed() for r in runs), [r.state.message for r in runs]

    rows = committed(
        "SELECT a.parameters, au.external_id FROM activities a "
        "JOIN tenants t ON t.id = a.tenant_id "
        "JOIN generated g ON g.activity_id = a.id JOIN assets s ON s.id = g.asset_id "
        "JOIN audiences au ON au.id = s.audience_id "
        "WHERE t.slug = :slug AND a.stage = 'postprocess' AND s.kind = 'rendition' "
        "ORDER BY a.started_at",
        slug=tenant_slug,
    )
    assert [r.external_id for r in rows] == ["u-1", "u-2"]
    assert rows[0].parameters["base_cache_hit"] is False
    assert rows[1].parameters["base_cache_hit"] is True  # only Kenji's overlay was rendered
    generations = committed(
        "SELECT count(*) AS n FROM activities a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.stage = 'generate'",
        slug=tenant_slug,
    )
    assert generations[0].n == 1  # the shared clip was generated once


def test_a_run_that_failed_on_a_worker_is_retried_by_a_worker(
    pools,
    tmp_path,
    tenant_slug,
    committed,
):
    import json
    import subprocess
    import sys

    from prefect.deployments import run_deployment

    from reelforge.core.jobs import VideoJob
    from reelforge.ops.deployments import deploy_video, video_deployment

    failpoints = f"publish:1,scope-{uuid.uuid4().hex[:8]}:0"
    job = VideoJob(tenant=tenant_slug, prompt="a blue triangle moves down", seed=21)
    deploy_video()
    with running_workers(1, "gpu", tmp_path, env={"REELFORGE_FAILPOINTS": failpoints}):
        run = run_deployment(
            video_deployment(), parameters={"job": job.model_dump(mode="json")}, timeout=900
        )
        assert run.state.is_failed() and "failpoint publish" in run.state.message
        done = subprocess.run(
            [str(Path(sys.executable).parent / "reelforge"), "retry", str(run.id),
             "--timeout", "900", "--json"],
            capture_output=True, text=True, timeout=960,
        )  # fmt: skip
    payload = json.loads(done.stdout.splitlines()[-1])
    assert done.returncode == 0, payload
    assert payload["state"] == "COMPLETED" and payload["run_count"] == 2
    rows = committed(
        "SELECT stage, count(*) AS n FROM activities WHERE flow_run_id = :run "
        "AND status = 'succeeded' GROUP BY stage",
        run=run.id,
    )
    counts = {row.stage: row.n for row in rows}
    assert counts["generate"] == 1 and counts["postprocess"] == 1 and counts["publish"] == 1


def _kill_machine(marker: Path) -> None:
    """kill -9 the worker and the flow process paused at ``marker``, as a host crash would:
    the worker first, so that nothing is left to report the flow process's death."""
    import itertools
    import os

    import psutil

    flow = psutil.Process(int(marker.read_text()))
    parents = flow.parents()
    assert any(p.pid == os.getpid() for p in parents), "not the flow process of our worker"
    worker = list(itertools.takewhile(lambda p: p.pid != os.getpid(), parents))
    for proc in [*reversed(worker), flow]:
        proc.kill()
        proc.wait(10)


def test_a_run_whose_machine_died_is_found_crashed_and_retried_publishing_once(
    pools, tmp_path, tenant_slug, committed
):
    """The worker-crash drill: kill -9 of a worker and its flow process right after publish;
    the run's heartbeats stop, `doctor --repair` marks it Crashed, `retry` completes it on
    another worker, and the video is published once."""
    from prefect.deployments import run_deployment

    from reelforge.core.failpoints import paused_at
    from reelforge.core.jobs import VideoJob
    from reelforge.ops.deployments import deploy_video, video_deployment
    from reelforge.ops.runs import get_run, stalled_runs, tenant_tag
    from tests.reliability.conftest import Lineage, cli, cli_env

    points = f"published:1:pause,scope-{uuid.uuid4().hex[:8]}:0"
    job = VideoJob(
        tenant=tenant_slug,
        prompt="a purple circle moves up",
        seed=7,  # a fresh tenant has no cached clip, whatever the seed
        aspect="1:1",
        speed="fast",
    )
    deploy_video()
    # Heartbeats every 30 s (Prefect's minimum): a run silent for 60 s has died.
    worker_env = {"REELFORGE_FAILPOINTS": points, "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
    doctor_env = cli_env(REELFORGE_HEARTBEAT_TIMEOUT_SECONDS="60")
    marker = paused_at("published", points)
    with running_workers(1, "gpu", tmp_path, env=worker_env):
        run = run_deployment(
            video_deployment(),
            parameters={"job": job.model_dump(mode="json")},
            tags=[tenant_tag(tenant_slug)],
            timeout=0,
        )
        deadline = time.monotonic() + 900
        while not marker.exists():
            assert get_run(run.id).state in ("SCHEDULED", "PENDING", "RUNNING"), get_run(run.id)
            assert time.monotonic() < deadline, "the run never reached the published failpoint"
            time.sleep(1)
        assert stalled_runs(60, run_ids=[run.id]) == []  # alive: its heartbeats come
        _kill_machine(marker)
        marker.unlink()  # the dead process cannot remove it

    assert get_run(run.id).state == "RUNNING"  # nothing is left to report its end
    refused = cli("retry", str(run.id), "--no-wait", env=cli_env())  # default timeout: 10 min
    assert refused.code == 2 and "Running" in refused.payload["error"], refused.payload
    deadline = time.monotonic() + 300
    while not stalled_runs(60, run_ids=[run.id]):
        assert time.monotonic() < deadline, "the dead run's heartbeats never went stale"
        time.sleep(5)
    doctor = cli("doctor", "--repair", "--tenant", tenant_slug, env=doctor_env)
    assert doctor.code == 0, doctor.payload
    assert doctor.payload["sweep"]["stalled_runs"] == [str(run.id)]
    crashed = get_run(run.id)
    assert crashed.state == "CRASHED" and "no heartbeat" in crashed.message, crashed

    with running_workers(1, "gpu", tmp_path, env={"REELFORGE_FAILPOINTS": points}):
        retried = cli("retry", str(run.id), "--timeout", "900", env=cli_env())
    assert retried.code == 0, (retried.payload, retried.stderr[-2000:])
    finished = get_run(run.id)
    assert finished.state == "COMPLETED" and finished.run_count == 2, finished
    rows = committed(
        "SELECT stage, count(*) AS n FROM activities WHERE flow_run_id = :run "
        "AND status = 'succeeded' GROUP BY stage",
        run=run.id,
    )
    counts = {row.stage: row.n for row in rows}
    assert counts["generate"] == 1 and counts["publish"] == 1, counts
    Lineage(pools).assert_published_once(tenant_slug)
