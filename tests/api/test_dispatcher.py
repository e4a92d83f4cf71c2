"""The dispatcher on the real Prefect server (pool executor, no worker needed): a queued job
becomes a flow run of the video deployment; a failed run is retried under the same id."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def pool_dispatcher(api_settings):
    from reelforge.api.dispatcher import Dispatcher

    dispatcher = Dispatcher(api_settings.model_copy(update={"api_executor": "pool"}))
    yield dispatcher
    dispatcher.stop()


def _job(job_id):
    from db.models import JobRecord
    from db.session import session_scope

    with session_scope() as session:
        return session.get_one(JobRecord, uuid.UUID(str(job_id)))


def test_queued_job_becomes_a_deployment_run_and_failure_is_retried(client, make_tenant, pool_dispatcher):  # fmt: skip
    from prefect import get_client
    from prefect.states import Failed

    tenant = make_tenant("disp")
    job_id = client.post("/v1/videos", json={"prompt": "a red ball", "seed": 3}, headers=tenant.headers).json()["id"]  # fmt: skip
    pool_dispatcher.tick()
    job = _job(job_id)
    assert job.status.value == "submitted" and job.flow_run_id is not None and job.attempts == 1
    with get_client(sync_client=True) as prefect:
        run = prefect.read_flow_run(job.flow_run_id)
        assert run.deployment_id is not None and run.parameters["job"]["tenant"] == tenant.slug
        assert run.state.type.value == "SCHEDULED"
        prefect.set_flow_run_state(run.id, Failed(message="failpoint publish fired (test)"), force=True)  # fmt: skip
    pool_dispatcher.tick()
    failed = client.get(f"/v1/videos/{job_id}", headers=tenant.headers).json()
    assert failed["status"] == "failed" and "failpoint publish fired" in failed["error"]

    assert client.post(f"/v1/runs/{job.flow_run_id}/retry", headers=tenant.headers).status_code == 202  # fmt: skip
    pool_dispatcher.tick()
    again = _job(job_id)
    assert again.status.value == "submitted" and again.flow_run_id == job.flow_run_id
    assert again.attempts == 2
    with get_client(sync_client=True) as prefect:
        assert prefect.read_flow_run(job.flow_run_id).state.type.value == "SCHEDULED"
        prefect.set_flow_run_state(job.flow_run_id, Failed(message="cleanup"), force=True)
