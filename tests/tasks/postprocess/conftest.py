"""Shared fixtures: tiny synthetic inputs and independent measurements (PyAV, ebur128, box walk)."""

from __future__ import annotations

import re
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from tasks.postprocess.ffmpeg import ffmpeg_exe
from tasks.postprocess.renditions import frames_to_mp4

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"


def make_clip(path: Path, *, seconds: float = 1.5, size: tuple[int, int] = (64, 64), fps: int = 16,
              bg=(30, 60, 90), fg=(250, 200, 40), box=(0.3, 0.35, 0.3, 0.3)) -> Path:  # fmt: skip
    """A flat background with a coloured square drifting right; box = (x, y, w, h) fractions."""
    w, h = size
    n = int(seconds * fps)
    fr = np.empty((n, h, w, 3), np.uint8)
    fr[...] = bg
    bx, by, bw, bh = (int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h))
    for t in range(n):
        x = min(w - bw, bx + t // 4)
        fr[t, by : by + bh, x : x + bw] = fg
    return frames_to_mp4(fr, path, fps=fps)


def write_wav(path: Path, x: np.ndarray, rate: int = 44100) -> Path:
    if x.ndim == 1:
        x = np.stack([x, x], axis=1)
    pcm = (np.clip(x, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3, rate: int = 44100) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amp * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 2 * t))


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) measured by ffmpeg's ebur128 filter on the decoded file."""
    r = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-vn", "-af", "ebur128=peak=true",
         "-f", "null", "-"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    s = r.stderr[r.stderr.rfind("Summary:") :]
    i = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", s).group(1))
    tp = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", s).group(1))
    return i, tp


def top_level_boxes(path: Path) -> list[str]:
    """Walk the MP4's top-level boxes from the bytes (independent of ffmpeg and PyAV)."""
    out = []
    with open(path, "rb") as f:
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                break
            size, typ = struct.unpack(">I4s", hdr)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
                f.seek(size - 16, 1)
            elif size == 0:
                out.append(typ.decode("latin1"))
                break
            else:
                f.seek(size - 8, 1)
            out.append(typ.decode("latin1"))
    return out


def probe(path: Path) -> dict:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = next((s for s in c.streams if s.type == "audio"), None)
        keys = []
        frames = 0
        for pkt in c.demux(v):
            if pkt.size:
                frames += 1
                if pkt.is_keyframe:
                    keys.append(frames - 1)
        return {
            "codec": v.codec_context.name,
            "profile": v.codec_context.profile,
            "pix_fmt": v.codec_context.pix_fmt,
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "fps": float(v.average_rate),
            "frames": frames,
            "keyframes": keys,
            "duration": c.duration / 1e6,
            "bit_rate": c.bit_rate,
            "audio_codec": a.codec_context.name if a else None,
            "audio_rate": a.codec_context.sample_rate if a else None,
            "audio_channels": a.codec_context.channels if a else None,
        }


def frame_at(path: Path, t: float) -> np.ndarray:
    """RGB frame nearest to time t, decoded by PyAV."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        best = None
        for fr in c.decode(v):
            best = fr
            if fr.time is not None and fr.time >= t:
                break
        return best.to_ndarray(format="rgb24")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pp-cache")


@pytest.fixture(scope="session")
def clip64(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip64.mp4")


@pytest.fixture(scope="session")
def music2s(tmp_path_factory) -> Path:
    return write_wav(tmp_path_factory.mktemp("music") / "m.wav", tone(2.5))
