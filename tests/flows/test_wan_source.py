"""The production (`wan`) source through the whole pipeline on the CPU: a tiny random
checkpoint in the official Wan2.2-T2V-A14B-Diffusers layout, run by `reelforge generate`
(with `--seconds` and `--preset`), by a worker that a campaign dispatches to, with the
checkpoint's sha in lineage; a mismatched directory is a one-line error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from reelforge.core.checkpoints import check_checkpoint_dir, checkpoint_digest
from reelforge.core.errors import InvalidInput
from tests.flows.workers import running_workers
from tests.wan_checkpoint import save_tiny_wan

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wan_dir(tmp_path_factory) -> Path:
    return save_tiny_wan(tmp_path_factory.mktemp("wan") / "Wan2.2-T2V-A14B-Diffusers")


def _wan_env(wan_dir: Path) -> dict[str, str]:
    return {
        "REELFORGE_GENERATOR": "wan",
        "REELFORGE_WAN_CHECKPOINT_DIR": str(wan_dir),
        "REELFORGE_DEVICE": "cpu",
    }


def _generate(*args: str, env: dict[str, str]) -> tuple[int, dict]:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "reelforge"), "generate", *args, "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=1200,
    )
    lines = done.stdout.strip().splitlines()
    assert lines, done.stderr[-2000:]
    return done.returncode, json.loads(lines[-1])


def _checkpoint_of_clip(committed, tenant: str) -> list:
    return committed(
        "SELECT m.sha256 AS checkpoint, c.media AS media FROM assets c "
        "JOIN tenants t ON t.id = c.tenant_id "
        "JOIN generated g ON g.asset_id = c.id JOIN used u ON u.activity_id = g.activity_id "
        "JOIN assets m ON m.id = u.asset_id AND m.kind = 'model_checkpoint' "
        "WHERE t.slug = :slug AND c.kind = 'raw_clip'",
        slug=tenant,
    )


def test_generate_publishes_a_five_second_480p_video(stack, wan_dir, tenant_slug, committed):
    code, out = _generate(
        "a red circle moves from left to right",
        "--seconds", "5", "--preset", "480p-landscape", "--steps", "2",
        "--tenant", tenant_slug,
        env=_wan_env(wan_dir),
    )  # fmt: skip
    assert code == 0, out
    assert 5.0 <= out["duration_s"] <= 5.2  # 81 frames at 16 fps
    rows = _checkpoint_of_clip(committed, tenant_slug)
    assert len(rows) == 1
    assert rows[0].checkpoint == checkpoint_digest(wan_dir)
    media = rows[0].media
    assert (media["source"], media["frames"], media["height"], media["width"]) == (
        "wan", 81, 480, 832,
    )  # fmt: skip


def test_seconds_past_the_maximum_and_unknown_preset_are_refused(stack, wan_dir, tenant_slug):
    env = _wan_env(wan_dir)
    code, out = _generate("a red circle", "--seconds", "12", "--tenant", tenant_slug, env=env)
    assert code == 2
    assert out["error"] == (
        "12 s is 193 frames at 16 fps, past the wan model's maximum of 161; "
        "use --seconds 10 or less"
    )
    code, out = _generate("a red circle", "--preset", "square", "--tenant", tenant_slug, env=env)
    assert code == 2 and "choose one of 720p-landscape" in out["error"]


def test_a_campaign_on_a_worker_runs_the_wan_source(
    pools, wan_dir, tmp_path, tenant_slug, committed, monkeypatch
):
    from reelforge.campaigns.load import load_spec
    from reelforge.core.settings import get_settings
    from reelforge.ops.runs import run_campaign

    env = _wan_env(wan_dir)
    for key, value in env.items():  # the orchestrator's cache keys name the same model
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    spec_path = tmp_path / "wan.yaml"
    spec_path.write_text(
        f"name: wan-{uuid.uuid4().hex[:6]}\ntenant: {tenant_slug}\nproducts:\n"
        "  - {sku: W-1, name: One, prompt: a blue square moves up}\n"
        'renditions: ["1:1"]\n'
        "generation: {steps: 2, preset: 480p-portrait, seconds: 0.25}\n"
    )
    spec = load_spec(spec_path)
    with running_workers(1, "gpu", tmp_path, env=env):
        report = run_campaign(spec, executor="pool")
    assert (report.made, report.failed) == (1, 0)
    rows = _checkpoint_of_clip(committed, tenant_slug)
    assert [r.checkpoint for r in rows] == [checkpoint_digest(wan_dir)]
    media = rows[0].media
    assert (media["frames"], media["height"], media["width"]) == (5, 832, 480)
    get_settings.cache_clear()


def _copy(wan_dir: Path, to: Path, **index_changes) -> Path:
    shutil.copytree(wan_dir, to)
    index = json.loads((to / "model_index.json").read_text())
    index.update(index_changes)
    (to / "model_index.json").write_text(json.dumps(index))
    return to


def test_a_mismatched_directory_is_one_line(wan_dir, tmp_path):
    wan21 = _copy(wan_dir, tmp_path / "wan21", _class_name="WanImageToVideoPipeline")
    with pytest.raises(InvalidInput) as e:
        check_checkpoint_dir(wan21)
    assert str(e.value) == (
        f"Wan checkpoint {wan21}: model_index.json has _class_name 'WanImageToVideoPipeline', "
        "not 'WanPipeline'; point REELFORGE_WAN_CHECKPOINT_DIR at a "
        "Wan2.2-T2V-A14B-Diffusers directory"
    )
    one_expert = _copy(wan_dir, tmp_path / "one", transformer_2=[None, None])
    with pytest.raises(InvalidInput, match=r"names no transformer_2 in model_index\.json"):
        check_checkpoint_dir(one_expert)
    no_dir = _copy(wan_dir, tmp_path / "nodir")
    shutil.rmtree(no_dir / "transformer_2")
    with pytest.raises(InvalidInput) as e:
        check_checkpoint_dir(no_dir)
    assert str(e.value) == f"incomplete Wan checkpoint {no_dir}: missing transformer_2/config.json"
