"""Deployments on the real Prefect server: a campaign on its cron schedule, a personalised
deployment whose run is created by an emitted event alone, cancel, and nothing at all for an
invalid spec."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelforge.campaigns.load import load_spec
from reelforge.campaigns.spec import PersonalisationRequest
from reelforge.cli.app import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


@pytest.fixture
def spec(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    path = tmp_path / "ex" / "campaign.yaml"
    name = f"sale-{uuid.uuid4().hex[:8]}"
    path.write_text(path.read_text().replace("name: spring-sale", f"name: {name}"))
    return load_spec(path)


def _deployment(name: str):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


def test_campaign_deploy_creates_a_cron_deployment_on_the_cpu_pool(pools, spec):
    from reelforge.ops.deployments import deploy_campaign, deployment_name

    info = deploy_campaign(spec)
    deployment = _deployment(f"campaign/{deployment_name(spec)}")
    assert deployment.id == info.id and deployment.work_pool_name == pools.cpu_pool
    assert deployment.entrypoint == "flows.campaign.campaign_flow"  # importable anywhere
    (schedule,) = deployment.schedules
    assert schedule.schedule.cron == "0 6 * * 1" and schedule.schedule.timezone == "Europe/Berlin"
    assert deployment.parameters["executor"] == "pool"
    assert [p["sku"] for p in deployment.parameters["spec"]["products"]] == [
        "MUG-RED-01", "LAMP-BLU-02", "NOTE-PUR-03"
    ]  # fmt: skip
    video = _deployment(f"video/{pools.gpu_pool}")
    assert video.work_pool_name == pools.gpu_pool and video.entrypoint == "flows.video.video_flow"


def test_an_invalid_spec_deploys_nothing(pools, tmp_path):
    from prefect.exceptions import ObjectNotFound

    bad = tmp_path / "bad.yaml"
    name = f"bad-{uuid.uuid4().hex[:6]}"
    bad.write_text(
        f"name: {name}\ntenant: acme\nproducts:\n  - {{sku: ../x, name: X, prompt: p}}\n"
        "schedule: {cron: '0 6 * * 1'}\n"
    )
    result = runner.invoke(app, ["campaign", "deploy", str(bad), "--json"])
    assert result.exit_code == 2
    assert f"{bad}:4: products[0].sku" in json.loads(result.output)["error"]
    with pytest.raises(ObjectNotFound):
        _deployment(f"campaign/acme-{name}")


def _runs_of(deployment_id: uuid.UUID, want: int, timeout: float = 60.0):
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )
        if len(runs) >= want or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


def test_an_emitted_event_alone_creates_a_personalised_run_and_cancel_stops_it(pools, spec):
    from reelforge.ops.deployments import deploy_personalise, request_personalisation

    info = deploy_personalise(spec)
    assert info.work_pool == pools.gpu_pool
    request = PersonalisationRequest(user_id="u-42", sku="LAMP-BLU-02", fields={"first_name": "Mo"})
    request_personalisation(spec, [request])
    (run,) = _runs_of(info.id, want=1)
    assert run.parameters["request"] == request.model_dump(mode="json")
    assert run.parameters["spec"]["name"] == spec.name  # the deployment's default
    assert run.state.type.value == "SCHEDULED" and run.work_pool_name == pools.gpu_pool

    result = runner.invoke(app, ["cancel", str(run.id), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"] == "CANCELLED"
    again = runner.invoke(app, ["cancel", str(run.id), "--json"])
    assert again.exit_code == 2 and "nothing to cancel" in json.loads(again.output)["error"]

    # An event for another campaign does not start this deployment.
    other = spec.model_copy(update={"name": "another-campaign"})
    request_personalisation(other, [request])
    time.sleep(3)
    assert len(_runs_of(info.id, want=2, timeout=2)) == 1


def test_runs_lists_and_filters(stack):
    ok = runner.invoke(app, ["runs", "--limit", "3", "--json"])
    assert ok.exit_code == 0 and len(json.loads(ok.output)["runs"]) <= 3
    bad = runner.invoke(app, ["runs", "--status", "sleeping", "--json"])
    assert bad.exit_code == 2 and "unknown status" in json.loads(bad.output)["error"]
