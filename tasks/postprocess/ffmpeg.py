"""ffmpeg plumbing shared by the post-processing modules.

* `ffmpeg_exe()`: the static ffmpeg shipped by imageio-ffmpeg (libx264, lut3d, drawtext, loudnorm).
* `escape_filter_value()`: makes any string (a path, a colour) safe as one option value inside a
  filter graph, so user-controlled strings can never inject filter syntax.
* `run_ffmpeg()`: runs one command, maps failures to one-line errors; `run_ffmpeg_frames()`
  also hands the raw frames of a last ``pipe:1`` output to a callback while ffmpeg runs.
* `atomic_output()`: a temporary sibling path that is renamed onto the target only on success,
  so a failed render never leaves a half-written file behind.
* `probe_video()`: reads a file's streams with PyAV (not with ffmpeg's own muxing code).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

from reelforge.core.errors import InvalidInput, ReelForgeError


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=False)
    first = (out.stdout or "").splitlines()[:1]
    return first[0] if first else "ffmpeg unknown"


def escape_filter_value(value: str) -> str:
    """Escape `value` so it is exactly one option value inside an ffmpeg filter graph.

    ffmpeg parses a graph twice: the graph parser splits on ``[ ] , ;`` and the filter's option
    parser splits on ``:``; both honour ``'...'`` quoting and backslash escapes. Level 1 wraps the
    value in single quotes (a literal ``'`` becomes ``'\\''``); level 2 backslash-escapes every
    character the graph parser treats specially.
    """
    if "\x00" in value or "\n" in value or "\r" in value:
        raise InvalidInput(
            "a path or value used in the ffmpeg filter graph contains a control character; rename it"
        )
    level1 = "'" + value.replace("'", "'\\''") + "'"
    out = []
    for ch in level1:
        if ch in "\\'[],;":
            out.append("\\")
        out.append(ch)
    return "".join(out)


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{uuid.uuid4().hex[:10]}.part{target.suffix}")
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise ReelForgeError(f"ffmpeg produced no output for {target.name}")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    skip = ("Conversion failed", "Error while", "Terminating thread", "Exiting normally")
    for ln in reversed(lines):
        if not ln.startswith(skip):
            return ln[:300]
    return lines[-1][:300] if lines else "no message"


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str,
    invalid_input: bool = False,
    nice: int | None = None,
    timeout: float | None = 3600,
    stdin: bytes | memoryview | None = None,
) -> tuple[str, float]:
    """Run ffmpeg with `args` (without the binary), ``stdin`` fed to its ``pipe:0`` input.
    Returns (stderr, seconds).

    On failure raises `InvalidInput` (when the caller knows the failure means bad input) or
    `ReelForgeError`, with ffmpeg's last meaningful stderr line.
    """
    cmd = _ffmpeg_command(args, nice)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ReelForgeError(f"{what}: ffmpeg timed out after {timeout:.0f} s") from exc
    dt = time.perf_counter() - t0
    stderr = proc.stderr.decode(errors="replace")
    _raise_on_failure(proc.returncode, stderr, what, invalid_input)
    return stderr, dt


def run_ffmpeg_frames(
    args: Sequence[str],
    *,
    frame_bytes: int,
    on_frame: Callable[[bytes], None],
    what: str,
    nice: int | None = None,
    timeout: float | None = 3600,
) -> tuple[str, float]:
    """`run_ffmpeg` for a command whose last output is raw video on stdout (``pipe:1``): each
    frame (``frame_bytes`` long) goes to ``on_frame`` while ffmpeg still runs."""
    cmd = _ffmpeg_command(args, nice)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # stderr is drained in memory by a thread: a temporary file would live on the scratch
    # disk, whose "No space left" is exactly the message a full disk must show, and an
    # undrained pipe would stall ffmpeg while we read frames.
    errors: list[bytes] = []
    drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
    drain.start()
    try:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(frame_bytes):
            if len(chunk) != frame_bytes:
                raise ReelForgeError(f"{what}: ffmpeg ended in the middle of a frame")
            on_frame(chunk)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ReelForgeError(f"{what}: ffmpeg timed out after {timeout:.0f} s") from exc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=10)
    stderr = b"".join(errors).decode(errors="replace")
    _raise_on_failure(proc.returncode, stderr, what, invalid_input=False)
    return stderr, time.perf_counter() - t0


def _ffmpeg_command(args: Sequence[str], nice: int | None) -> list[str]:
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args]
    return ["nice", "-n", str(nice), *cmd] if nice else cmd


def _raise_on_failure(returncode: int, stderr: str, what: str, invalid_input: bool) -> None:
    if returncode != 0:
        msg = f"{what}: ffmpeg failed: {_last_error_line(stderr)}"
        raise (InvalidInput(msg) if invalid_input else ReelForgeError(msg))


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    duration: float
    codec: str
    pix_fmt: str
    frames: int | None
    has_audio: bool


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read the first video stream's geometry and timing with PyAV; one-line error if unreadable."""
    import av

    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"video {p} does not exist")
    try:
        with av.open(str(p)) as c:
            vs = next((s for s in c.streams if s.type == "video"), None)
            if vs is None:
                raise InvalidInput(f"{p.name} has no video stream; pass an MP4 with H.264 video")
            rate = vs.average_rate or vs.guessed_rate or Fraction(16)
            if c.duration is not None:
                duration = c.duration / 1_000_000
            elif vs.duration is not None and vs.time_base:
                duration = float(vs.duration * vs.time_base)
            else:
                duration = (vs.frames or 0) / float(rate)
            return VideoInfo(
                width=vs.codec_context.width,
                height=vs.codec_context.height,
                fps=float(rate),
                duration=float(duration),
                codec=vs.codec_context.name,
                pix_fmt=str(vs.codec_context.pix_fmt),
                frames=vs.frames or None,
                has_audio=any(s.type == "audio" for s in c.streams),
            )
    except InvalidInput:
        raise
    except Exception as exc:  # av.error.* and friends
        raise InvalidInput(f"cannot read video {p.name}: {exc.__class__.__name__}: {exc}") from exc
