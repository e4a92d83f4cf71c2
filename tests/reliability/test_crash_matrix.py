"""Crash matrix: the process running a video flow dies (``os._exit`` from a ``crash``
failpoint, as under ``kill -9``: no handler, no state report) at each stage boundary; the
run is then retried (or made again) and must end with the video published once, safely,
with no orphan objects and no dangling lineage.

A killed in-process run stays ``Running`` in Prefect for ever (nothing reports its end);
`reelforge retry` sees that its process is gone and resumes it: finished stages come back
Cached, and the clip is never generated twice.

A crash between an upload and its lineage write leaves an orphan object, inherently (the
bytes are stored, the transaction never ran). The content-addressed key means the retry
writes the same bytes to the same key and records them, adopting the object; what it does
not adopt, `reelforge doctor --repair` deletes (test_an_orphan_left_by_a_crash_...).
"""

from __future__ import annotations

import pytest

from reelforge.core.failpoints import CRASH_EXIT_CODE
from tests.reliability.conftest import (
    PROMPT,
    Lineage,
    campaign_run_id,
    cli,
    cli_env,
    failpoints,
    needs_model,
    tenant_slug,
    write_campaign,
)

# failpoint -> the boundary it kills the run at (record-postprocess: the orphan test below)
BOUNDARIES = {
    "text-safety": "after enhancement",
    "visual-safety": "after generation",
    "postprocess": "after moderation of the clip",
    "rendition": "after the rendition is rendered and recorded",
    "published": "after publish committed, before the run finished",
    "record-generate": "between the clip's upload and its lineage write",
    "record-publish": "between the copy to the published bucket and its lineage write",
}
JOB = ("--aspect", "1:1", "--seed", "3", "--fast")


def _crash(lin: Lineage, point: str, tenant: str) -> tuple[str, dict[str, str]]:
    env = cli_env(REELFORGE_FAILPOINTS=failpoints(f"{point}:1:crash"))
    first = cli("generate", PROMPT, "--tenant", tenant, *JOB, env=env)
    assert first.code == CRASH_EXIT_CODE, (first.code, first.payload, first.stderr[-2000:])
    (run_id,) = lin.run_ids(tenant)
    return run_id, env


def _generations(lin: Lineage, tenant: str) -> int:
    rows = lin.rows(
        "SELECT count(*) AS n FROM activities a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.stage = 'generate' AND a.status = 'succeeded'",
        slug=tenant,
    )
    return rows[0].n


@needs_model
@pytest.mark.slow
@pytest.mark.parametrize("point", list(BOUNDARIES), ids=list(BOUNDARIES))
def test_a_crash_at_each_boundary_then_retry_publishes_once(stack, point):
    lin = Lineage(stack)
    tenant = tenant_slug("crash")
    run_id, env = _crash(lin, point, tenant)

    from reelforge.ops.runs import get_run

    assert get_run(run_id).state == "RUNNING"  # nothing could report the end
    _, public = lin.objects(tenant)
    if point.startswith("record-"):
        assert lin.orphans(tenant), "the crash left no object without lineage"
    if point == "record-publish":  # copied to the published bucket, not yet marked
        assert public and not any(a.published_uri for a in lin.assets(tenant))
    elif point != "published":
        assert public == set(), "published before the publish stage"

    retried = cli("retry", run_id, env=env)  # same failpoint value: its count is used up
    assert retried.code == 0, (retried.payload, retried.stderr[-2000:])
    assert retried.payload["state"] == "COMPLETED" and retried.payload["id"] == run_id
    lin.assert_published_once(tenant)
    assert lin.run_ids(tenant) == [run_id]
    assert _generations(lin, tenant) == 1, "the clip was generated again"
    publishes = lin.rows(
        "SELECT count(*) AS n FROM activities WHERE flow_run_id = :run AND stage = 'publish'",
        run=run_id,
    )
    assert publishes[0].n == 1, "publish recorded twice"


@needs_model
@pytest.mark.slow
def test_a_crash_then_a_fresh_run_of_the_same_job_publishes_once(stack):
    """Recovery without retry: the same job made again in a new run reuses the clip and
    publishes the same content-addressed video (no second published copy)."""
    lin = Lineage(stack)
    tenant = tenant_slug("rerun")
    first_run, env = _crash(lin, "record-publish", tenant)
    again = cli("generate", PROMPT, "--tenant", tenant, *JOB, env=env)
    assert again.code == 0, (again.payload, again.stderr[-2000:])
    lin.assert_published_once(tenant)
    assert _generations(lin, tenant) == 1  # the generation cache key found the clip
    assert len(lin.run_ids(tenant)) == 2 and first_run in lin.run_ids(tenant)

    # The dead first run is found and closed by doctor, so it can be seen and retried.
    doctor = cli("doctor", "--repair", "--tenant", tenant, env=env)
    assert doctor.code == 0, doctor.payload
    assert first_run in doctor.payload["sweep"]["abandoned_runs"]
    from reelforge.ops.runs import get_run

    assert get_run(first_run).state == "CRASHED"


@needs_model
@pytest.mark.slow
def test_an_orphan_left_by_a_crash_is_removed_by_doctor_and_the_rerun_completes(stack):
    """The inherent orphan (bytes stored, lineage never written) when nothing retries:
    doctor reports it, --repair deletes it once past the grace period, and a later run of
    the job still completes."""
    lin = Lineage(stack)
    tenant = tenant_slug("orphan")
    _, env = _crash(lin, "record-postprocess", tenant)
    orphans = lin.orphans(tenant)
    assert orphans and all("/rendition/" in u or "/thumbnail/" in u or "/preview/" in u
                           for u in orphans), orphans  # fmt: skip

    fresh = cli("doctor", "--tenant", tenant, env=env)  # default grace: too young to delete
    assert fresh.code == 0 and fresh.payload["sweep"]["orphan_objects"] == []
    env_now = {**env, "REELFORGE_ORPHAN_GRACE_SECONDS": "0"}
    found = cli("doctor", "--tenant", tenant, env=env_now)
    assert sorted(found.payload["sweep"]["orphan_objects"]) == sorted(orphans)
    repaired = cli("doctor", "--repair", "--tenant", tenant, env=env_now)
    assert repaired.code == 0, repaired.payload
    assert {f"deleted orphan {u}" for u in orphans} <= set(repaired.payload["sweep"]["repaired"])
    assert lin.orphans(tenant) == []

    again = cli("generate", PROMPT, "--tenant", tenant, *JOB, env=env)
    assert again.code == 0, (again.payload, again.stderr[-2000:])
    lin.assert_published_once(tenant)


@needs_model
@pytest.mark.slow
def test_a_crash_between_a_campaigns_two_renditions_then_retry_publishes_each_once(stack, tmp_path):
    """A product in two renditions: the process dies after the first is published. The
    retried campaign makes the second from the same clip and does not publish the first
    again."""
    lin = Lineage(stack)
    tenant = tenant_slug("crashcamp")
    spec = tmp_path / "campaign.yaml"
    name = write_campaign(spec, tenant, [PROMPT], ["1:1", "9:16"])
    env = cli_env(REELFORGE_FAILPOINTS=failpoints("published:1:crash"))
    first = cli("campaign", "run", str(spec), env=env)
    assert first.code == CRASH_EXIT_CODE, (first.code, first.payload, first.stderr[-2000:])
    _, public = lin.objects(tenant)
    assert len(public) == 2, public  # the first rendition and its thumbnail

    retried = cli("retry", campaign_run_id(stack, name), env=env)
    assert retried.code == 0, (retried.payload, retried.stderr[-2000:])
    assert retried.payload["state"] == "COMPLETED"
    lin.assert_published_once(tenant, videos=2)
    assert _generations(lin, tenant) == 1, "the clip was generated again"
