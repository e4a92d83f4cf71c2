"""Finding and fixing what crashes leave behind.

- orphan objects: objects in our buckets that no lineage row points at (a crash between
  the upload and the lineage transaction);
- dangling assets: lineage rows whose object is missing (an object deleted by hand);
- stuck activities: activities still 'running' long after they started.

Repairs are conservative: orphans in the private bucket are deleted only when older than a
grace period (so an upload whose transaction is about to commit is never touched);
published objects and quarantined objects are never deleted without an explicit flag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from db.models import Activity, ActivityStatus, Asset
from db.session import session_scope
from reelforge.storage import ObjectStore

GRACE = timedelta(minutes=10)
STUCK_AFTER = timedelta(hours=6)
_INTERNAL_PREFIXES = ("_health/",)


@dataclass
class Findings:
    orphan_objects: list[str] = field(default_factory=list)
    dangling_assets: list[str] = field(default_factory=list)
    stuck_activities: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.orphan_objects or self.dangling_assets or self.stuck_activities)

    def as_json(self) -> dict[str, object]:
        return asdict(self) | {"clean": self.clean}


def scan(store: ObjectStore | None = None, *, now: datetime | None = None) -> Findings:
    store = store or ObjectStore()
    now = now or datetime.now(UTC)
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
        for obj in store.client.list_objects(bucket, recursive=True):
            if obj.object_name.startswith(_INTERNAL_PREFIXES):
                continue
            uri = f"s3://{bucket}/{obj.object_name}"
            if uri not in known and (obj.last_modified is None or obj.last_modified < now - GRACE):
                findings.orphan_objects.append(uri)
    ours = (f"s3://{store.private}/", f"s3://{store.published}/")
    findings.dangling_assets = [
        uri for uri in sorted(known) if uri.startswith(ours) and not store.exists(uri)
    ]
    return findings


def repair(
    findings: Findings, store: ObjectStore | None = None, *, delete_published: bool = False
) -> Findings:
    """Fix what is safe: delete private orphans (not quarantined), close stuck activities.

    Dangling rows are reported, never deleted: they are evidence, and a restore from backup
    may bring the object back.
    """
    store = store or ObjectStore()
    for uri in findings.orphan_objects:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        quarantined = (store.client.get_object_tags(bucket, key) or {}).get("reelforge-quarantine")
        if (bucket == store.published and not delete_published) or quarantined:
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
    return findings
