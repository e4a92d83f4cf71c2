"""Platform renditions: one ffmpeg invocation per rendition builds the whole filter graph.

Video chain (in this order, each step at the cheapest resolution where it is exact):

1. crop to the target aspect around the subject's centroid (``fit="crop"``, default), at source
   resolution; or letterbox later (``fit="pad"``);
2. ``lut3d=interp=tetrahedral`` colour grade on planar float RGB (ffmpeg's AVX2 path), at source
   resolution and source frame rate (fewest pixels to grade);
3. frame-rate conversion from the model's 16 fps to 24/30 fps (mci before the scale, at source
   size; blending after it, so the scale converts 16 rather than 24/30 frames a second):
   ``interpolation="auto"`` uses motion-compensated ``minterpolate`` (mci/obmc/bidir) only when
   the cropped source is at most 160x160 px (the tiny model's 64x64 clips: ~0.05 s for 5 s), and
   frame blending (``framerate``) otherwise. Measured on the 2-core dev box, 5 s of 1280x720 at
   16->24 fps: ``fps`` (duplicate) 0.25 s, ``framerate`` (blend) 0.22 s, ``minterpolate``
   mi_mode=blend 0.38 s, ``minterpolate`` mci 22.3 s (about 5 fps, 100x slower): mci at 720p
   would dominate every render, so blending is the default there;
4. ``scale`` with lanczos to the output size, straight into yuv420p with the BT.709 matrix;
5. logo overlay (still image input, scaled/faded once), text ``drawtext`` (personalised variant),
   the "AI-generated" label ``drawtext`` in the top corner of the safe zone away from the logo;
6. H.264 High, yuv420p, closed GOP (2 s), ``+faststart``; AAC 48 kHz stereo.

Personalisation: `render_base` renders the graded, branded, scored rendition once into a
high-quality mezzanine cached under a content key; `render_variant` only adds the text overlay
and the AI label (never drawn into the base), re-encodes the video and copies the audio.

Moderation's frames (``frames=``, a `FrameSink`): the same invocation writes a second output,
the final video (after logo, text and label) split off where it has the encoder's pixel format,
scaled to the moderation model's input size and piped as raw yuv420p with the rendition's frame
rate and length, so the safety gate judges the rendition's own frames without decoding the file
again.

Every output is written to a temporary sibling and renamed on success (`atomic_output`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reelforge.core.errors import InvalidInput
from reelforge.core.settings import get_settings
from reelforge.core.storage import sha256_file

from .audio import AudioPlan, AudioSpec, audio_encode_args, plan_audio
from .ffmpeg import (
    atomic_output,
    escape_filter_value,
    ffmpeg_version,
    probe_video,
    run_ffmpeg,
    run_ffmpeg_frames,
)
from .logo import LogoSpec, logo_graph, place_logo, validate_logo
from .lut import ResolvedLut, resolve_lut
from .overlay import (
    AiLabel,
    TextLayout,
    TextSpec,
    drawtext_filter,
    label_filter,
    layout_text,
    write_textfile,
)

PIPELINE_VERSION = "pp-2"
MCI_MAX_PIXELS = 160 * 160
MAX_DURATION = 180.0

# --- presets ---------------------------------------------------------------------------------

_SIZES: dict[tuple[str, str], tuple[int, int, int]] = {
    # (aspect, quality) -> (width, height, video kbps)
    ("16:9", "720p"): (1280, 720, 5000),
    ("16:9", "1080p"): (1920, 1080, 8000),
    ("9:16", "720p"): (720, 1280, 5000),
    ("9:16", "1080p"): (1080, 1920, 8000),
    ("1:1", "720p"): (720, 720, 4000),
    ("1:1", "1080p"): (1080, 1080, 6000),
}
ASPECTS = ("16:9", "9:16", "1:1")
QUALITIES = ("720p", "1080p")
FPS_CHOICES = (24, 30)


@dataclass(frozen=True)
class RenditionPreset:
    aspect: str
    quality: str
    width: int
    height: int
    fps: int
    video_kbps: int

    @property
    def name(self) -> str:
        return f"{self.aspect}-{self.quality}@{self.fps}"


def rendition_preset(aspect: str = "16:9", quality: str = "720p", fps: int = 30) -> RenditionPreset:
    """``rendition_preset("9:16", "1080p", 30)``; one-line error on an unknown combination."""
    if aspect not in ASPECTS:
        raise InvalidInput(f"unknown aspect {aspect!r}; use one of {', '.join(ASPECTS)}")
    if quality not in QUALITIES:
        raise InvalidInput(f"unknown quality {quality!r}; use one of {', '.join(QUALITIES)}")
    if fps not in FPS_CHOICES:
        raise InvalidInput(f"fps {fps} is not supported; use 24 or 30")
    w, h, kbps = _SIZES[(aspect, quality)]
    return RenditionPreset(
        aspect=aspect, quality=quality, width=w, height=h, fps=fps, video_kbps=kbps
    )


def all_presets() -> list[RenditionPreset]:
    return [rendition_preset(a, q, f) for a in ASPECTS for q in QUALITIES for f in FPS_CHOICES]


def video_encode_args(preset: RenditionPreset, x264_preset: str = "veryfast") -> list[str]:
    kb = preset.video_kbps
    return [
        # Sliced threads: frame threads make x264's rate control depend on thread timing,
        # so the same render would give different bytes (and a new content-addressed asset).
        "-c:v", "libx264", "-x264-params", "sliced-threads=1", "-preset", x264_preset,
        "-profile:v", "high", "-pix_fmt", "yuv420p",
        "-b:v", f"{kb}k", "-maxrate", f"{int(kb * 1.5)}k", "-bufsize", f"{kb * 2}k",
        "-g", str(2 * preset.fps), "-keyint_min", str(preset.fps), "-sc_threshold", "0",
        "-flags", "+cgop+bitexact", "-r", str(preset.fps),
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
        "-color_range", "tv",
    ]  # fmt: skip


def _mezzanine_args(preset: RenditionPreset) -> list[str]:
    return [
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "fastdecode", "-crf", "13",
        "-pix_fmt", "yuv420p", "-g", str(preset.fps), "-r", str(preset.fps),
        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
        "-color_range", "tv",
    ]  # fmt: skip


# --- subject-aware crop ------------------------------------------------------------------------


def subject_centroid(
    path: str | os.PathLike[str], max_frames: int = 48, samples: int = 8
) -> tuple[float, float]:
    """Where the subject is, as fractions (cx, cy) of the frame.

    Saliency per sampled frame = colour distance from the frame's border median (background)
    plus motion energy against the previous sample; the weighted centroid of the pixels above
    the median saliency, averaged over frames. Falls back to the centre for flat clips.
    """
    import av

    acc = np.zeros(2)
    wsum = 0.0
    prev = None
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        n = vs.frames or max_frames
        step = max(1, min(n, max_frames) // samples)
        for i, frame in enumerate(c.decode(vs)):
            if i >= max_frames:
                break
            if i % step:
                continue
            w, h = frame.width, frame.height
            scale = min(1.0, 96 / max(w, h))
            sw, sh = max(2, int(w * scale)), max(2, int(h * scale))
            img = (
                frame.reformat(width=sw, height=sh, format="rgb24").to_ndarray().astype(np.float32)
            )
            border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
            bg = np.median(border, axis=0)
            sal = np.linalg.norm(img - bg, axis=2)
            if prev is not None and prev.shape == img.shape:
                sal = sal + np.linalg.norm(img - prev, axis=2)
            prev = img
            wts = np.maximum(sal - np.median(sal), 0.0)
            tot = float(wts.sum())
            if tot <= 1e-6:
                continue
            ys, xs = np.mgrid[0:sh, 0:sw]
            acc += (
                np.array([(wts * (xs + 0.5)).sum() / tot / sw, (wts * (ys + 0.5)).sum() / tot / sh])
                * tot
            )
            wsum += tot
    if wsum <= 0:
        return 0.5, 0.5
    cx, cy = acc / wsum
    return float(np.clip(cx, 0, 1)), float(np.clip(cy, 0, 1))


def crop_window(
    src_w: int, src_h: int, out_w: int, out_h: int, cx: float, cy: float
) -> tuple[int, int, int, int]:
    """(w, h, x, y) of the largest even-sized window of the output aspect, centred on (cx, cy)
    and clamped inside the frame."""
    target = out_w / out_h
    if src_w / src_h > target:
        ch = src_h - src_h % 2
        cw = min(src_w, max(2, round(ch * target / 2) * 2))
    else:
        cw = src_w - src_w % 2
        ch = min(src_h, max(2, round(cw / target / 2) * 2))
    x = round(cx * src_w - cw / 2)
    y = round(cy * src_h - ch / 2)
    x = max(0, min(src_w - cw, x)) // 2 * 2
    y = max(0, min(src_h - ch, y)) // 2 * 2
    return cw, ch, x, y


# --- graph building ------------------------------------------------------------------------------


@dataclass
class _Graph:
    inputs: list[list[str]] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    def add_input(self, args: list[str]) -> int:
        self.inputs.append(args)
        return len(self.inputs) - 1


def _interp_filter(mode: str, src_fps: float, fps: int, pixels: int) -> tuple[str | None, str]:
    if abs(src_fps - fps) < 0.01:
        return None, "none"
    if src_fps > fps or mode == "dup":
        return f"fps={fps}", "dup"
    if mode == "auto":
        mode = "mci" if pixels <= MCI_MAX_PIXELS else "blend"
    if mode == "mci":
        return f"minterpolate=fps={fps}:mi_mode=mci:mc_mode=obmc:me_mode=bidir:vsbmc=1", "mci"
    if mode == "blend":
        return f"framerate=fps={fps}:scene=100", "blend"
    raise InvalidInput(f"unknown interpolation {mode!r}; use auto, mci, blend or dup")


@dataclass(frozen=True)
class _VideoPlan:
    chain: str  # from [source] (default 0:v) to [label] (default "vgraded")
    params: dict[str, Any]


def _plan_video(
    clip_info, preset: RenditionPreset, lut: ResolvedLut | None, fit: str, interpolation: str,
    subject: tuple[float, float] | None, clip_path: str, source: str = "0:v",
    label: str = "vgraded",
) -> _VideoPlan:  # fmt: skip
    W, H = preset.width, preset.height
    steps = ["setpts=PTS-STARTPTS"]
    params: dict[str, Any] = {"fit": fit}
    sw, sh = clip_info.width, clip_info.height
    if fit == "crop":
        if abs(sw / sh - W / H) > 0.01:
            if subject is None:
                subject = subject_centroid(clip_path)
            cw, ch, x, y = crop_window(sw, sh, W, H, *subject)
            steps.append(f"crop={cw}:{ch}:{x}:{y}")
            params.update(subject=[round(subject[0], 4), round(subject[1], 4)], crop=[cw, ch, x, y])
            sw, sh = cw, ch
    elif fit != "pad":
        raise InvalidInput(f"unknown fit {fit!r}; use crop or pad")
    if lut is not None:
        # planar float RGB takes lut3d's AVX2 tetrahedral path: 0.8 vs 1.35 CPU-s for 5 s of 720p
        steps.append("format=gbrpf32le")
        steps.append(f"lut3d=file={escape_filter_value(str(lut.path))}:interp=tetrahedral")
    interp, used = _interp_filter(interpolation, clip_info.fps, preset.fps, sw * sh)
    params["interpolation"] = used
    # hold the last frame one source frame longer so the converted stream covers the whole
    # duration (otherwise it stops at the last source frame's timestamp)
    hold = f"tpad=stop_mode=clone:stop_duration={2.0 / max(clip_info.fps, 1.0):.4f}"
    # mci must run at source size (its cost grows with pixels) and dropping frames is cheapest
    # before the scale; blending is cheap at any size, so it runs after the scale, which then
    # converts 16 instead of 24/30 frames per second
    before_scale = interp is not None and used in ("mci", "dup")
    if before_scale:
        steps += [hold, interp]
    sc = "flags=lanczos:out_color_matrix=bt709:out_range=tv"
    if fit == "pad":
        steps.append(
            f"scale={W}:{H}:force_original_aspect_ratio=decrease:force_divisible_by=2:{sc}"
        )
        steps.append("format=yuv420p")
        steps.append(f"pad={W}:{H}:(ow-iw)/2:(oh-ih)/2:color=black")
    else:
        steps.append(f"scale={W}:{H}:{sc}")
        steps.append("format=yuv420p")
    if interp is not None and not before_scale:
        steps += [hold, interp]
    steps.append("setsar=1")
    return _VideoPlan(chain=f"[{source}]" + ",".join(steps) + f"[{label}]", params=params)


# --- results ---------------------------------------------------------------------------------


@dataclass
class RenditionResult:
    path: str
    sha256: str
    preset: str
    width: int
    height: int
    fps: int
    duration: float
    size_bytes: int
    seconds_total: float
    seconds_ffmpeg: float
    inputs: dict[str, str]  # role -> sha256 (clip, lut, logo, music, voice, base)
    params: dict[str, Any]
    command: list[str]
    text_layout: dict[str, Any] | None = None
    cache_hit: bool = False


@dataclass
class BaseRender:
    """The cached, graded + branded + scored mezzanine that variants are cut from."""

    path: str
    key: str
    preset: RenditionPreset
    duration: float
    cache_hit: bool
    seconds: float
    inputs: dict[str, str]
    params: dict[str, Any]
    command: list[str]


@dataclass(frozen=True)
class _Prepared:
    clip: str
    clip_info: Any
    duration: float
    lut: ResolvedLut | None
    logo_spec: LogoSpec | None
    logo_info: Any
    audio: AudioPlan
    inputs: dict[str, str]


def _prepare(clip, preset, lut, logo, audio, duration, cache_dir, nice) -> _Prepared:
    clip = str(clip)
    info = probe_video(clip)
    if info.width < 16 or info.height < 16:
        raise InvalidInput(f"clip is {info.width}x{info.height}; need at least 16x16 px")
    dur = float(duration) if duration else info.duration
    if not 0 < dur <= MAX_DURATION:
        raise InvalidInput(f"duration {dur:.2f} s is out of range; use up to {MAX_DURATION:.0f} s")
    lut_r = resolve_lut(lut, cache_dir) if lut else None
    logo_info = validate_logo(logo.path) if logo else None
    plan = plan_audio(audio or AudioSpec(), dur, cache_dir, nice=nice)
    inputs = {"clip": sha256_file(clip)}
    if lut_r:
        inputs["lut"] = lut_r.sha256
    if logo_info:
        inputs["logo"] = logo_info.sha256
    if plan.music:
        inputs["music"] = plan.music.sha256
    if plan.voice:
        inputs["voice"] = plan.voice.sha256
    return _Prepared(clip, info, dur, lut_r, logo, logo_info, plan, inputs)


def _build(
    p: _Prepared, preset: RenditionPreset, fit: str, interpolation: str,
    subject: tuple[float, float] | None, text_chain: str | None,
) -> tuple[_Graph, dict[str, Any]]:  # fmt: skip
    g = _Graph()
    loop = p.duration > p.clip_info.duration + 1e-3
    g.add_input([*(["-stream_loop", "-1"] if loop else []), "-i", p.clip])
    vp = _plan_video(p.clip_info, preset, p.lut, fit, interpolation, subject, p.clip)
    g.parts.append(vp.chain)
    params: dict[str, Any] = {
        "preset": preset.name, "duration": round(p.duration, 4), "loop_clip": loop,
        **vp.params, "lut": p.lut.name if p.lut else None,
    }  # fmt: skip
    last = "vgraded"
    if p.logo_spec is not None:
        li = g.add_input(["-i", p.logo_info.path])
        placement = place_logo(p.logo_spec, p.logo_info, preset.width, preset.height)
        g.parts.append(logo_graph(li, placement, p.logo_spec.opacity, last, "vlogo"))
        last = "vlogo"
        params["logo"] = {**asdict(p.logo_spec), **asdict(placement)}
        params["logo"].pop("path", None)
    if text_chain:
        g.parts.append(f"[{last}]{text_chain}[vtext]")
        last = "vtext"
    g.parts.append(f"[{last}]null[vout]")
    first_audio = len(g.inputs)
    for ia in p.audio.input_args():
        g.add_input(ia)
    g.parts.append(p.audio.graph(first_audio, out_label="aout"))
    spec = p.audio.spec
    params["audio"] = {
        "music": bool(p.audio.music), "voice": bool(p.audio.voice), "fade_in": spec.fade_in,
        "fade_out": spec.fade_out, "target_lufs": spec.target_lufs,
        "measured": asdict(p.audio.loudness) if p.audio.loudness else None,
    }  # fmt: skip
    return g, params


class FrameSink(Protocol):
    """Takes the rendition's frames, in order, as ``size`` (width, height, both even) yuv420p
    frames: a (height * 3 / 2, width) array, the Y plane's rows, then U's, then V's."""

    size: tuple[int, int]

    def add(self, yuv: np.ndarray) -> None: ...


def _split_frames(video: str, frames: FrameSink | None) -> tuple[str | None, str]:
    """The filter that splits ``video`` (a label) into the encoder's input and a model-sized
    yuv420p copy for ``frames`` (labels ``vfinal`` and ``vframes``), and the encoder's label.

    The split comes after the conversion to the encoder's yuv420p: the logo overlay works in
    RGBA, and a split before the conversion made ffmpeg convert every 720p frame a second time
    for the copy (+0.3 CPU-s for 5 s, whatever the copy's size). After it, the copy is the
    encoder's own pixels, and the scale to the model's size is all the second output costs.
    Bilinear is the scaler the decoding path uses (PyAV's default): its samples are the closer
    match to decoding the file (tests/tasks/postprocess/test_render_frames.py)."""
    if frames is None:
        return None, video
    w, h = frames.size
    chain = (
        f"[{video}]format=yuv420p,split[vfinal][vsample];[vsample]scale={w}:{h}:flags=bilinear"
        "[vframes]"
    )
    return chain, "vfinal"


def _frames_output(fps: int, duration: float) -> list[str]:
    """The second output: raw frames on stdout, same frame rate and length as the rendition."""
    return ["-map", "[vframes]", "-r", str(fps), "-t", f"{duration:.6f}", "-f", "rawvideo",
            "-pix_fmt", "yuv420p", "pipe:1"]  # fmt: skip


def _run(cmd: list[str], frames: FrameSink | None, *, what: str, nice: int | None) -> float:
    """Run a render; with ``frames``, hand them the frames of its second output."""
    if frames is None:
        return run_ffmpeg(cmd, what=what, nice=nice)[1]
    w, h = frames.size

    def add(raw: bytes) -> None:
        frames.add(np.frombuffer(raw, np.uint8).reshape(h * 3 // 2, w))

    return run_ffmpeg_frames(cmd, frame_bytes=w * h * 3 // 2, on_frame=add, what=what, nice=nice)[1]


def _command(
    g: _Graph, out_args: list[str], out: Path, frames: FrameSink | None = None,
    frames_output: list[str] | None = None,
) -> list[str]:  # fmt: skip
    args: list[str] = ["-v", "error"]
    for ia in g.inputs:
        args += ia
    split, video = _split_frames("vout", frames)
    graph = ";".join([*g.parts, *([split] if split else [])])
    args += ["-filter_complex", graph, "-map", f"[{video}]", "-map", "[aout]"]
    return [*args, *out_args, str(out), *(frames_output if frames else [])]


def _text_chain(text: TextSpec, preset: RenditionPreset, tmpdir: str) -> tuple[str, TextLayout]:
    layout = layout_text(text, preset.width, preset.height)
    tf = write_textfile(layout, tmpdir)
    return drawtext_filter(text, layout, tf), layout


def _overlay_chain(
    text: TextSpec | None,
    label: AiLabel | None,
    logo_position: str | None,
    preset: RenditionPreset,
    tmpdir: str,
) -> tuple[str | None, TextLayout | None, dict[str, Any]]:
    """The text overlay and the AI label as one filter chain (None: neither), the text's
    layout, and the label's parameters for lineage (``ai_label``: None when not drawn)."""
    chain, layout = _text_chain(text, preset, tmpdir) if text else (None, None)
    drawn = None
    if label is not None:
        corner = "top-left" if (logo_position or "").endswith("right") else "top-right"
        label_chain, drawn = label_filter(label, preset.width, preset.height, corner, tmpdir)
        chain = f"{chain},{label_chain}" if chain else label_chain
    return chain, layout, {"ai_label": drawn}


def render_rendition(
    clip: str | os.PathLike[str],
    out: str | os.PathLike[str],
    preset: RenditionPreset,
    *,
    lut: str | os.PathLike[str] | None = None,
    logo: LogoSpec | None = None,
    audio: AudioSpec | None = None,
    text: TextSpec | None = None,
    label: AiLabel | None = None,
    fit: str = "crop",
    interpolation: str = "auto",
    subject: tuple[float, float] | None = None,
    duration: float | None = None,
    cache_dir: str | os.PathLike[str],
    x264_preset: str = "veryfast",
    nice: int | None = None,
    frames: FrameSink | None = None,
) -> RenditionResult:
    """The finished, publishable rendition in ONE ffmpeg invocation (plus the cached loudness
    pass 1 when there is music); ``label``: the visible AI disclosure to draw; ``frames``:
    receives the rendition's frames from the same invocation (module doc)."""
    t0 = time.perf_counter()
    out = Path(out)
    p = _prepare(clip, preset, lut, logo, audio, duration, cache_dir, nice)
    with tempfile.TemporaryDirectory(prefix="rf-pp-") as td:
        position = logo.position if logo else None
        chain, layout, drawn = _overlay_chain(text, label, position, preset, td)
        g, params = _build(p, preset, fit, interpolation, subject, chain)
        params |= drawn
        out_args = [
            *video_encode_args(preset, x264_preset), *audio_encode_args(),
            "-t", f"{p.duration:.6f}", "-map_metadata", "-1", "-fflags", "+bitexact",
            "-movflags", "+faststart", "-f", "mp4",
        ]  # fmt: skip
        with atomic_output(out) as tmp:
            cmd = _command(g, out_args, tmp, frames, _frames_output(preset.fps, p.duration))
            dt = _run(cmd, frames, what=f"render {preset.name}", nice=nice)
    return _result(out, preset, p.duration, t0, dt, p.inputs, params, cmd, layout)


def _result(
    out, preset, duration, t0, dt, inputs, params, cmd, layout, cache_hit=False
) -> RenditionResult:
    return RenditionResult(
        path=str(out), sha256=sha256_file(out), preset=preset.name, width=preset.width,
        height=preset.height, fps=preset.fps, duration=round(duration, 4),
        size_bytes=out.stat().st_size, seconds_total=round(time.perf_counter() - t0, 4),
        seconds_ffmpeg=round(dt, 4), inputs=inputs, params=params, command=["ffmpeg", *cmd],
        text_layout=asdict(layout) if layout else None, cache_hit=cache_hit,
    )  # fmt: skip


def base_key(p: _Prepared, preset: RenditionPreset, fit: str, interpolation: str, subject) -> str:
    src = json.dumps(
        {
            "v": PIPELINE_VERSION, "ffmpeg": ffmpeg_version(), "inputs": p.inputs,
            "preset": asdict(preset), "fit": fit, "interp": interpolation, "subject": subject,
            "duration": round(p.duration, 4), "logo": asdict(p.logo_spec) | {"path": None} if p.logo_spec else None,
            "audio": p.audio.key,
        },
        sort_keys=True, default=str,
    )  # fmt: skip
    return hashlib.sha256(src.encode()).hexdigest()


def render_base(
    clip: str | os.PathLike[str],
    preset: RenditionPreset,
    *,
    lut: str | os.PathLike[str] | None = None,
    logo: LogoSpec | None = None,
    audio: AudioSpec | None = None,
    fit: str = "crop",
    interpolation: str = "auto",
    subject: tuple[float, float] | None = None,
    duration: float | None = None,
    cache_dir: str | os.PathLike[str],
    nice: int | None = None,
) -> BaseRender:
    """Graded + branded + scored mezzanine (H.264 CRF 13, ``-tune fastdecode`` so variants
    decode it cheaply; final AAC), cached by content key:
    a second call with the same inputs and parameters returns the cached file without ffmpeg."""
    t0 = time.perf_counter()
    p = _prepare(clip, preset, lut, logo, audio, duration, cache_dir, nice)
    key = base_key(p, preset, fit, interpolation, subject)
    path = Path(cache_dir) / "bases" / f"base-{key[:32]}.mp4"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        m = json.loads(meta.read_text())
        return BaseRender(str(path), key, preset, p.duration, True, round(time.perf_counter() - t0, 4),
                          p.inputs, m["params"], m["command"])  # fmt: skip
    g, params = _build(p, preset, fit, interpolation, subject, None)
    out_args = [
        *_mezzanine_args(preset),
        *audio_encode_args(),
        "-t",
        f"{p.duration:.6f}",
        "-f",
        "mp4",
    ]
    with atomic_output(path) as tmp:
        cmd = _command(g, out_args, tmp)
        run_ffmpeg(cmd, what=f"render base {preset.name}", nice=nice)
    tmpm = meta.with_suffix(f".{os.getpid()}.part")
    tmpm.write_text(json.dumps({"params": params, "command": ["ffmpeg", *cmd]}, default=str))
    os.replace(tmpm, meta)
    return BaseRender(str(path), key, preset, p.duration, False, round(time.perf_counter() - t0, 4),
                      p.inputs, params, ["ffmpeg", *cmd])  # fmt: skip


def render_variant(
    base: BaseRender,
    out: str | os.PathLike[str],
    text: TextSpec | None,
    *,
    label: AiLabel | None = None,
    x264_preset: str = "superfast",
    nice: int | None = None,
    frames: FrameSink | None = None,
) -> RenditionResult:
    """A per-user variant: the cached base + this user's text, video re-encoded, audio copied.

    x264 ``superfast`` by default (about 25 % faster than ``veryfast``; at 5-8 Mbps the quality
    difference is not visible): variants are the part that scales with the number of users.
    ``frames``: as for `render_rendition`."""
    t0 = time.perf_counter()
    out = Path(out)
    preset = base.preset
    if not Path(base.path).is_file():
        raise InvalidInput(f"base {base.path} is missing; render the base again")
    with tempfile.TemporaryDirectory(prefix="rf-pp-") as td:
        position = (base.params.get("logo") or {}).get("position")
        chain, layout, drawn = _overlay_chain(text, label, position, preset, td)
        vf = chain or "null"
        split, video = _split_frames("vout", frames)
        graph = f"[0:v]{vf}[vout]" + (f";{split}" if split else "")
        args = [
            "-v", "error", "-i", base.path, "-filter_complex", graph,
            "-map", f"[{video}]", "-map", "0:a", *video_encode_args(preset, x264_preset),
            "-c:a", "copy", "-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4",
        ]  # fmt: skip
        with atomic_output(out) as tmp:
            extra = _frames_output(preset.fps, base.duration) if frames else []
            cmd = [*args, str(tmp), *extra]
            dt = _run(cmd, frames, what=f"render variant {preset.name}", nice=nice)
    inputs = {**base.inputs, "base": base.key}
    params = {**base.params, "variant": True, **drawn}
    return _result(out, preset, base.duration, t0, dt, inputs, params, cmd, layout)


# --- thumbnail and preview -----------------------------------------------------------------------


@dataclass
class ImageResult:
    path: str
    sha256: str
    size_bytes: int
    width: int
    at: float | None = None


def make_thumbnail(
    video: str | os.PathLike[str], out: str | os.PathLike[str], *, at: float | None = None,
    width: int | None = None, nice: int | None = None,
) -> ImageResult:  # fmt: skip
    """JPEG (``.jpg``) or WebP (``.webp``) still; default at 1/3 of the duration."""
    info = probe_video(video)
    out = Path(out)
    t = min(max(0.0, info.duration / 3 if at is None else at), max(0.0, info.duration - 0.05))
    w = width or info.width
    ext = out.suffix.lower()
    if ext in (".jpg", ".jpeg"):
        codec = ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-f", "image2"]
    elif ext == ".webp":
        codec = ["-c:v", "libwebp", "-quality", "85", "-f", "webp"]
    else:
        raise InvalidInput(f"thumbnail must be .jpg or .webp, not {ext or 'no extension'}")
    with atomic_output(out) as tmp:
        run_ffmpeg(
            ["-v", "error", "-ss", f"{t:.3f}", "-i", str(video), "-frames:v", "1",
             "-vf", f"scale={w}:-2:flags=lanczos", *codec, "-update", "1", str(tmp)],
            what="thumbnail", nice=nice,
        )  # fmt: skip
    return ImageResult(str(out), sha256_file(out), out.stat().st_size, w, round(t, 3))


def make_previews(
    pairs: list[tuple[str | os.PathLike[str], str | os.PathLike[str]]], *, seconds: float = 3.0,
    fps: int = 10, width: int = 320, nice: int | None = None,
) -> list[ImageResult]:  # fmt: skip
    """Short looping animated previews, one per (video, out) pair: ``.webp`` (small) or ``.gif``
    (palette), all from one ffmpeg invocation (a review's takes pay one start-up, not N)."""
    outs = [Path(out) for _, out in pairs]
    if not outs:
        return []
    for out in outs:
        if out.suffix.lower() not in (".webp", ".gif"):
            raise InvalidInput(f"preview must be .webp or .gif, not {out.suffix or 'no extension'}")
    args = ["-v", "error"]
    for video, _ in pairs:
        args += ["-t", f"{seconds:.3f}", "-i", str(video)]
    chains, per_output = [], []
    for i, out in enumerate(outs):
        base = f"[{i}:v]fps={fps},scale={width}:-2:flags=lanczos"
        if out.suffix.lower() == ".webp":
            chains.append(f"{base}[p{i}]")
            per_output.append(
                ["-c:v", "libwebp_anim", "-quality", "70", "-loop", "0", "-f", "webp"]
            )
        else:
            chains.append(f"{base},split[a{i}][b{i}];[a{i}]palettegen=max_colors=128[pal{i}];"
                          f"[b{i}][pal{i}]paletteuse[p{i}]")  # fmt: skip
            per_output.append(["-loop", "0", "-f", "gif"])
    args += ["-filter_complex", ";".join(chains)]
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_output(out)) for out in outs]
        for i, (tmp, codec) in enumerate(zip(tmps, per_output, strict=True)):
            args += ["-map", f"[p{i}]", *codec, str(tmp)]
        run_ffmpeg(args, what="preview", nice=nice)
    return [ImageResult(str(out), sha256_file(out), out.stat().st_size, width) for out in outs]


# --- frames -> intermediate clip --------------------------------------------------------------------


def frames_to_mp4(
    frames: np.ndarray, out: str | os.PathLike[str], *, fps: float = 16.0, nice: int | None = None
) -> Path:
    """Encode uint8 RGB frames (T, H, W, 3) to a near-lossless H.264 MP4 (CRF 10, BT.709) that
    the render functions take as their clip. Odd sizes are padded by one pixel."""
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] < 1:
        raise InvalidInput(f"frames must have shape (T, H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating):
            arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        else:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
    _, h, w, _ = arr.shape
    out = Path(out)
    with atomic_output(out) as tmp:
        run_ffmpeg(
            ["-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps}",
             "-i", "-",
             "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2,scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
             "-c:v", "libx264", "-preset", "medium", "-crf", "10", "-g", str(max(1, int(fps))),
             "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
             "-color_range", "tv", "-movflags", "+faststart", "-f", "mp4", str(tmp)],
            what="encoding frames", nice=nice, stdin=np.ascontiguousarray(arr).reshape(-1).data,
        )  # fmt: skip
    return out


def postprocess_cache_dir() -> Path:
    """Where graded bases and parsed LUTs are cached on this machine."""
    path = get_settings().home_dir / "cache" / "postprocess"
    path.mkdir(parents=True, exist_ok=True)
    return path
