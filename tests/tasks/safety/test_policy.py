"""Policies as data files, and the aggregation of frame scores into a verdict."""

from __future__ import annotations

import pytest

from reelforge.core.errors import InvalidInput
from tasks.safety.policy import list_policies, load_policy
from tasks.safety.verdicts import Detection, FrameResult
from tasks.safety.visual import aggregate


def test_shipped_policies_load_with_versions() -> None:
    assert {"default", "test-faces", "example-tenant"} <= set(list_policies())
    default = load_policy()
    assert default.name == "default" and default.visual.aggregation == "consecutive"
    assert "FACE_FEMALE" not in default.visual.classes
    assert default.version_id.startswith("default@2026.11.1+") and len(default.file_sha256) == 64
    faces = load_policy("test-faces")
    assert faces.visual.classes["FACE_FEMALE"].threshold == 0.5
    assert faces.visual.aggregation == "consecutive" and faces.visual.consecutive == 2


def test_bad_policies_are_invalid_input(tmp_path) -> None:
    with pytest.raises(InvalidInput, match="unknown safety policy"):
        load_policy("no-such-tenant")
    with pytest.raises(InvalidInput, match="not valid"):
        load_policy("../etc/passwd")
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "name: slow\nversion: '1'\nvisual:\n  sample_fps: 1\n  classes: {FACE_MALE: {threshold: 0.5}}\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput, match="sample_fps"):
        load_policy(str(slow))


def test_tenant_policy_dir_is_searched_first(tmp_path, monkeypatch) -> None:
    from reelforge.core.settings import get_settings

    (tmp_path / "acme.yaml").write_text(
        "name: acme\nversion: '7'\nvisual:\n  classes: {FACE_MALE: {threshold: 0.6}}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("REELFORGE_SAFETY_POLICY_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert load_policy("acme").version_id.startswith("acme@7+")
    finally:
        monkeypatch.delenv("REELFORGE_SAFETY_POLICY_DIR")
        get_settings.cache_clear()


def _frames(scores: list[float], label: str = "FACE_FEMALE") -> list[FrameResult]:
    return [
        FrameResult(
            timestamp=i * 0.5,
            reasons=["interval"],
            detections=[Detection(label=label, score=s, box=(0, 0, 1, 1))] if s else [],
        )
        for i, s in enumerate(scores)
    ]


def test_consecutive_aggregation() -> None:
    pol = load_policy("test-faces").visual  # 2 consecutive >= 0.5, or one >= 0.9
    assert aggregate(_frames([0.6, 0.0, 0.6, 0.0, 0.6]), pol) == []  # never two in a row
    [flag] = aggregate(_frames([0.0, 0.6, 0.7, 0.0]), pol)
    assert (flag.longest_run, flag.flagged_samples, flag.timestamps) == (2, 2, [0.5, 1.0])
    assert flag.max_score == 0.7 and flag.category == "face"
    [hard] = aggregate(_frames([0.0, 0.95, 0.0]), pol)  # one sample over the hard threshold
    assert hard.longest_run == 1
    assert aggregate(_frames([0.7]), pol)  # an image has one sample: that one counts


def test_max_aggregation() -> None:
    pol = load_policy("example-tenant").visual
    assert aggregate(_frames([0.0, 0.36, 0.0], "FEMALE_BREAST_EXPOSED"), pol)
    assert aggregate(_frames([0.0, 0.34, 0.0], "FEMALE_BREAST_EXPOSED"), pol) == []
    assert aggregate(_frames([0.99, 0.99], "FACE_FEMALE"), pol) == []  # not in the policy


def test_default_policy_needs_two_consecutive_samples_or_one_over_the_hard_threshold() -> None:
    pol = load_policy("default").visual
    assert aggregate(_frames([0.0, 0.41, 0.0], "FEMALE_BREAST_EXPOSED"), pol) == []
    assert aggregate(_frames([0.0, 0.36, 0.37, 0.0], "FEMALE_BREAST_EXPOSED"), pol)
    assert aggregate(_frames([0.0, 0.65, 0.0], "FEMALE_BREAST_EXPOSED"), pol)
    assert aggregate(_frames([0.36], "FEMALE_BREAST_EXPOSED"), pol)  # an image: one sample counts
