"""Orphan objects and dangling rows: found, and repaired only where that is safe."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from reelforge.ops import repair
from tasks.record import Output, context_for, record_stage

LATER = datetime.now(UTC) + timedelta(hours=1)  # past the grace period for new uploads


def test_orphans_and_dangling_rows_are_found_and_private_orphans_repaired(stack, store, tmp_path):
    from db.models import AssetKind

    recorded = tmp_path / "recorded.txt"
    recorded.write_text(uuid.uuid4().hex)
    ctx = context_for(f"rep-{uuid.uuid4().hex[:8]}")
    (ref,) = record_stage(ctx, "ingest", outputs=[Output(recorded, AssetKind.prompt)])

    orphan_file = tmp_path / "orphan.txt"
    orphan_file.write_text(uuid.uuid4().hex)
    orphan = store.put_file(orphan_file, tenant=ctx.tenant, kind="prompt", asset_id=uuid.uuid4())
    published_orphan = store.publish(orphan.uri, tenant=ctx.tenant)

    dangling_file = tmp_path / "dangling.txt"
    dangling_file.write_text(uuid.uuid4().hex)
    (dangling,) = record_stage(ctx, "ingest", outputs=[Output(dangling_file, AssetKind.prompt)])
    store.delete(dangling.uri)

    findings = repair.scan(store, now=LATER)
    assert orphan.uri in findings.orphan_objects and published_orphan in findings.orphan_objects
    assert ref.uri not in findings.orphan_objects
    assert dangling.uri in findings.dangling_assets and ref.uri not in findings.dangling_assets

    repaired = repair.repair(findings, store)
    assert not store.exists(orphan.uri)
    assert store.exists(published_orphan), "published objects need --delete-published"
    assert published_orphan in repaired.kept
    assert store.exists(ref.uri)

    after = repair.scan(store, now=LATER)
    assert orphan.uri not in after.orphan_objects
    store.delete(published_orphan)


def test_fresh_uploads_are_not_orphans_yet(stack, store, tmp_path):
    path = tmp_path / "inflight.txt"
    path.write_text(uuid.uuid4().hex)
    inflight = store.put_file(path, tenant="inflight", kind="prompt", asset_id=uuid.uuid4())
    try:
        assert inflight.uri not in repair.scan(store).orphan_objects
    finally:
        store.delete(inflight.uri)
