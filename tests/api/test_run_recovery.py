"""A job whose worker machine died: the API refuses its retry while it counts as running, the
dispatcher's heartbeat watch marks its run Crashed, the job fails, and the retry is accepted."""

from __future__ import annotations

import time
import uuid

from tests.reliability.conftest import heartbeat, running_probes, wait_stalled


def test_the_dispatcher_marks_a_silent_run_crashed_and_its_job_can_be_retried(
    api_settings, client, make_tenant
):
    from db.models import JobRecord, JobStatus
    from db.session import session_scope
    from reelforge.api.dispatcher import Dispatcher
    from reelforge.ops.runs import get_run

    tenant = make_tenant("recover")
    with running_probes(tenant.slug, 2) as (silent, alive):
        started = time.monotonic()
        ids = [uuid.uuid4(), uuid.uuid4()]
        with session_scope() as session:
            session.add_all(
                JobRecord(
                    id=job_id,
                    tenant_id=tenant.tenant_id,
                    kind="video",
                    status=JobStatus.running,
                    executor="pool",
                    flow_run_id=run.id,
                    request={"tenant": tenant.slug},
                )
                for job_id, run in zip(ids, (silent, alive), strict=True)
            )
        refused = client.post(f"/v1/runs/{silent.id}/retry", headers=tenant.headers)
        assert refused.status_code == 409, refused.text  # still running, as far as anyone knows

        dispatcher = Dispatcher(
            api_settings.model_copy(
                update={"api_executor": "pool", "heartbeat_timeout_seconds": 30}
            )
        )
        time.sleep(max(0.0, 25 - (time.monotonic() - started)))
        heartbeat(alive.id)
        wait_stalled(tenant.slug, [silent.id])
        heartbeat(alive.id)
        dispatcher._watch_heartbeats()
        assert get_run(silent.id).state == "CRASHED"
        assert get_run(alive.id).state == "RUNNING"
        dispatcher._sync()
        with session_scope() as session:
            silent_job = session.get_one(JobRecord, ids[0])
            assert silent_job.status == JobStatus.failed, silent_job.status
            assert "no heartbeat" in (silent_job.error or "")
            assert session.get_one(JobRecord, ids[1]).status == JobStatus.running

        accepted = client.post(f"/v1/runs/{silent.id}/retry", headers=tenant.headers)
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["status"] == "retrying"
