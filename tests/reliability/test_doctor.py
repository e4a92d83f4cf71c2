"""`reelforge doctor --repair` never deletes a published or quarantined object unless told
to with its own flag; private orphans go, and only past the grace period."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from minio.commonconfig import Tags

from reelforge.ops import repair
from tests.reliability.conftest import (
    cli,
    cli_env,
    heartbeat,
    running_probes,
    tenant_slug,
    wait_stalled,
)


def _orphans(store, tenant: str, tmp_path) -> dict[str, str]:
    """A private, a quarantined-private and a published orphan of ``tenant``."""
    made = {}
    for name in ("private", "quarantined", "published"):
        path = tmp_path / f"{name}.txt"
        path.write_text(uuid.uuid4().hex)
        obj = store.put_file(path, tenant=tenant, kind="prompt", asset_id=uuid.uuid4())
        made[name] = obj.uri
    tags = Tags.new_object_tags()
    tags["reelforge-quarantine"] = "true"
    store.client.set_object_tags(store.private, made["quarantined"].split("/", 3)[3], tags)
    source = made.pop("published")
    made["published"] = store.publish(source, tenant=tenant)
    store.delete(source)  # only the published copy is left
    return made


def test_published_and_quarantined_orphans_need_their_own_flag(stack, store, tmp_path):
    tenant = tenant_slug("doc")
    made = _orphans(store, tenant, tmp_path)
    env = cli_env(REELFORGE_ORPHAN_GRACE_SECONDS="0")

    found = cli("doctor", "--tenant", tenant, env=env)
    assert found.code == 0, found.payload
    assert sorted(found.payload["sweep"]["orphan_objects"]) == sorted(made.values())

    plain = cli("doctor", "--repair", "--tenant", tenant, env=env)
    assert plain.code == 0, plain.payload
    assert not store.exists(made["private"])
    assert store.exists(made["quarantined"]) and store.exists(made["published"])
    assert sorted(plain.payload["sweep"]["kept"]) == sorted(
        [made["quarantined"], made["published"]]
    )

    published = cli("doctor", "--repair", "--delete-published", "--tenant", tenant, env=env)
    assert published.code == 0
    assert not store.exists(made["published"]) and store.exists(made["quarantined"])

    everything = cli("doctor", "--repair", "--delete-quarantined", "--tenant", tenant, env=env)
    assert everything.code == 0
    assert not store.exists(made["quarantined"])
    assert cli("doctor", "--tenant", tenant, env=env).payload["sweep"]["orphan_objects"] == []


def test_the_grace_period_protects_uploads_whose_lineage_is_being_written(stack, store, tmp_path):
    tenant = tenant_slug("grace")
    made = _orphans(store, tenant, tmp_path)
    young = repair.scan(store, tenant=tenant, runs=False)  # default grace: 10 minutes
    assert young.orphan_objects == []
    old = repair.scan(store, tenant=tenant, grace=timedelta(0), runs=False)
    assert sorted(old.orphan_objects) == sorted(made.values())
    other = repair.scan(store, tenant=tenant_slug("other"), grace=timedelta(0), runs=False)
    assert other.orphan_objects == []  # --tenant looks at that tenant's objects only
    repair.repair(old, store, delete_published=True, delete_quarantined=True)
    assert not any(store.exists(uri) for uri in made.values())


def test_a_run_counts_as_abandoned_only_when_its_process_here_is_gone():
    import socket
    import subprocess
    import sys

    import psutil

    from reelforge.core.orchestration import process_gone, process_tag

    assert not process_gone(process_tag())  # this very process: alive
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    created = psutil.Process(dead.pid).create_time()
    dead.kill()  # as kill -9
    dead.wait()
    host = socket.gethostname()
    assert process_gone(f"reelforge-process:{host}:{dead.pid}:{created:.3f}")
    me = psutil.Process()
    reused = f"reelforge-process:{host}:{me.pid}:{me.create_time() - 100:.3f}"
    assert process_gone(reused)  # the pid lives on in a stranger: our run's process is gone
    assert not process_gone(f"reelforge-process:elsewhere:{dead.pid}:{created:.3f}")
    assert not process_gone(f"{host}:{dead.pid}")  # a worker's run: its worker reports it
    assert not process_gone(None)


def test_doctor_says_the_stack_is_closed_and_names_a_refused_secret(stack):
    checks = {c["name"]: c for c in cli("doctor", env=cli_env(stack)).payload["checks"]}
    for name in ("postgres access", "s3 access", "prefect access"):
        assert checks[name]["ok"] and checks[name]["detail"].startswith("closed: "), checks[name]

    for variable, wrong in (
        ("REELFORGE_PG_PASSWORD", "not-the-password"),
        ("REELFORGE_PREFECT_AUTH_STRING", "reelforge:not-the-string"),
    ):
        refused = cli("doctor", env=cli_env(stack, **{variable: wrong}))
        assert refused.code == 2, refused.payload
        assert variable in refused.payload["error"] and "\n" not in refused.payload["error"]
        assert wrong not in json.dumps(refused.payload)  # a secret is never echoed
        assert {c["name"] for c in refused.payload["checks"]} >= set(checks)


def test_a_workers_run_whose_heartbeats_stop_is_stalled_and_repaired_to_crashed(stack):
    """Deployment runs `Running`: one keeps sending heartbeats, the others fall silent (one
    of them while `Cancelling`). Past the timeout the silent ones are stalled: `cancel` ends
    the cancelling one at once (no worker is left to), `retry` takes one over directly and
    `doctor --repair` marks the last one Crashed."""
    import time

    from prefect import get_client
    from prefect.states import Cancelling

    from reelforge.ops.runs import get_run, stalled_runs

    tenant = tenant_slug("stall")
    env = cli_env(REELFORGE_HEARTBEAT_TIMEOUT_SECONDS="30")
    with running_probes(tenant, 4) as (silent, alive, cancelling, retried):
        started = time.monotonic()
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(cancelling.id, Cancelling(), force=True)
        assert stalled_runs(30, tenant=tenant) == []  # all just started
        time.sleep(max(0.0, 25 - (time.monotonic() - started)))
        heartbeat(alive.id)
        wait_stalled(tenant, [silent.id, cancelling.id, retried.id])

        cancelled = cli("cancel", str(cancelling.id), env=env)
        assert cancelled.code == 0 and cancelled.payload["state"] == "CANCELLED", cancelled
        rescheduled = cli("retry", str(retried.id), "--no-wait", env=env)
        assert rescheduled.code == 0, rescheduled.payload  # Crashed, then Scheduled again
        assert get_run(retried.id).state == "SCHEDULED"  # for a worker of its pool

        heartbeat(alive.id)
        doctor = cli("doctor", "--repair", "--tenant", tenant, env=env)
        assert doctor.code == 0, doctor.payload
        assert doctor.payload["sweep"]["stalled_runs"] == [str(silent.id)]
        crashed = get_run(silent.id)
        assert crashed.state == "CRASHED" and "no heartbeat for 30s" in crashed.message
        assert get_run(alive.id).state == "RUNNING"
