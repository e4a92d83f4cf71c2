"""Finding and fixing what crashes leave behind.

- orphan objects: objects in our buckets that no lineage row points at (a crash between
  the upload and the lineage transaction);
- dangling assets: lineage rows whose object is missing (an object deleted by hand);
- stuck activities: activities still 'running' long after they started;
- abandoned runs: flow runs still 'Running' whose process on this machine is gone (killed
  mid-run: nothing could report the end); repaired by marking them Crashed, so that
  `reelforge retry` resumes them;
- stalled runs: a worker's runs still 'Running' or 'Cancelling' whose heartbeats stopped
  (their machine died with the worker and its flow process); repaired the same way;

Repairs are conservative: orphans in the private bucket are deleted only when older than a
grace period (so an upload whose transaction is about to commit is never touched);
published objects and quarantined objects are never deleted without an explicit flag.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from db.models import Activity, ActivityStatus, Asset
from db.session import session_scope
from reelforge.core.settings import Settings
from reelforge.core.storage import ObjectStore

STUCK_AFTER = timedelta(hours=6)
_INTERNAL_PREFIXES = ("_health/",)


@dataclass
class Findings:
    orphan_objects: list[str] = field(default_factory=list)
    dangling_assets: list[str] = field(default_factory=list)
    stuck_activities: list[str] = field(default_factory=list)
    abandoned_runs: list[str] = field(default_factory=list)
    stalled_runs: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (
            self.orphan_objects
            or self.dangling_assets
            or self.stuck_activities
            or self.abandoned_runs
            or self.stalled_runs
        )

    def as_json(self) -> dict[str, object]:
        return asdict(self) | {"clean": self.clean}


def scan(
    store: ObjectStore | None = None,
    *,
    now: datetime | None = None,
    grace: timedelta | None = None,
    tenant: str | None = None,
    runs: bool = True,
) -> Findings:
    """What crashes left behind. ``tenant`` limits the object checks to that tenant's
    objects and stalled runs; ``runs=False`` skips the Prefect checks (abandoned and
    stalled runs)."""
    store = store or ObjectStore()
    now = now or datetime.now(UTC)
    if grace is None:
        grace = timedelta(seconds=store.settings.orphan_grace_seconds)
    prefix = f"{tenant}/" if tenant else ""
    findings = Findings()
    with session_scope() as session:
        known = set(session.scalars(select(Asset.uri)))
        known |= set(
            session.scalars(select(Asset.published_uri).where(Asset.published_uri.is_not(None)))
        )
        stuck = session.scalars(
            select(Activity.id).where(
                Activity.status == ActivityStatus.running, Activity.started_at < now - STUCK_AFTER
            )
        )
        findings.stuck_activities = [str(a) for a in stuck]
    for bucket in (store.private, store.published):
        for obj in store.client.list_objects(bucket, prefix=prefix, recursive=True):
            if obj.object_name.startswith(_INTERNAL_PREFIXES):
                continue
            uri = f"s3://{bucket}/{obj.object_name}"
            if uri not in known and (obj.last_modified is None or obj.last_modified <= now - grace):
                findings.orphan_objects.append(uri)
    ours = (f"s3://{store.private}/{prefix}", f"s3://{store.published}/{prefix}")
    findings.dangling_assets = [
        uri for uri in sorted(known) if uri.startswith(ours) and not store.exists(uri)
    ]
    if runs:
        _scan_runs(findings, store.settings, tenant)
    return findings


def _scan_runs(findings: Findings, settings: Settings, tenant: str | None) -> None:
    from reelforge.ops.runs import abandoned_runs, stalled_runs

    findings.abandoned_runs = [str(run.id) for run in abandoned_runs()]
    findings.stalled_runs = [
        str(run.id) for run in stalled_runs(settings.heartbeat_timeout_seconds, tenant=tenant)
    ]


def repair(
    findings: Findings,
    store: ObjectStore | None = None,
    *,
    delete_published: bool = False,
    delete_quarantined: bool = False,
) -> Findings:
    """Fix what is safe: delete private orphans (not quarantined), close stuck activities,
    mark abandoned and stalled runs Crashed.

    Dangling rows are reported, never deleted: they are evidence, and a restore from backup
    may bring the object back.
    """
    store = store or ObjectStore()
    for uri in findings.orphan_objects:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        quarantined = (store.client.get_object_tags(bucket, key) or {}).get("reelforge-quarantine")
        if (bucket == store.published and not delete_published) or (
            quarantined and not delete_quarantined
        ):
            findings.kept.append(uri)
            continue
        store.delete(uri)
        findings.repaired.append(f"deleted orphan {uri}")
    if findings.stuck_activities:
        with session_scope() as session:
            session.execute(
                update(Activity)
                .where(Activity.id.in_(findings.stuck_activities))
                .values(
                    status=ActivityStatus.failed,
                    ended_at=datetime.now(UTC),
                    error="stuck: closed by `reelforge doctor --repair`",
                )
            )
        findings.repaired += [f"closed stuck activity {a}" for a in findings.stuck_activities]
    if findings.abandoned_runs or findings.stalled_runs:
        from reelforge.ops.runs import mark_crashed, mark_stalled

        for run_id in findings.abandoned_runs:
            mark_crashed(uuid.UUID(run_id), "its process is gone: found by `reelforge doctor`")
        for run_id in findings.stalled_runs:
            timeout = store.settings.heartbeat_timeout_seconds
            mark_stalled(uuid.UUID(run_id), timeout, "`reelforge doctor`")
        findings.repaired += [
            f"marked run {run_id} Crashed: `reelforge retry` resumes it"
            for run_id in (*findings.abandoned_runs, *findings.stalled_runs)
        ]
    return findings
