"""The ad's timeline on real ffmpeg (no stack): changes where the storyboard puts them, a shot
longer than its clip slowed then held (no loop, so no false change), the end card last, and
captions written as WebVTT and SRT that independent parsers read back."""

from __future__ import annotations

import re
import subprocess
import wave
from pathlib import Path

import numpy as np
import pysubs2
import pytest
import webvtt

from tasks.assemble.captions import write_captions
from tasks.assemble.timeline import Cue, EndCard, Shot, render_ad, segment_lengths
from tasks.postprocess.ffmpeg import ffmpeg_exe, probe_video
from tasks.postprocess.renditions import frames_to_mp4, rendition_preset

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _clip(path: Path, colour: tuple[int, int, int], seconds: float = 2.125) -> str:
    """The tiny model's kind of clip: 64x64 at 8 fps, a coloured square drifting right."""
    n = round(seconds * 8)
    frames = np.full((n, 64, 64, 3), 228, np.uint8)
    for t in range(n):
        frames[t, 16:48, 8 + t : 40 + t] = colour
    return str(frames_to_mp4(frames, path, fps=8))


def _changes(path: Path) -> list[float]:
    graph = "fps=4,format=rgb24,select='gt(scene,0.15)',showinfo"
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-an", "-vf", graph,
                           "-f", "null", "-"], capture_output=True, text=True, check=True)  # fmt: skip
    return [float(t) for t in re.findall(r"pts_time:([0-9.]+)", proc.stderr)]


@pytest.fixture(scope="module")
def ad(tmp_path_factory) -> tuple[Path, object, list[Shot]]:
    tmp = tmp_path_factory.mktemp("ad")
    clips = [_clip(tmp / f"{i}.mp4", c) for i, c in
             enumerate([(220, 30, 30), (35, 80, 225), (30, 165, 60)])]  # fmt: skip
    shots = [Shot(2.5, "warm", "fade", 0.4), Shot(5.5, None, "wipeleft", 0.4), Shot(2.0, "cool")]
    card = EndCard(2.0, "#1d3557", str(EXAMPLES / "logo.png"), "Aurora", "-20%", "立即购买")
    cues = [Cue(0, 2.5, "Summer starts now"), Cue(2.5, 8.0, "夏季跑鞋，八折")]
    out = tmp / "ad.mp4"
    result = render_ad(clips, shots, card, cues, out, rendition_preset("1:1", "720p", 24),
                       music=str(EXAMPLES / "music.wav"), cache_dir=tmp / "cache")  # fmt: skip
    return out, result, shots


def test_segments_overlap_by_half_a_transition_each_side():
    shots = [Shot(3.0, None, "fade", 0.4), Shot(4.0, None, "cut"), Shot(2.0, None, "wipeup", 1.0)]
    lengths = segment_lengths(shots, EndCard(3.0, transition="fade", transition_duration=0.5))
    # the last shot's own transition is unused: the end card's leads into the card
    assert lengths == pytest.approx([3.2, 4.2, 2.25, 3.25])
    # the ad is exactly the storyboard's length: what the overlaps add, the transitions take
    assert sum(lengths) - 0.4 - 0.5 == pytest.approx(12.0)


def test_the_ad_has_its_length_and_changes_where_the_storyboard_puts_them(ad):
    out, _result, _ = ad
    info = probe_video(out)
    assert abs(info.duration - 12.0) < 0.1 and (info.width, info.height) == (720, 720)
    assert info.has_audio
    found = _changes(out)
    for change in (2.5, 8.0, 10.0):
        assert any(abs(t - change) <= 0.5 for t in found), (change, found)


def test_a_long_shot_is_slowed_then_held_without_a_loop(ad):
    out, result, _ = ad
    long_shot = result.params["shots"][1]
    assert long_shot["slow"] == 2.0 and long_shot["hold_s"] > 1.0
    # inside the held shot (3 to 7.5 s) nothing reads as a change: no loop jump
    assert not [t for t in _changes(out) if 3.0 < t < 7.5]


def _loudness(path: Path) -> float:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-vn",
                           "-af", "ebur128", "-f", "null", "-"], capture_output=True, text=True)  # fmt: skip
    summary = proc.stderr[proc.stderr.rindex("Summary:") :]
    return float(re.search(r"I:\s+(-?[0-9.]+) LUFS", summary).group(1))


def test_music_over_the_whole_ad_is_at_minus_14_lufs_with_or_without_a_voice_over(ad, tmp_path):
    out, result, _shots = ad
    assert abs(_loudness(out) + 14) <= 1 and result.params["audio"]["music"]
    voice = tmp_path / "voice.wav"
    t = np.arange(4 * 44100) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 2 * t) > 0)).astype("<f4")
    with wave.open(str(voice), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes((tone * 32767).astype("<i2").tobytes())
    clip = _clip(tmp_path / "c.mp4", (220, 30, 30))
    voiced = render_ad([clip, clip], [Shot(3.0, None, "fade", 0.4), Shot(3.0)], EndCard(2.0),
                       [], tmp_path / "voiced.mp4", rendition_preset("1:1", "720p", 24),
                       music=str(EXAMPLES / "music.wav"), voice=str(voice),
                       cache_dir=tmp_path / "cache")  # fmt: skip
    assert voiced.params["audio"]["voice"] and abs(_loudness(tmp_path / "voiced.mp4") + 14) <= 1


def test_captions_are_webvtt_and_srt_that_parsers_read_back(tmp_path: Path):
    cues = [{"start": 0.0, "end": 2.5, "text": "Summer starts now"},
            {"start": 2.5, "end": 8.0, "text": "夏季跑鞋，八折"}]  # fmt: skip
    files = write_captions(cues, tmp_path, "ad")
    vtt = webvtt.read(str(files["vtt"]))
    assert [(c.start, c.end, c.text) for c in vtt] == [
        ("00:00:00.000", "00:00:02.500", "Summer starts now"),
        ("00:00:02.500", "00:00:08.000", "夏季跑鞋，八折"),
    ]
    srt = webvtt.from_srt(str(files["srt"]))
    assert [c.text for c in srt] == [cue["text"] for cue in cues]
    assert pysubs2.load(str(files["srt"]))[1].start == 2500
