"""Brand styles end to end: `reelforge style add|list|remove`, a video made `--style` through
the real stack, with the LoRA asset used by the generate activity and in the cache key."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from models.train_style_lora import STYLES_DIR
from reelforge.cli.app import app
from reelforge.core.jobs import VideoJob
from reelforge.core.storage import sha256_file
from reelforge.ops.run import run_video

OCEAN = STYLES_DIR / "ocean.safetensors"
PROMPT = "a red circle moves from left to right"
runner = CliRunner()


def _cli(*args: str) -> tuple[int, dict]:
    done = runner.invoke(app, [*args, "--json"], catch_exceptions=False)
    return done.exit_code, json.loads(done.stdout.strip().splitlines()[-1])


def _raw_clip(committed, asset_id) -> tuple[dict, dict[str, str]]:
    """The raw clip under a rendition: its media, and the roles of what made it."""
    (clip,) = committed(
        "WITH RECURSIVE up(id) AS (SELECT CAST(:root AS uuid) UNION "
        "SELECT d.source_id FROM up JOIN derived_from d ON d.asset_id = up.id) "
        "SELECT a.id, a.media FROM up JOIN assets a ON a.id = up.id WHERE a.kind = 'raw_clip'",
        root=asset_id,
    )
    used = committed(
        "SELECT u.role, a.kind, a.sha256 FROM generated g JOIN used u ON u.activity_id = "
        "g.activity_id JOIN assets a ON a.id = u.asset_id WHERE g.asset_id = :clip",
        clip=clip.id,
    )
    return clip.media, {u.role: (u.kind, u.sha256) for u in used}


def test_a_registered_style_makes_the_video_and_is_in_its_lineage(
    stack, tenant_slug, committed, tmp_path
):
    code, added = _cli("style", "add", "ocean", str(OCEAN), "--tenant", tenant_slug)
    assert code == 0, added
    assert added["sha256"] == sha256_file(OCEAN) and added["rank"] == 4
    code, listed = _cli("style", "list", "--tenant", tenant_slug)
    assert [s["name"] for s in listed["styles"]] == ["ocean"]

    job = VideoJob(tenant=tenant_slug, prompt=PROMPT, seed=1, speed="fast", aspect="1:1")
    styled = run_video(job.model_copy(update={"style": "ocean", "style_strength": 1.0}))
    plain = run_video(job)
    media, used = _raw_clip(committed, styled.video.asset_id)
    assert used["style"] == ("style_lora", sha256_file(OCEAN))
    assert media["style_sha256"] == sha256_file(OCEAN) and media["style_strength"] == 1.0
    plain_media, plain_used = _raw_clip(committed, plain.video.asset_id)
    assert "style" not in plain_used and plain_media["style_sha256"] is None
    assert media["cache_key"] != plain_media["cache_key"]
    assert media["frames_sha256"] != plain_media["frames_sha256"]

    code, removed = _cli("style", "remove", "ocean", "--tenant", tenant_slug)
    assert code == 0 and removed["removed"]["name"] == "ocean"
    code, failed = _cli(
        "generate", PROMPT, "--style", "ocean:0.5", "--tenant", tenant_slug
    )  # refused before any flow run: the name is gone
    assert code == 2
    assert failed["error"] == (
        f"tenant {tenant_slug} has no style 'ocean'; register it with "
        f"`reelforge style add ocean FILE.safetensors --tenant {tenant_slug}`"
    )
    # the removed name's asset stays in the lineage of the video made with it
    assert _raw_clip(committed, styled.video.asset_id)[1]["style"][0] == "style_lora"


def test_a_file_that_does_not_fit_is_refused_and_not_stored(
    stack, tenant_slug, committed, tmp_path
):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"{}")
    code, out = _cli("style", "add", "bad", str(bad), "--tenant", tenant_slug)
    assert code == 2 and "is not a safetensors file" in out["error"]
    code, out = _cli("style", "add", "Bad Name", str(OCEAN), "--tenant", tenant_slug)
    assert code == 2 and out["error"].startswith("style name 'Bad Name'")
    rows = committed(
        "SELECT count(*) AS n FROM assets a JOIN tenants t ON t.id = a.tenant_id "
        "WHERE t.slug = :slug AND a.kind = 'style_lora'",
        slug=tenant_slug,
    )
    assert rows[0].n == 0
