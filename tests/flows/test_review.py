"""Versions and review end to end on the real local stack (PostgreSQL, S3, Prefect, the small
model, the moderation model, ffmpeg), through the CLI: `generate --versions 3 --review` stops
with a review; `review approve --pick 2` publishes take 2 only, with the approver and the
considered takes in lineage; `reject` publishes nothing; bad decisions are one line, exit 2."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner

from reelforge.cli.app import app

runner = CliRunner()
PROMPT = "a red square moves from left to right"


def _cli(*args: str) -> tuple[int, dict, str]:
    res = runner.invoke(app, [*args, "--json"])
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    return res.exit_code, json.loads(lines[-1]) if lines else {}, res.stdout


def _open_review(tenant: str, seed: int, versions: int = 3) -> dict:
    code, payload, out = _cli("generate", PROMPT, "--versions", str(versions), "--review",
                              "--seed", str(seed), "--tenant", tenant)  # fmt: skip
    assert code == 0, out
    assert payload["status"] == "awaiting_review", payload
    return payload


def _published(committed, tenant: str) -> list:
    return committed(
        "SELECT a.id, a.kind FROM assets a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.published_uri IS NOT NULL",
        slug=tenant,
    )


@pytest.mark.slow
def test_three_takes_one_approved_and_published_with_its_decision_in_lineage(
    stack, tenant_slug: str, committed
):
    review = _open_review(tenant_slug, seed=0)
    assert [t["take"] for t in review["takes"]] == [1, 2, 3]
    assert [t["seed"] for t in review["takes"]] == [0, 1, 2]
    assert len({t["clip_id"] for t in review["takes"]}) == 3  # three different clips
    assert all(t["passed"] and 0.0 <= t["score"] <= 1.0 for t in review["takes"])
    assert _published(committed, tenant_slug) == []  # nothing published while it waits

    # each take's preview is a private preview asset, marked as such
    previews = committed(
        "SELECT a.media, a.published_uri FROM assets a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.kind = 'preview'",
        slug=tenant_slug,
    )
    assert sorted(p.media["take"] for p in previews) == [1, 2, 3]
    assert all(p.media["review_preview"] and p.published_uri is None for p in previews)
    # the takes were generated in one batch: one pass of the experts, its time shared
    generated = committed(
        "SELECT act.parameters FROM activities act JOIN tenants t ON t.id = act.tenant_id "
        "WHERE t.slug = :slug AND act.stage = 'generate'",
        slug=tenant_slug,
    )
    assert len(generated) == 3
    assert len({g.parameters["timings"]["batch_total_s"] for g in generated}) == 1
    assert all(g.parameters["expert_swaps"] == 1 for g in generated)
    # the vocabulary enhancer does not sample: the takes share one rewrite and its text check
    rewrites = committed(
        "SELECT act.stage, count(*) AS n FROM activities act JOIN tenants t "
        "ON t.id = act.tenant_id WHERE t.slug = :slug AND act.stage IN ('enhance', 'text_safety') "
        "GROUP BY act.stage",
        slug=tenant_slug,
    )
    assert {r.stage: r.n for r in rewrites} == {"enhance": 1, "text_safety": 1}

    code, listed, _ = _cli("review", "list", "--tenant", tenant_slug)
    assert code == 0 and [r["review_id"] for r in listed["reviews"]] == [review["review_id"]]

    code, video, out = _cli("review", "approve", review["review_id"], "--pick", "2",
                            "--note", "the brightest red", "--tenant", tenant_slug)  # fmt: skip
    assert code == 0, out
    # what `generate --json` prints
    assert {"asset_id", "url", "flow_run_id", "sha256", "size", "enhanced_prompt"} <= set(video)

    published = _published(committed, tenant_slug)
    assert sorted(p.kind for p in published) == ["rendition", "thumbnail"]  # exactly one video
    take2 = review["takes"][1]["clip_id"]
    sources = committed(
        "SELECT d.source_id FROM derived_from d WHERE d.asset_id = :id AND d.role = 'input'",
        id=video["asset_id"],
    )
    assert [str(s.source_id) for s in sources] == [take2]  # made from take 2

    code, lineage, _ = _cli("lineage", video["asset_id"])
    assert code == 0
    (decision,) = lineage["decisions"]
    assert decision["decision"] == "approved" and decision["agent"].startswith("operator")
    assert decision["note"] == "the brightest red"
    assert decision["chosen"] == take2
    assert sorted(decision["considered"]) == sorted(t["clip_id"] for t in review["takes"])

    code, shown, _ = _cli("review", "show", review["review_id"], "--tenant", tenant_slug)
    assert code == 0 and shown["status"] == "published" and shown["pick"] == 2

    # bad decisions: one line, exit 2, nothing more published
    other = f"x-{uuid.uuid4().hex[:10]}"
    for args in (
        ("approve", str(uuid.uuid4()), "--pick", "1", "--tenant", tenant_slug),  # unknown
        ("approve", "not-a-review", "--pick", "1", "--tenant", tenant_slug),
        ("approve", review["review_id"], "--pick", "1", "--tenant", tenant_slug),  # decided
        ("reject", review["review_id"], "--reason", "late", "--tenant", tenant_slug),
        ("approve", review["review_id"], "--pick", "2", "--tenant", other),  # other tenant
    ):
        code, failure, out = _cli("review", *args)
        assert code == 2, (args, out)
        assert failure["ok"] is False and "\n" not in failure["error"], failure
    assert len(_published(committed, tenant_slug)) == 2


@pytest.mark.slow
def test_a_rejected_review_publishes_nothing_and_leaves_no_orphans(
    stack, tenant_slug: str, committed
):
    from tests.reliability.conftest import Lineage

    review = _open_review(tenant_slug, seed=10, versions=2)
    code, failure, _ = _cli("review", "approve", review["review_id"], "--pick", "3",
                            "--tenant", tenant_slug)  # fmt: skip
    assert code == 2 and "out of range" in failure["error"]  # a pick out of range
    code, rejected, out = _cli("review", "reject", review["review_id"],
                               "--reason", "off brand", "--tenant", tenant_slug)  # fmt: skip
    assert code == 0, out
    assert rejected["status"] == "rejected" and rejected["note"] == "off brand"
    assert _published(committed, tenant_slug) == []
    decision = committed(
        "SELECT act.parameters FROM activities act JOIN tenants t ON t.id = act.tenant_id "
        "WHERE t.slug = :slug AND act.stage = 'review_decision'",
        slug=tenant_slug,
    )
    assert [d.parameters["decision"] for d in decision] == ["rejected"]
    assert Lineage(stack).orphans(tenant_slug) == []
    private, public = Lineage(stack).objects(tenant_slug)
    assert public == set() and private  # the takes stay, private and recorded


def test_versions_without_a_review_or_past_the_maximum_are_refused(stack):
    code, failure, _ = _cli("generate", PROMPT, "--versions", "3")
    assert code == 2 and "add --review" in failure["error"]
    code, failure, _ = _cli("generate", PROMPT, "--versions", "99", "--review")
    assert code == 2 and "REELFORGE_MAX_VERSIONS" in failure["error"]


@pytest.mark.slow
def test_more_takes_then_a_timeout_approves_the_best_or_rejects(stack, tenant_slug, committed):
    from sqlalchemy import text

    from db.session import session_scope
    from reelforge.ops.reviews import expire_reviews

    review = _open_review(tenant_slug, seed=20, versions=2)["review_id"]
    code, more, out = _cli("review", "more", review, "--versions", "1", "--tenant", tenant_slug)
    assert code == 0, out
    assert [t["take"] for t in more["takes"]] == [1, 2, 3]
    assert [t["seed"] for t in more["takes"]] == [20, 21, 22]
    waiting = _open_review(tenant_slug, seed=30, versions=1)["review_id"]

    with session_scope() as session:  # both ran out of time; the first approves its best
        session.execute(
            text("UPDATE reviews SET expires_at = now() - interval '1 second', on_timeout = "
                 "CASE WHEN id = :best THEN 'auto: best_score' ELSE 'reject' END "
                 "WHERE id IN (:best, :other)"),
            {"best": review, "other": waiting},
        )  # fmt: skip
    decided = {d["review_id"]: d for d in expire_reviews()}
    assert decided[review]["status"] == "published"
    assert decided[waiting]["status"] == "rejected"

    code, best, _ = _cli("review", "show", review, "--tenant", tenant_slug)
    scores = {t["take"]: t["score"] for t in best["takes"]}
    assert best["status"] == "published" and best["decided_by"] == "system"
    assert scores[best["pick"]] == max(scores.values())
    code, rejected, _ = _cli("review", "show", waiting, "--tenant", tenant_slug)
    assert rejected["status"] == "rejected" and rejected["decided_by"] == "system"
    renditions = [p for p in _published(committed, tenant_slug) if p.kind == "rendition"]
    assert len(renditions) == 1
    assert expire_reviews() == []  # nothing left to decide


@pytest.mark.slow
def test_a_campaign_with_review_required_waits_per_product_then_bulk_approves(
    stack, tmp_path, tenant_slug, committed
):
    import shutil
    from pathlib import Path

    from reelforge.campaigns.load import load_spec
    from reelforge.ops.runs import run_campaign

    examples = Path(__file__).resolve().parents[2] / "examples"
    shutil.copytree(examples, tmp_path / "ex")
    spec_path = tmp_path / "ex" / "campaign.yaml"
    text = spec_path.read_text().replace("tenant: example-shop", f"tenant: {tenant_slug}")
    spec_path.write_text(text + "review: required\nversions: 2\n")
    spec = load_spec(spec_path)

    report = run_campaign(spec)
    assert [r.status for r in report.results] == ["awaiting_review"] * 3
    assert _published(committed, tenant_slug) == []
    code, listed, _ = _cli("review", "list", "--campaign", spec.name, "--tenant", tenant_slug)
    assert code == 0 and len(listed["reviews"]) == 3  # one review per product
    assert {r["review_id"] for r in listed["reviews"]} == {str(r.review_id) for r in report.results}

    code, bulk, out = _cli("review", "approve", "--best", "--campaign", spec.name,
                           "--tenant", tenant_slug)  # fmt: skip
    assert code == 0, out
    assert len(bulk["approved"]) == 3 and all(a["pick"] for a in bulk["approved"])
    renditions = [p for p in _published(committed, tenant_slug) if p.kind == "rendition"]
    assert len(renditions) == 6  # each product in both of the campaign's renditions
