"""Visual safety gate: sample frames, run the ONNX model in batches, aggregate per policy.

Sampling (videos, decoded once with PyAV, i.e. FFmpeg's libraries):
- the first frame, then at least ``sample_fps`` (>= 2) frames per second: the first frame at or
  after each 1/fps grid point;
- scene-change frames: mean absolute luma difference to the previous frame (on a ~64 px wide
  grid of the Y plane, no colour conversion) above ``scene_threshold``;
- the last frame; the frame at ``thumbnail_time`` and, if given, a separate thumbnail image.
Frames are converted to RGB only when sampled, scaled by FFmpeg to the model's input size.

Images (logos, overlays): the header is read first and anything over ``MAX_IMAGE_PIXELS`` or
``MAX_SIDE`` is refused before a pixel is decoded (decompression bombs); every frame of an
animated image is checked; transparency is flattened on grey.

Fail closed: bad input raises ``InvalidInput`` (exit 2); anything else that goes wrong raises
``ModerationError`` (exit 1). Neither returns a verdict, so no error can pass for a pass.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.moderation import ModerationModel, ModerationModelError, RawDetection, get_model
from reelforge.core.errors import InvalidInput
from reelforge.core.storage import sha256_file
from tasks.safety.policy import Policy, VisualPolicy, load_policy
from tasks.safety.verdicts import (
    Detection,
    Flag,
    FrameResult,
    MediaInfo,
    ModelRef,
    ModerationError,
    VisualBlocked,
    VisualVerdict,
)

MAX_SIDE = 16_384
MAX_IMAGE_PIXELS = 64_000_000  # 8000 x 8000
MAX_VIDEO_PIXELS = 36_000_000  # 8K UHD is 33.2 MP
MAX_IMAGE_FRAMES = 300  # animated GIF/WebP/APNG
REFUSED_FORMATS = {"tty", "txt", "lavfi"}


@dataclass
class Sample:
    timestamp: float | None
    reasons: list[str]
    rgb: np.ndarray  # H, W, 3 uint8, scaled
    scale: float  # source pixels per sample pixel


def _fit(w: int, h: int, size: int) -> tuple[int, int, float]:
    scale = max(w, h) / size
    if scale <= 1.0:
        return w, h, 1.0
    return max(2, round(w / scale)), max(2, round(h / scale)), scale


# --- images ----------------------------------------------------------------------------------


def _open_image(path: Path):
    """PIL image with only the header read, or None if PIL does not know the format."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except UnidentifiedImageError:
            return None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            size = f"{int(found.group(1)) / 1e6:.0f} MP" if found else "too many pixels"
            raise InvalidInput(
                f"{path.name}: image is {size}, over the limit of "
                f"{MAX_IMAGE_PIXELS // 1_000_000} MP; refused before decoding"
            ) from exc
    w, h = img.size
    if w <= 0 or h <= 0 or w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_IMAGE_PIXELS:
        img.close()
        raise InvalidInput(
            f"{path.name}: image is {w}x{h}, over the limit of {MAX_SIDE} px per side and "
            f"{MAX_IMAGE_PIXELS // 1_000_000} MP; refused before decoding"
        )
    return img


def _to_rgb(frame) -> np.ndarray:
    from PIL import Image

    if frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info):
        rgba = frame.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        frame = Image.alpha_composite(bg, rgba)
    return np.asarray(frame.convert("RGB"))


def sample_image(path: Path, img, size: int) -> tuple[list[Sample], MediaInfo]:
    from PIL import ImageOps

    w, h = img.size
    fmt = img.format or "image"
    n_frames = getattr(img, "n_frames", 1)
    if n_frames > MAX_IMAGE_FRAMES:
        raise InvalidInput(
            f"{path.name}: animated image with {n_frames} frames (max {MAX_IMAGE_FRAMES})"
        )
    samples: list[Sample] = []
    t = 0.0
    try:
        if n_frames == 1 and fmt == "JPEG":
            img.draft("RGB", (size * 2, size * 2))  # decode a reduced JPEG directly
        for i in range(n_frames):
            img.seek(i)
            frame = ImageOps.exif_transpose(img) if n_frames == 1 else img.copy()
            fw, fh = frame.size
            tw, th, _ = _fit(fw, fh, size * 2)
            if (tw, th) != (fw, fh):
                frame = frame.resize((tw, th))
            rgb = _to_rgb(frame)
            # source px per sample px (the long side is the same after an EXIF rotation)
            scale = max(w, h) / max(rgb.shape[0], rgb.shape[1])
            samples.append(
                Sample(
                    timestamp=t if n_frames > 1 else None, reasons=["image"], rgb=rgb, scale=scale
                )
            )
            t += float(img.info.get("duration", 100) or 100) / 1000.0
    except OSError as exc:  # truncated or corrupt pixel data
        raise InvalidInput(f"{path.name}: corrupt image data ({str(exc)[:120]})") from exc
    finally:
        img.close()
    media = MediaInfo(
        path=str(path),
        kind="image",
        format=fmt,
        width=w,
        height=h,
        frames_decoded=len(samples),
        sha256=sha256_file(path),
    )
    return samples, media


# --- videos ----------------------------------------------------------------------------------


def _y_grid(y: np.ndarray, width: int, height: int) -> np.ndarray:
    """Every ``width // 64``-th pixel of an 8-bit Y plane (rows may be padded past ``width``)."""
    step = max(1, width // 64)
    return y[:height:step, :width:step].astype(np.float32)


def _luma_grid(frame) -> np.ndarray:
    fmt = frame.format.name
    if fmt.startswith(("yuv", "yuvj", "nv12", "nv21", "gray")) and frame.planes:
        plane = frame.planes[0]
        bpp = 2 if ("10" in fmt or "12" in fmt or "16" in fmt) else 1
        if bpp == 1:
            arr = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
            return _y_grid(arr, frame.width, frame.height)
    return frame.to_ndarray(format="gray", width=64, height=36).astype(np.float32)


class FrameSelector:
    """Chooses the frames the gate samples from a video, fed one frame at a time (module doc).

    Both sources feed it alike: decoding a file (``sample_video``) and the render's own
    ffmpeg pass (``RenderFrames``). ``rgb`` is called only for a frame that is sampled.
    """

    def __init__(self, policy: VisualPolicy, *, thumbnail_time: float | None = None,
                 on_batch: Callable[[list[Sample]], None] | None = None) -> None:  # fmt: skip
        self.policy = policy
        self.interval = 1.0 / policy.sample_fps
        self.thumbnail_time = thumbnail_time
        self.on_batch = on_batch
        self.samples: list[Sample] = []
        self.count = 0
        self._next_grid = 0.0
        self._prev_luma: np.ndarray | None = None
        self._last: tuple[float, Callable[[], np.ndarray], float, bool] | None = None

    def add(self, t: float, luma: np.ndarray, rgb: Callable[[], np.ndarray], scale: float) -> None:
        reasons: list[str] = []
        if self.count == 0:
            reasons.append("first")
        if t >= self._next_grid - 1e-6:
            reasons.append("interval")
            self._next_grid = (math.floor(t / self.interval + 1e-6) + 1) * self.interval
        prev = self._prev_luma
        if (
            prev is not None
            and prev.shape == luma.shape
            and float(np.abs(luma - prev).mean()) / 255.0 >= self.policy.scene_threshold
        ):
            reasons.append("scene")
        if self.thumbnail_time is not None and t >= self.thumbnail_time - 1e-6:
            reasons.append("thumbnail")
            self.thumbnail_time = None
        self._prev_luma = luma
        if reasons:
            self.samples.append(Sample(round(t, 4), reasons, rgb(), scale))
            if self.on_batch is not None and len(self.samples) >= self.policy.batch_size:
                self.on_batch(self.samples)
                self.samples = []
        self._last = (t, rgb, scale, bool(reasons))
        self.count += 1

    @property
    def last_time(self) -> float:
        return self._last[0] if self._last else 0.0

    def finish(self) -> list[Sample]:
        """The samples not yet handed to ``on_batch``, the last frame marked (or added)."""
        if self._last is None:
            return self.samples
        t, rgb, scale, sampled = self._last
        pending = ["thumbnail"] if self.thumbnail_time is not None else []
        if not sampled:
            self.samples.append(Sample(round(t, 4), ["last", *pending], rgb(), scale))
        elif self.samples:
            self.samples[-1].reasons += ["last", *pending]
        return self.samples


def sample_video(
    path: Path,
    *,
    size: int,
    policy: VisualPolicy,
    thumbnail_time: float | None = None,
    on_batch=None,
) -> tuple[list[Sample], MediaInfo]:
    """Decode once and select frames (see module doc). ``on_batch(samples)`` is called with
    every full batch so inference overlaps decoding; the rest is returned."""
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError) as exc:
        raise InvalidInput(f"{path.name}: neither an image nor a video FFmpeg can read") from exc
    try:
        stream, w, h, duration, rate = _video_header(path, container, policy)
        stream.thread_type = "AUTO"
        # skip H.264/HEVC deblocking: about 15% less decode CPU, no effect on what is shown
        # to the detector at 320 px
        stream.codec_context.options = {"skip_loop_filter": "all"}
        tw, th, scale = _fit(w, h, size)
        selector = FrameSelector(policy, thumbnail_time=thumbnail_time, on_batch=on_batch)
        try:
            for frame in container.decode(stream):
                idx = selector.count
                t = float(frame.time) if frame.time is not None else idx * (1.0 / (rate or 25.0))
                if idx == 0:
                    t0 = t
                t -= t0  # timestamps relative to the first frame
                if t > policy.max_duration_s:
                    raise InvalidInput(
                        f"{path.name}: video runs past the {policy.max_duration_s:.0f} s limit"
                    )

                def rgb(frame=frame) -> np.ndarray:
                    return frame.to_ndarray(format="rgb24", width=tw, height=th)

                selector.add(t, _luma_grid(frame), rgb, scale)
        except av.error.FFmpegError as exc:
            raise InvalidInput(f"{path.name}: corrupt video data ({str(exc)[:120]})") from exc
        if selector.count == 0:
            raise InvalidInput(f"{path.name}: the video has no frames")
        last_t = selector.last_time
        if duration and duration > 2.0 and last_t < duration * 0.8 - 1.0:
            # decoders conceal damage: a clip that ends early was not fully checked
            raise ModerationError(
                f"{path.name}: decoded only {last_t:.1f} s of {duration:.1f} s; not fully checked"
            )
        media = MediaInfo(
            path=str(path),
            kind="video",
            format=container.format.name,
            width=w,
            height=h,
            duration_s=duration if duration is not None else last_t,
            fps=rate,
            frames_decoded=selector.count,
            sha256=sha256_file(path),
        )
        return selector.finish(), media
    finally:
        container.close()


def _video_header(path: Path, container, policy: VisualPolicy):
    """(stream, width, height, duration or None, frame rate or None) of a video container,
    refused before decoding when it is no video, too large or too long for the policy."""
    if container.format.name in REFUSED_FORMATS or not container.streams.video:
        raise InvalidInput(f"{path.name}: no video stream (is this an image or a video?)")
    stream = container.streams.video[0]
    cc = stream.codec_context
    w, h = cc.width, cc.height
    if w <= 0 or h <= 0:
        raise InvalidInput(f"{path.name}: video stream has no frame size")
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_VIDEO_PIXELS:
        raise InvalidInput(
            f"{path.name}: video is {w}x{h}, over the limit of "
            f"{MAX_VIDEO_PIXELS // 1_000_000} MP; refused before decoding"
        )
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    if duration is not None and duration > policy.max_duration_s:
        raise InvalidInput(
            f"{path.name}: video is {duration:.0f} s long, over the limit of "
            f"{policy.max_duration_s:.0f} s of this policy"
        )
    rate = float(stream.average_rate) if stream.average_rate else None
    return stream, w, h, duration, rate


# --- frames from the render pass ---------------------------------------------------------------


def video_track_sha256(path: str | Path) -> str:
    """sha256 of a file's video packets (bytes, timestamps, key flags), read without decoding:
    equal for a rendition and its C2PA-signed copy, whose manifest box changes only the
    container around them."""
    import hashlib

    import av

    digest = hashlib.sha256()
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            if packet.size:
                digest.update(f"{packet.pts}:{packet.dts}:{int(packet.is_keyframe)}:".encode())
                digest.update(bytes(packet))
    return digest.hexdigest()


def _rendition_rgb(yuv: np.ndarray) -> np.ndarray:
    """RGB of a yuv420p frame tagged as renditions are (BT.709, video range; stacked planes as
    ``FrameSink`` gets them), by the swscale conversion ``sample_video`` applies to a decoded
    frame (PyAV's ``to_ndarray(format="rgb24")``, which reads these tags from a decoded one)."""
    import av
    from av.video.reformatter import ColorRange, Colorspace

    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    return frame.to_ndarray(
        format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG
    )


class RenderFrames:
    """The gate's samples taken from the render's own ffmpeg pass: a second, model-sized yuv420p
    output of the same filter graph as the rendition (``render_rendition(frames=...)``), so
    the finished file need not be decoded again. Frame ``i`` is the rendition's frame ``i``
    (same graph, same output frame rate), at ``i / fps`` seconds. Scene scores read its Y plane
    as ``_luma_grid`` reads the decoded file's; only the frames sampled are converted to RGB,
    and each is handed to the model as soon as it is sampled, on a thread of its own: ffmpeg's
    filter graph keeps one core busy and leaves the other mostly idle, so the gate after the
    render has only the last frame and the thumbnail left to infer (onnxruntime's
    ``InferenceSession.run`` is thread-safe).

    ``bind(path)`` ties the samples to the file rendered (its video track's sha256);
    ``moderate_file(rendered=...)`` judges a file with them only if its frame count and video
    track match, and fails closed otherwise; the detections are used only then.
    """

    def __init__(self, policy: str | Path | Policy | None, *, width: int, height: int,
                 fps: int, model: ModerationModel | None = None) -> None:  # fmt: skip
        pol = load_policy(policy)
        try:
            self.model = model or get_model()
        except ModerationModelError as exc:
            raise ModerationError(str(exc)) from exc
        tw, th, self.scale = _fit(width, height, self.model.info.input_size)
        if tw % 2 or th % 2:  # yuv420p needs even sides: the gate then decodes the file
            raise ModerationError(f"the render pass cannot give {tw}x{th} yuv420p frames")
        self.size = (tw, th)  # what the render pass scales its second output to
        self.fps = fps
        self.selector = FrameSelector(pol.visual)
        self.video_sha256: str | None = None
        self.seconds = 0.0  # spent here during the render: part of moderation's cost
        self.inference_seconds = 0.0  # the model's, on the inference thread, during the render
        self._inferred: list[Future[list[RawDetection]]] = []  # one per sample, in order
        # one per render pass, not per process: a process forked after a shared executor's
        # thread started would have an executor whose thread never runs, and the gate would hang
        self._inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render-pass-gate")

    @property
    def frames(self) -> int:
        return self.selector.count

    def add(self, yuv: np.ndarray) -> None:
        """One yuv420p frame of the render pass (``FrameSink``), in output order."""
        t0 = time.perf_counter()
        w, h = self.size
        luma = _y_grid(yuv[:h], w, h)
        self.selector.add(self.frames / self.fps, luma, lambda: _rendition_rgb(yuv), self.scale)
        for sample in self.selector.samples[len(self._inferred) :]:
            self._inferred.append(self._inference.submit(self._infer, sample.rgb))
        self.seconds += time.perf_counter() - t0

    def _infer(self, rgb: np.ndarray) -> list[RawDetection]:
        t0 = time.perf_counter()
        (found,) = self.model.predict([rgb])
        self.inference_seconds += time.perf_counter() - t0
        return found

    def detections(
        self, samples: list[Sample], model: ModerationModel, batch: int
    ) -> list[list[RawDetection]]:
        """``model``'s detections for ``samples`` (``selector.finish()``): those inferred during
        the render if ``model`` is the one that inferred them, the rest now. A failed inference
        raises here."""
        done = [future.result() for future in self._inferred] if model is self.model else []
        self._inference.shutdown(wait=False)  # the render pass is over: nothing more to infer
        return done + model.predict([s.rgb for s in samples[len(done) :]], batch_size=batch)

    def bind(self, path: str | Path) -> None:
        """Record the video track of the file this render pass wrote."""
        t0 = time.perf_counter()
        self.video_sha256 = video_track_sha256(path)
        self.seconds += time.perf_counter() - t0


def _render_pass_samples(
    path: Path, rendered: RenderFrames, policy: VisualPolicy
) -> tuple[list[Sample], MediaInfo]:
    """The render pass's samples for ``path``, after checking they are frames of this file."""
    import av

    if rendered.video_sha256 is None or rendered.frames == 0:
        raise ModerationError(f"{path.name}: the render pass delivered no bound frames")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream, w, h, duration, _ = _video_header(path, container, policy)
            count, fmt = stream.frames, container.format.name
    except av.error.FFmpegError as exc:
        raise InvalidInput(f"{path.name}: neither an image nor a video FFmpeg can read") from exc
    if count != rendered.frames:
        raise ModerationError(
            f"{path.name}: has {count} frames, the render pass gave {rendered.frames}; "
            "not the frames of this file"
        )
    if video_track_sha256(path) != rendered.video_sha256:
        raise ModerationError(f"{path.name}: video track differs from the render pass's")
    media = MediaInfo(
        path=str(path),
        kind="video",
        format=fmt,
        width=w,
        height=h,
        duration_s=duration if duration is not None else rendered.frames / rendered.fps,
        fps=float(rendered.fps),
        frames_decoded=0,
        frames_from="render pass",
        sha256=sha256_file(path),
    )
    return rendered.selector.finish(), media


# --- aggregation -------------------------------------------------------------------------------


def aggregate(frames: list[FrameResult], policy: VisualPolicy) -> list[Flag]:
    """Flags for the classes that block under the policy's aggregation rule.

    max: any sample at or over the class threshold blocks.
    consecutive: ``consecutive`` flagged samples in a row block (fewer if the asset has fewer
    samples, e.g. an image), and so does one sample at or over ``hard_threshold``. Still images
    attached to a video (thumbnail) are shown for their whole display time: one flag blocks.
    """
    seq = sorted((f for f in frames if f.timestamp is not None), key=lambda f: f.timestamp or 0.0)
    stills = [f for f in frames if f.timestamp is None]
    flags: list[Flag] = []
    for label, rule in policy.classes.items():

        def score(f: FrameResult, label: str = label) -> float:
            return max((d.score for d in f.detections if d.label == label), default=0.0)

        run = longest = 0
        hits: list[float | None] = []
        max_score = 0.0
        for f in seq:
            s = score(f)
            max_score = max(max_score, s)
            if s >= rule.threshold:
                run += 1
                longest = max(longest, run)
                hits.append(f.timestamp)
            else:
                run = 0
        still_hit = False
        for f in stills:
            s = score(f)
            max_score = max(max_score, s)
            if s >= rule.threshold:
                still_hit = True
                hits.append(None)
        if policy.aggregation == "max":
            blocked = bool(hits)
        else:
            need = min(policy.consecutive, max(1, len(seq)))
            blocked = (
                still_hit
                or (seq and longest >= need)
                or (policy.hard_threshold is not None and max_score >= policy.hard_threshold)
            )
        if blocked:
            flags.append(
                Flag(
                    label=label,
                    category=rule.category,
                    threshold=rule.threshold,
                    max_score=round(max_score, 4),
                    flagged_samples=len(hits),
                    longest_run=max(longest, 1 if still_hit else 0),
                    timestamps=hits,
                )
            )
    flags.sort(key=lambda f: -f.max_score)
    return flags


# --- the gate ------------------------------------------------------------------------------------


def _check_model_vs_policy(model: ModerationModel, policy: Policy) -> None:
    unknown = sorted(set(policy.visual.classes) - set(model.info.labels))
    if unknown:
        raise ModerationError(
            f"policy {policy.name} names classes the model {model.info.model_id} does not "
            f"have: {', '.join(unknown)}"
        )


def _frame_results(samples: list[Sample], raw: list[list[RawDetection]]) -> list[FrameResult]:
    out = []
    for s, dets in zip(samples, raw, strict=True):
        out.append(
            FrameResult(
                timestamp=s.timestamp,
                reasons=s.reasons,  # type: ignore[arg-type]
                detections=[
                    Detection(
                        label=d.label,
                        score=round(d.score, 4),
                        box=tuple(round(v * s.scale) for v in d.box),  # type: ignore[arg-type]
                    )
                    for d in dets
                ],
            )
        )
    return out


def _describe(policy: VisualPolicy) -> str:
    if policy.aggregation == "max":
        return "max"
    out = f"consecutive>={policy.consecutive}"
    return out + (f" or >={policy.hard_threshold}" if policy.hard_threshold else "")


def moderate_file(
    path: str | Path,
    *,
    policy: str | Path | Policy | None = None,
    model: ModerationModel | None = None,
    thumbnail: str | Path | None = None,
    thumbnail_time: float | None = None,
    thumbnail_is_frame: bool = False,
    rendered: RenderFrames | None = None,
) -> VisualVerdict:
    """Moderate an image or a video. Returns a verdict (passed or blocked) or raises:
    ``InvalidInput`` for unusable input, ``ModerationError`` for anything else (fail closed).

    ``thumbnail``: a separate thumbnail image of a video, checked as a still.
    ``thumbnail_time``: the video time the thumbnail is taken from; that frame is sampled.
    ``thumbnail_is_frame``: the thumbnail is this video's frame at ``thumbnail_time`` (we cut
    it ourselves): it takes that frame's place in the sequence and is judged by the video
    rule, since one false positive of the detector on one frame must not block a clip whose
    neighbouring frames are clean. A thumbnail chosen by a person stays a still (one flag
    blocks): it is shown on its own for as long as the video is listed.
    ``rendered``: the samples the render pass of this video took (``RenderFrames``), judged
    instead of decoding the file, once its frame count and video track are checked to match.
    """
    if thumbnail_is_frame and (thumbnail is None or thumbnail_time is None):
        raise ValueError("thumbnail_is_frame needs both thumbnail and thumbnail_time")
    path = Path(path)
    pol = load_policy(policy)
    t_start = time.perf_counter()
    try:
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise InvalidInput(f"{path.name}: the file is empty")
        try:
            mdl = model or get_model()
        except ModerationModelError as exc:
            raise ModerationError(str(exc)) from exc
        _check_model_vs_policy(mdl, pol)
        size = mdl.info.input_size
        frames: list[FrameResult] = []
        infer_s = 0.0

        def on_batch(batch: list[Sample]) -> None:
            nonlocal infer_s
            t = time.perf_counter()
            raw = mdl.predict([s.rgb for s in batch], batch_size=pol.visual.batch_size)
            frames.extend(_frame_results(batch, raw))
            infer_s += time.perf_counter() - t

        img = None if rendered else _open_image(path)
        if rendered is not None:
            # checked against the file first: no detection of the render pass counts otherwise
            samples, media = _render_pass_samples(path, rendered, pol.visual)
            t = time.perf_counter()
            frames.extend(
                _frame_results(samples, rendered.detections(samples, mdl, pol.visual.batch_size))
            )
            infer_s += time.perf_counter() - t
            samples = []
        elif img is not None:
            samples, media = sample_image(path, img, size)
        else:
            samples, media = sample_video(
                path, size=size, policy=pol.visual, on_batch=on_batch,
                thumbnail_time=None if thumbnail_is_frame else thumbnail_time,
            )  # fmt: skip
        if thumbnail is not None:
            tpath = Path(thumbnail)
            timg = _open_image(tpath) if tpath.is_file() and tpath.stat().st_size else None
            if timg is None:
                raise InvalidInput(f"{tpath.name}: thumbnail is not a readable image")
            tsamples, _ = sample_image(tpath, timg, size)
            at = round(float(thumbnail_time), 4) if thumbnail_is_frame else None  # type: ignore[arg-type]
            for s in tsamples:
                s.reasons, s.timestamp = ["thumbnail"], at
            samples.extend(tsamples)
        if samples:
            on_batch(samples)
        if thumbnail_is_frame and media.fps:
            # the thumbnail stands in for the video's frame at that time: not both, or one
            # frame would count as two consecutive samples
            half = 0.5 / media.fps
            frames = [
                f
                for f in frames
                if "thumbnail" in f.reasons
                or f.timestamp is None
                or abs(f.timestamp - thumbnail_time) >= half  # type: ignore[operator]
            ]
        if not frames:
            raise ModerationError(f"{path.name}: no frame was checked")
        total = time.perf_counter() - t_start
        flags = aggregate(frames, pol.visual)
        ts = sorted({f.timestamp for f in frames if f.timestamp is not None})
        if flags:
            top = flags[0]
            reason = (
                f"{path.name} blocked by the visual safety gate: category {top.category} "
                f"({top.label} {top.max_score:.2f} >= {top.threshold:.2f}, "
                f"{top.flagged_samples} sample(s)), policy {pol.version_id}"
            )
        else:
            reason = f"{path.name} passed the visual safety gate ({len(frames)} samples)"
        return VisualVerdict(
            status="blocked" if flags else "passed",
            passed=not flags,
            category=flags[0].category if flags else None,
            reason=reason,
            flags=flags,
            media=media,
            model=ModelRef(
                model_id=mdl.info.model_id,
                sha256=mdl.info.sha256,
                kind=mdl.info.kind,
                providers=list(mdl.info.providers),
                license=mdl.info.license,
            ),
            policy_name=pol.name,
            policy_version=pol.version_id,
            aggregation=_describe(pol.visual),
            sampled_timestamps=ts,
            frames=frames,
            timings={
                "total_s": round(total, 4),
                "inference_s": round(infer_s, 4),
                "decode_s": round(total - infer_s, 4),
            }
            | (
                {
                    "render_pass_s": round(rendered.seconds, 4),
                    "render_pass_inference_s": round(rendered.inference_seconds, 4),
                }
                if rendered
                else {}
            ),
        )
    except (InvalidInput, ModerationError):
        raise
    except Exception as exc:  # fail closed: never a verdict that passes
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ModerationError(
            f"{path.name}: moderation failed ({type(exc).__name__}: {first}); publication blocked"
        ) from exc


def require_safe_media(path: str | Path, **kwargs) -> VisualVerdict:
    """Return the verdict only if the asset passed; raise ``VisualBlocked`` (exit 3, carrying
    the verdict for quarantine) or ``InvalidInput`` / ``ModerationError`` otherwise."""
    verdict = moderate_file(path, **kwargs)
    if verdict.passed is not True or verdict.status != "passed":
        raise VisualBlocked(verdict)
    return verdict
