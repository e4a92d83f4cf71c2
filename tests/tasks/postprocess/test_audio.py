from __future__ import annotations

import subprocess

import numpy as np
import pytest

from reelforge.core.errors import InvalidInput
from tasks.postprocess.audio import AudioSpec, plan_audio, probe_audio
from tasks.postprocess.ffmpeg import ffmpeg_exe
from tasks.postprocess.renditions import render_rendition, rendition_preset

from .conftest import EXAMPLES, ebur128, probe, tone, write_wav


def _convert(src, dst):
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), str(dst)], check=True)
    return dst


@pytest.mark.parametrize("ext", ["mp3", "m4a", "flac"])
def test_probe_accepts_formats(tmp_path, music2s, ext):
    info = probe_audio(_convert(music2s, tmp_path / f"m.{ext}"))
    assert abs(info.duration - 2.5) < 0.1
    assert -20 < info.peak_dbfs < 0


@pytest.mark.parametrize(
    ("content", "name", "needle"),
    [
        (b"\x00\x01garbage" * 500, "x.mp3", "corrupt or not audio"),
        (b"hello, I am a text file\n" * 50, "x.wav", "corrupt or not audio"),
        (b"", "e.wav", "is empty"),
    ],
)
def test_corrupt_music_is_refused(tmp_path, content, name, needle):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InvalidInput, match=needle) as ei:
        probe_audio(p)
    assert "\n" not in str(ei.value)


def test_silent_music_is_refused(tmp_path):
    p = write_wav(tmp_path / "s.wav", np.zeros(44100 * 2))
    with pytest.raises(InvalidInput, match="is silent"):
        probe_audio(p)


def test_video_only_file_is_refused(clip64):
    with pytest.raises(InvalidInput, match="no audio stream"):
        probe_audio(clip64)


def test_music_shorter_than_video(tmp_path, cache_dir):
    short = write_wav(tmp_path / "short.wav", tone(0.8))
    with pytest.raises(InvalidInput, match="allow looping"):
        plan_audio(AudioSpec(music=str(short), loop=False), 3.0, cache_dir)
    tiny = write_wav(tmp_path / "tiny.wav", tone(0.2))
    with pytest.raises(InvalidInput, match=r"at least 0\.5 s"):
        plan_audio(AudioSpec(music=str(tiny)), 3.0, cache_dir)
    # default: looped to the video's length (documented)
    plan = plan_audio(AudioSpec(music=str(short)), 3.0, cache_dir)
    assert plan.input_args()[0][:2] == ["-stream_loop", "-1"]


def _render_with(clip, out, cache_dir, **audio):
    return render_rendition(clip, out, rendition_preset("16:9", "720p", 24), audio=AudioSpec(**audio),
                            duration=3.0, cache_dir=cache_dir)  # fmt: skip


def test_loudness_and_format_after_looping_short_peaky_music(tmp_path, clip64, cache_dir):
    """The example track (kicks, plucks: too peaky for a plain gain) looped from a 1.2 s cut to a
    3 s video (clip itself looped): -14 +/- 1 LUFS and <= -1 dBTP, measured by ebur128."""
    cut = tmp_path / "cut.wav"
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-t",
            "1.2",
            "-i",
            str(EXAMPLES / "music.wav"),
            str(cut),
        ],
        check=True,
    )
    out = tmp_path / "o.mp4"
    r = _render_with(clip64, out, cache_dir, music=str(cut))
    i, tp = ebur128(out)
    assert abs(i - (-14.0)) <= 1.0, i
    assert tp <= -1.0, tp
    p = probe(out)
    assert (p["audio_codec"], p["audio_rate"], p["audio_channels"]) == ("aac", 48000, 2)
    assert abs(p["duration"] - 3.0) < 0.1
    assert r.params["loop_clip"] is True


def test_loudness_quiet_tone_linear_gain(tmp_path, clip64, cache_dir):
    quiet = write_wav(tmp_path / "q.wav", tone(4.0, amp=0.02))
    out = tmp_path / "q.mp4"
    r = _render_with(clip64, out, cache_dir, music=str(quiet))
    i, tp = ebur128(out)
    assert abs(i + 14.0) <= 1.0 and tp <= -1.0, (i, tp)
    assert r.params["audio"]["measured"]["input_i"] < -30  # it really was quiet before


def test_fades(tmp_path, clip64, cache_dir):
    import av

    loud = write_wav(
        tmp_path / "l.wav", 0.3 * np.sin(2 * np.pi * 440 * np.arange(44100 * 4) / 44100)
    )
    out = tmp_path / "f.mp4"
    _render_with(clip64, out, cache_dir, music=str(loud), fade_in=1.0, fade_out=1.0)
    with av.open(str(out)) as c:
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    sr = 48000
    rms = lambda a: float(np.sqrt(np.mean(a**2)))  # noqa: E731
    start, mid, end = (
        rms(pcm[int(0.05 * sr) : int(0.15 * sr)]),
        rms(pcm[int(1.4 * sr) : int(1.6 * sr)]),
        rms(pcm[int(2.85 * sr) : int(2.95 * sr)]),
    )
    assert start < 0.2 * mid and end < 0.2 * mid


def test_voice_over_ducks_music(tmp_path, clip64, cache_dir):
    """Music 220 Hz, voice 1 kHz from 1.0 s to 2.0 s: the 220 Hz band must drop while it speaks."""
    import av

    sr = 44100
    music = write_wav(tmp_path / "m.wav", 0.2 * np.sin(2 * np.pi * 220 * np.arange(sr * 3) / sr))
    v = np.zeros(sr * 3)
    seg = np.arange(sr)
    v[sr : 2 * sr] = 0.5 * np.sin(2 * np.pi * 1000 * seg / sr)
    voice = write_wav(tmp_path / "v.wav", v)
    out = tmp_path / "d.mp4"
    _render_with(
        clip64, out, cache_dir, music=str(music), voice=str(voice), fade_in=0.0, fade_out=0.0
    )
    with av.open(str(out)) as c:
        pcm = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])

    def band220(a):
        spec = np.abs(np.fft.rfft(a * np.hanning(len(a))))
        freqs = np.fft.rfftfreq(len(a), 1 / 48000)
        return spec[(freqs > 200) & (freqs < 240)].sum()

    before = band220(pcm[int(0.4 * 48000) : int(0.8 * 48000)])
    during = band220(pcm[int(1.4 * 48000) : int(1.8 * 48000)])
    assert during < 0.5 * before, (before, during)
