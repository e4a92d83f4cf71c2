"""The ad flow end to end on the real local stack (PostgreSQL, S3, Prefect, the small model,
the ONNX moderation model, ffmpeg): `reelforge ad examples/storyboard.yaml --json --out`."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import webvtt
from typer.testing import CliRunner

from reelforge.campaigns.storyboard import load_storyboard
from reelforge.cli.app import app
from tasks.postprocess.ffmpeg import ffmpeg_exe

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


@pytest.fixture
def storyboard(tmp_path: Path, tenant_slug: str) -> Path:
    """The example storyboard for a tenant of this test's own (its own generation cache)."""
    for name in ("logo.png", "music.wav"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    text = (EXAMPLES / "storyboard.yaml").read_text(encoding="utf-8")
    path = tmp_path / "storyboard.yaml"
    path.write_text(text.replace("tenant: example-shop", f"tenant: {tenant_slug}"), "utf-8")
    return path


def _ad(spec: Path, out: Path) -> dict:
    res = runner.invoke(app, ["ad", str(spec), "--json", "--out", str(out)])
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.exit_code == 0, payload
    return payload


def _scene_changes(path: Path) -> list[float]:
    """ffmpeg's scene detection on 4 frames a second (a 0.4 s transition is one or two steps),
    in RGB (on YUV the score barely sees a change of hue at the same brightness)."""
    graph = "fps=4,format=rgb24,select='gt(scene,0.15)',showinfo"
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-an", "-vf", graph,
                           "-f", "null", "-"], capture_output=True, text=True, check=True)  # fmt: skip
    return [float(t) for t in re.findall(r"pts_time:([0-9.]+)", proc.stderr)]


def _loudness(path: Path) -> tuple[float, float]:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-vn",
                           "-af", "ebur128=peak=true", "-f", "null", "-"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    summary = proc.stderr[proc.stderr.rindex("Summary:") :]
    integrated = float(re.search(r"I:\s+(-?[0-9.]+) LUFS", summary).group(1))
    peak = float(re.search(r"True peak:\s+Peak:\s+(-?[0-9.]+) dBFS", summary).group(1))
    return integrated, peak


def _seconds(stamp: str) -> float:
    """HH:MM:SS.mmm (webvtt-py's ``*_in_seconds`` drop the milliseconds)."""
    hours, minutes, seconds = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _frame_at(path: Path, seconds: float) -> np.ndarray:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= seconds:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {seconds} s")


def test_the_example_ad_is_published_with_its_captions_and_lineage(
    stack, storyboard: Path, tmp_path: Path, committed
):
    spec = load_storyboard(storyboard)
    out = tmp_path / "ad.mp4"
    payload = _ad(storyboard, out)

    # A 9:16 ad of 12 s or more, H.264 with AAC audio.
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (720, 1280)
        assert video.codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        duration = container.duration / 1_000_000
    assert duration >= 12 and abs(duration - spec.duration) < 0.1

    # Every shot change (and the end card) is found by scene detection at the spec's time.
    found, changes = _scene_changes(out), spec.starts()[1:]
    for change in changes:
        assert any(abs(t - change) <= 0.5 for t in found), (change, found)
    # and nothing else reads as one (a clip looped to fill its shot would)
    assert all(any(abs(t - c) <= 0.5 for c in changes) for t in found), (changes, found)

    # The last seconds are the end card: its background colour at the left edge.
    card = _frame_at(out, duration - 1.0)
    edge = card[500:800, 5:40].reshape(-1, 3).mean(axis=0)
    assert np.abs(edge - np.array([0x1D, 0x35, 0x57])).max() < 20, edge
    shot = _frame_at(out, 1.0)[500:800, 5:40].reshape(-1, 3).mean(axis=0)
    assert np.abs(shot - np.array([0x1D, 0x35, 0x57])).max() > 40, shot  # not the card

    # Music across the whole ad at -14 LUFS, true peak at most -1 dBTP.
    integrated, peak = _loudness(out)
    assert abs(integrated + 14) <= 1, integrated
    assert peak <= -1.0, peak

    # The WebVTT (and SRT) are published beside the video; the WebVTT parses and its cues
    # match the spec.
    vtt = httpx.get(payload["webvtt_url"], timeout=30)
    assert vtt.status_code == 200
    captions = webvtt.from_buffer(io.StringIO(vtt.text))
    expected = spec.cues()
    assert [c.text for c in captions] == [cue["text"] for cue in expected]
    for caption, cue in zip(captions, expected, strict=True):
        assert abs(_seconds(caption.start) - cue["start"]) < 0.01
        assert abs(_seconds(caption.end) - cue["end"]) < 0.01
    srt = httpx.get(payload["srt_url"], timeout=30)
    assert srt.status_code == 200 and "00:00:03,500 --> 00:00:07,000" in srt.text

    # Lineage: the ad derives from each shot's clip in order, the captions, the end card's
    # text and logo, and the music.
    rows = committed(
        """SELECT d.role, a.kind, a.id FROM derived_from d JOIN assets a ON a.id = d.source_id
           WHERE d.asset_id = :id""",
        id=payload["asset_id"],
    )
    roles = {row.role: row for row in rows}
    assert [str(roles[f"shot-{i}"].id) for i in range(4)] == payload["shots"]
    assert roles["captions-vtt"].kind == "captions" and roles["music"].kind == "music"
    assert roles["end_card"].kind == "overlay_text" and roles["logo"].kind == "logo"
    assert payload["generated"] == 4
    # the four shots were generated in one batch of the model (one pass, one expert swap)
    batches = committed(
        "SELECT media ->> 'batch_size' AS size FROM assets WHERE id = ANY(CAST(:ids AS uuid[]))",
        ids=payload["shots"],
    )
    assert [row.size for row in batches] == ["4"] * 4


def test_editing_one_shot_generates_that_shot_only(stack, storyboard: Path, tmp_path: Path):
    first = _ad(storyboard, tmp_path / "first.mp4")
    text = storyboard.read_text(encoding="utf-8")
    storyboard.write_text(text.replace("a blue square moves up", "a purple square moves up"))
    second = _ad(storyboard, tmp_path / "second.mp4")
    assert second["generated"] == 1
    same = [a == b for a, b in zip(first["shots"], second["shots"], strict=True)]
    assert same == [True, False, True, True]
    assert second["asset_id"] != first["asset_id"]


def test_lineage_of_an_ad_lists_its_shots_in_timeline_order(stack, storyboard: Path, tmp_path):
    payload = _ad(storyboard, tmp_path / "ad.mp4")
    res = runner.invoke(app, ["lineage", payload["asset_id"]], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.stdout
    lines = res.stdout.splitlines()
    shots = [next(i for i, line in enumerate(lines) if f"(shot-{n}) raw_clip {shot}" in line)
             for n, shot in enumerate(payload["shots"])]  # fmt: skip
    assert shots == sorted(shots) and len(set(shots)) == 4
