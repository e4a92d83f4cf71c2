"""Speed profiles in the generate stage: lineage, the motion guard and the policy's refusal."""

from __future__ import annotations

import uuid

import pytest
import yaml
from sqlalchemy import text

from db.models import AssetKind
from db.session import session_scope
from models.generator import MotionCheck
from reelforge.core.errors import BlockedBySafety, InvalidInput
from reelforge.core.jobs import VideoJob
from tasks.generate.generate import generate_clip, refuse_collapsed_motion
from tasks.generate.stage import generate
from tasks.record import Output, context_for, record_stage
from tasks.safety.policy import load_policy

PROMPT = "a red circle moves from left to right"
SMALL = {"preset": "square-s", "frames": 5}


def test_motion_guard_measures_a_fast_clip_against_the_quality_clip():
    turbo = generate_clip({"prompt": PROMPT, "seed": 2, "speed": "turbo", **SMALL}, None)
    assert turbo.metadata.motion is None  # off unless asked: the reference costs a generation
    guarded = generate_clip(
        {"prompt": PROMPT, "seed": 2, "speed": "turbo", **SMALL}, None, motion_guard=True
    )
    quality = generate_clip({"prompt": PROMPT, "seed": 2, **SMALL}, None, motion_guard=True)
    motion = guarded.metadata.motion
    assert motion is not None and motion.mean_change > 0 and motion.reference > 0
    assert motion.ratio == pytest.approx(motion.mean_change / motion.reference, abs=1e-3)
    assert guarded.metadata.frames_sha256 == turbo.metadata.frames_sha256
    assert quality.metadata.motion is None  # quality is the reference itself


def _meta_with(motion: MotionCheck):
    clip = generate_clip({"prompt": PROMPT, "seed": 2, "speed": "fast", **SMALL}, None)
    return clip.metadata.model_copy(update={"motion": motion})


def test_the_policy_refuses_a_collapsed_clip_with_one_line_exit_3(tmp_path):
    collapsed = _meta_with(
        MotionCheck(mean_change=0.001, reference=0.05, ratio=0.02, collapsed=True)
    )
    refuse_collapsed_motion(collapsed, "allow")  # recorded, not refused
    with pytest.raises(BlockedBySafety, match="fast clip's motion collapsed") as e:
        refuse_collapsed_motion(collapsed, "refuse")
    assert e.value.exit_code == 3 and e.value.category == "motion" and "\n" not in str(e.value)
    moving = _meta_with(MotionCheck(mean_change=0.04, reference=0.05, ratio=0.8, collapsed=False))
    refuse_collapsed_motion(moving, "refuse")

    assert load_policy("default").motion_collapse == "allow"
    body = load_policy("default").model_dump(mode="json", exclude={"file_sha256"})
    for value in ("refuse", "sometimes"):
        (tmp_path / f"{value}.yaml").write_text(yaml.safe_dump(body | {"motion_collapse": value}))
    assert load_policy(tmp_path / "refuse.yaml").motion_collapse == "refuse"
    with pytest.raises(InvalidInput, match="motion_collapse"):
        load_policy(tmp_path / "sometimes.yaml")


@pytest.fixture
def motion_guard_on(stack, monkeypatch):
    """The guard on through the environment, as a deployment sets it (other tests clear the
    settings cache, so patching one Settings object would not reach the stage)."""
    from reelforge.core.settings import get_settings

    monkeypatch.setenv("REELFORGE_MOTION_GUARD", "true")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_stage_records_the_profile_and_motion_in_lineage(motion_guard_on, tmp_path):
    tenant = f"speed-{uuid.uuid4().hex[:10]}"
    ctx = context_for(tenant, flow_run_id=uuid.uuid4())
    prompt_file = tmp_path / "enhanced.txt"
    prompt_file.write_text(PROMPT)
    (enhanced,) = record_stage(
        ctx, "enhance", outputs=[Output(prompt_file, AssetKind.enhanced_prompt, {}, "text/plain")]
    )
    job = VideoJob(tenant=tenant, prompt=PROMPT, seed=4, speed="turbo", seconds=0.5)
    job = job.model_copy(update={"generation_preset": "square-s"})
    clip, cached = generate.fn(ctx, job, enhanced, PROMPT)
    assert cached is False
    assert clip.media["speed"] == "turbo" and clip.media["motion"]["reference"] > 0
    with session_scope() as session:
        (params,) = session.execute(
            text(
                "SELECT a.parameters FROM activities a JOIN generated g ON g.activity_id = a.id "
                "WHERE g.asset_id = :clip AND a.stage = 'generate'"
            ),
            {"clip": clip.id},
        ).one()
    assert params["speed"] == "turbo" and params["steps"] == 6
    assert params["step_cache"] == 0.25 and params["speed_lora_sha256"] is None
    assert set(params["motion"]) == {"mean_change", "reference", "ratio", "collapsed"}
    # another profile, same prompt and seed: another clip, not the cached turbo one
    fast, fast_cached = generate.fn(ctx, job.model_copy(update={"speed": "fast"}), enhanced, PROMPT)
    assert fast_cached is False and fast.id != clip.id and fast.sha256 != clip.sha256
