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
    seed = uuid.uuid4().int % 10**9  # a clip (and so a base) no earlier run has made
    text = path.read_text().replace("tenant: example-shop", f"tenant: {tenant_slug}")
    path.write_text(text.replace("seed: 1", f"seed: {seed}"))
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
