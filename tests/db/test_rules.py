"""The database itself holds the rules, so raw SQL cannot break them."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db.lineage import mark_published, record_verdict
from db.models import SafetyGate

SHA = "ab" * 32


def _insert_asset(db, tenant_id, sha=SHA, kind="rendition"):
    asset_id = uuid.uuid4()
    db.execute(
        text(
            "INSERT INTO assets (id, tenant_id, kind, sha256, size_bytes, uri, media_type) "
            "VALUES (:id, :t, :k, :s, 1, 's3://b/k', 'video/mp4')"
        ),
        {"id": asset_id, "t": tenant_id, "k": kind, "s": sha},
    )
    return asset_id


def test_duplicate_tenant_kind_sha256_is_refused_by_postgres(db, tenant):
    _insert_asset(db, tenant.id)
    with pytest.raises(IntegrityError, match="uq_assets_tenant_kind_sha256"), db.begin_nested():
        _insert_asset(db, tenant.id)


def test_same_content_is_allowed_for_another_kind_or_tenant(db, tenant):
    from db.lineage import ensure_tenant

    _insert_asset(db, tenant.id)
    _insert_asset(db, tenant.id, kind="raw_clip")
    other = ensure_tenant(db, f"o-{uuid.uuid4().hex[:8]}")
    _insert_asset(db, other.id)
    count = db.execute(text("SELECT count(*) FROM assets WHERE sha256 = :s"), {"s": SHA}).scalar()
    assert count == 3


def test_publishing_without_a_verdict_is_refused_even_through_raw_sql(db, tenant):
    asset_id = _insert_asset(db, tenant.id)
    with pytest.raises(IntegrityError, match="without a passing safety verdict"), db.begin_nested():
        db.execute(
            text(
                "UPDATE assets SET published_at = now(), published_uri = 's3://pub/k' "
                "WHERE id = :id"
            ),
            {"id": asset_id},
        )


def test_inserting_an_already_published_asset_is_refused(db, tenant):
    with pytest.raises(IntegrityError, match="without a passing safety verdict"), db.begin_nested():
        db.execute(
            text(
                "INSERT INTO assets (tenant_id, kind, sha256, size_bytes, uri, media_type,"
                " published_at, published_uri) VALUES (:t, 'rendition', :s, 1, 's3://b/k',"
                " 'video/mp4', now(), 's3://pub/k')"
            ),
            {"t": tenant.id, "s": SHA},
        )


def test_a_failing_verdict_blocks_publication_even_with_a_passing_one(db, tenant, make_asset):
    asset = make_asset("rendition")
    for passed in (True, False):
        record_verdict(
            db,
            tenant_id=tenant.id,
            asset=asset,
            gate=SafetyGate.visual,
            passed=passed,
            policy_version="p1",
        )
    with pytest.raises(IntegrityError, match="failing safety verdict"), db.begin_nested():
        mark_published(db, asset, "s3://pub/k")


def test_a_passing_verdict_allows_publication(db, tenant, make_asset):
    asset = make_asset("rendition")
    record_verdict(
        db,
        tenant_id=tenant.id,
        asset=asset,
        gate=SafetyGate.visual,
        passed=True,
        policy_version="p1",
    )
    mark_published(db, asset, "s3://pub/k")
    assert asset.published_uri == "s3://pub/k"
    assert asset.published_at is not None


def test_verdicts_are_append_only(db, tenant, make_asset):
    asset = make_asset("rendition")
    verdict = record_verdict(
        db,
        tenant_id=tenant.id,
        asset=asset,
        gate=SafetyGate.visual,
        passed=False,
        policy_version="p",
    )
    with pytest.raises(IntegrityError, match="append-only"), db.begin_nested():
        db.execute(
            text("UPDATE safety_verdicts SET passed = true WHERE id = :id"), {"id": verdict.id}
        )


def test_sha256_must_be_lowercase_hex(db, tenant):
    with pytest.raises(IntegrityError, match="sha256_hex"), db.begin_nested():
        _insert_asset(db, tenant.id, sha="Z" * 64)
