"""Campaigns on the real stack: the example campaign run twice generates and publishes
nothing new the second time; a dry run reports what would be made; the report and progress
are Prefect artifacts; a failed product is re-made alone by `reelforge retry`."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from reelforge.campaigns.load import load_spec
from reelforge.ops.runs import retry_run, run_campaign
from tasks.postprocess.credentials import read_credentials

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
HAS_MODEL = (REPO / "models" / "tiny" / "model_index.json").is_file()
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="the tiny model (models/tiny) is not trained yet")  # fmt: skip


@pytest.fixture
def example(tmp_path, tenant_slug) -> Path:
    """The shipped example campaign, for a tenant of its own (a fresh cache)."""
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    spec = tmp_path / "ex" / "campaign.yaml"
    spec.write_text(spec.read_text().replace("tenant: example-shop", f"tenant: {tenant_slug}"))
    return spec


def _artifact(key: str, run_id):
    """The artifact ``key`` of the campaign run ``run_id`` (other tests' runs of the same
    campaign name write artifacts with the same key)."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[key]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]),
            ),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key} of run {run_id}"
    return found[0]


def _generations(committed, tenant: str) -> int:
    rows = committed(
        "SELECT count(*) AS n FROM activities a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.stage = 'generate'",
        slug=tenant,
    )
    return rows[0].n


def test_a_dry_run_plans_without_making_anything(stack, example, store, tenant_slug, committed):
    spec = load_spec(example)
    report = run_campaign(spec, dry_run=True)
    assert (report.products, report.would_make, report.made, report.cached) == (3, 3, 0, 0)
    assert [r.status for r in report.results] == ["would-make"] * 3
    assert _generations(committed, tenant_slug) == 0
    assert store.list_keys(store.published, prefix=f"{tenant_slug}/") == []
    table = _artifact(f"campaign-{spec.name}-report", report.flow_run_id)
    assert table.type == "table" and "MUG-RED-01" in str(table.data)
    progress = _artifact(f"campaign-{spec.name}-progress", report.flow_run_id)
    assert progress.type == "progress" and float(progress.data) == 100.0
    row = committed(
        "SELECT c.spec, c.schedule_cron, c.timezone FROM campaigns c JOIN tenants t "
        "ON t.id = c.tenant_id WHERE t.slug = :slug",
        slug=tenant_slug,
    )
    assert row[0].schedule_cron == "0 6 * * 1" and row[0].timezone == "Europe/Berlin"
    assert len(row[0].spec["products"]) == 3


@needs_model
@pytest.mark.slow
def test_the_example_campaign_twice_generates_nothing_new(
    stack, example, store, tenant_slug, committed, tmp_path
):
    spec = load_spec(example)
    first = run_campaign(spec)
    assert (first.made, first.cached, first.failed, first.videos) == (3, 0, 0, 6)
    assert first.generated == 3  # one clip per product, shared by its two renditions
    # the run's GPU time: its three generations' own timings, as lineage holds them
    timings = committed(
        "SELECT (a.parameters->'timings'->>'per_video_s')::float8 AS s FROM activities a "
        "JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = :slug AND a.stage = 'generate'",
        slug=tenant_slug,
    )
    assert len(timings) == 3 and all(r.s > 0 for r in timings)
    assert first.gpu_seconds == pytest.approx(sum(r.s for r in timings), abs=0.002)
    published = sorted(store.list_keys(store.published, prefix=f"{tenant_slug}/"))
    videos = [k for k in published if k.endswith(".mp4")]
    assert len(videos) == 6
    copy = store.download(f"s3://{store.published}/{videos[0]}", tmp_path / "v.mp4")
    assert read_credentials(copy).valid  # content credentials (C2PA) on every published video

    second = run_campaign(spec)
    assert (second.made, second.cached, second.generated, second.failed) == (0, 3, 0, 0)
    assert second.gpu_seconds == 0  # everything came from the cache
    assert _generations(committed, tenant_slug) == 3
    assert sorted(store.list_keys(store.published, prefix=f"{tenant_slug}/")) == published
    assert [v.uri for r in second.results for v in r.videos] == [
        v.uri for r in first.results for v in r.videos
    ]
    dry = run_campaign(spec, dry_run=True)
    assert dry.cached == 3 and dry.would_make == 0

    table = json.loads(_artifact(f"campaign-{spec.name}-report", dry.flow_run_id).data)
    links = [row for row in table if row["link"]]
    assert len(links) == 6
    assert httpx.get(links[0]["link"], timeout=30).status_code == 200
    stored = committed(
        "SELECT count(*) AS n FROM assets a JOIN tenants t ON t.id = a.tenant_id "
        "JOIN campaigns c ON c.id = a.campaign_id WHERE t.slug = :slug AND a.kind = 'rendition'",
        slug=tenant_slug,
    )
    assert stored[0].n == 6  # every rendition is linked to its campaign in lineage


@needs_model
@pytest.mark.slow
def test_a_failed_product_is_remade_alone_by_retry(
    stack, tmp_path, tenant_slug, committed, monkeypatch
):
    from reelforge.core.errors import ReelForgeError

    spec_path = tmp_path / "two.yaml"
    spec_path.write_text(
        f"name: retry-{uuid.uuid4().hex[:6]}\ntenant: {tenant_slug}\n"
        "products:\n"
        "  - {sku: P-1, name: One, prompt: a purple circle moves down}\n"
        "  - {sku: P-2, name: Two, prompt: an orange square moves left}\n"
        'renditions: ["1:1"]\ngeneration: {speed: fast}\nconcurrency: 1\n'
    )
    spec = load_spec(spec_path)
    monkeypatch.setenv("REELFORGE_FAILPOINTS", f"product:1,scope-{uuid.uuid4().hex[:8]}:0")
    with pytest.raises(ReelForgeError, match="1 of 2 products failed") as failed:
        run_campaign(spec)
    assert _generations(committed, tenant_slug) == 1
    info = retry_run(failed.value.flow_run_id)
    assert info.state == "COMPLETED"
    assert _generations(committed, tenant_slug) == 2  # only the failed product was made
