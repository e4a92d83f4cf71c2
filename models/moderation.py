"""ONNX visual moderation model: NudeNet's 320n detector by default, any ONNX detector or
classifier by path plus a small label map.

We run our own ``onnxruntime.InferenceSession`` instead of ``nudenet.NudeDetector`` because the
wrapper ignores ``providers`` and feeds BGR for paths but RGB for arrays (see shared NOTES).
Here the input is always RGB ``uint8`` arrays (H, W, 3); preprocessing is NudeNet's own:
pad right/bottom to a square, resize to the model size, scale to [0, 1], NCHW float32.

Label maps, in order of precedence:
1. ``labels=`` / ``kind=`` arguments;
2. a sidecar file next to the model: ``<model>.labels.yaml`` (or ``.json``) with
   ``{kind: yolov8|classifier, labels: [...], input_size: 320, version: "..."}``;
3. the ONNX metadata ``names`` written by Ultralytics exporters (YOLOv8 detectors);
Every failure here raises :class:`ModerationModelError`: callers must treat it as "not safe".
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from reelforge.core.errors import ReelForgeError
from reelforge.core.storage import sha256_file

ModelKind = Literal["yolov8", "classifier"]

# NudeNet 3.4 label order (also in the model's own metadata; kept here as a fallback).
NUDENET_LABELS: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)

#: Scores below this are dropped before NMS (NudeNet uses 0.2). Policies set their own
#: per-class thresholds on top; a policy threshold below this floor is rejected.
MIN_SCORE = 0.2
NMS_IOU = 0.45
DEFAULT_BATCH = 16


class ModerationModelError(ReelForgeError):
    """The moderation model could not be loaded or run (fail closed: nothing is published)."""


@dataclass(frozen=True)
class RawDetection:
    """One detection in the pixel coordinates of the frame that was passed in."""

    label: str
    score: float
    box: tuple[float, float, float, float]  # x, y, w, h


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    path: str
    sha256: str
    kind: ModelKind
    labels: tuple[str, ...]
    input_size: int
    providers: tuple[str, ...]
    license: str | None = None


def default_model_path() -> Path:
    """NudeNet's bundled 320n.onnx (AGPL-3.0 per the wheel's LICENSE files and model metadata)."""
    try:
        import nudenet
    except ImportError as exc:  # pragma: no cover - nudenet is a hard dependency
        raise ModerationModelError(
            "the nudenet package is not installed; install nudenet==3.4.2 or set "
            "REELFORGE_MODERATION_MODEL to an ONNX model"
        ) from exc
    return Path(nudenet.__file__).parent / "320n.onnx"


def choose_providers(requested: list[str] | None = None) -> list[str]:
    """CUDA first when this onnxruntime build offers it, then CPU (always present)."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ModerationModelError(
                f"onnxruntime provider(s) {', '.join(missing)} not available here "
                f"(available: {', '.join(sorted(available))})"
            )
        return list(requested)
    order = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in order if p in available]


def _read_sidecar(path: Path) -> dict:
    for suffix in (".labels.yaml", ".labels.yml", ".labels.json"):
        side = path.with_name(path.name + suffix)
        if side.is_file():
            text = side.read_text(encoding="utf-8")
            if suffix.endswith("json"):
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
            if not isinstance(data, dict):
                raise ModerationModelError(f"label map {side.name} must be a mapping")
            return data
    return {}


def _labels_from_metadata(meta: dict[str, str]) -> tuple[str, ...] | None:
    names = meta.get("names")
    if not names:
        return None
    try:
        parsed = ast.literal_eval(names)
    except (ValueError, SyntaxError):
        return None
    if isinstance(parsed, dict):
        return tuple(str(parsed[k]) for k in sorted(parsed))
    if isinstance(parsed, list | tuple):
        return tuple(str(x) for x in parsed)
    return None


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Plain greedy NMS over xywh boxes; returns kept indices, best first."""
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    areas = np.maximum(boxes[:, 2], 0) * np.maximum(boxes[:, 3], 0)
    order = scores.argsort()[::-1]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(x1[i], x1[rest])
        yy1 = np.maximum(y1[i], y1[rest])
        xx2 = np.minimum(x2[i], x2[rest])
        yy2 = np.minimum(y2[i], y2[rest])
        inter = np.maximum(0.0, xx2 - xx1) * np.maximum(0.0, yy2 - yy1)
        union = areas[i] + areas[rest] - inter
        ious = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
        order = rest[ious <= iou]
    return keep


@dataclass
class ModerationModel:
    """An ONNX session plus its label map; ``predict`` takes RGB uint8 frames."""

    info: ModelInfo
    _session: object = field(repr=False)
    _input_name: str = field(repr=False)

    @classmethod
    def load(
        cls,
        path: Path | str | None = None,
        *,
        labels: list[str] | tuple[str, ...] | None = None,
        kind: ModelKind | None = None,
        input_size: int | None = None,
        providers: list[str] | None = None,
        threads: int = 0,
        spin: bool = False,
    ) -> ModerationModel:
        """Load a model. ``threads=0`` lets onnxruntime use every core. ``spin=False`` stops
        idle intra-op threads from busy-waiting: on a shared 2-core machine that was faster
        (22-24 vs 15-18 frames/s under load) and burnt less CPU."""
        model_path = Path(path) if path else default_model_path()
        try:
            import onnxruntime as ort

            if not model_path.is_file():
                raise ModerationModelError(f"moderation model not found: {model_path}")
            side = _read_sidecar(model_path)
            sha = sha256_file(model_path)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
            chosen = choose_providers(providers)
            session = ort.InferenceSession(str(model_path), sess_options=opts, providers=chosen)
            meta = dict(session.get_modelmeta().custom_metadata_map or {})
            inp = session.get_inputs()[0]
            out_shape = session.get_outputs()[0].shape
            kind = kind or side.get("kind") or ("yolov8" if meta.get("task") == "detect" else None)
            if kind is None:
                kind = "yolov8" if len(out_shape) == 3 else "classifier"
            if kind not in ("yolov8", "classifier"):
                raise ModerationModelError(f"unknown model kind {kind!r} (yolov8 or classifier)")
            label_tuple = tuple(labels or side.get("labels") or ()) or _labels_from_metadata(meta)
            if not label_tuple:
                raise ModerationModelError(
                    f"no label map for {model_path.name}: pass labels= or add "
                    f"{model_path.name}.labels.yaml with 'labels: [...]'"
                )
            size = input_size or side.get("input_size")
            if size is None and isinstance(inp.shape[2], int):
                size = inp.shape[2]
            if size is None and "imgsz" in meta:
                size = int(ast.literal_eval(meta["imgsz"])[0])
            size = int(size or 320)
            info = ModelInfo(
                model_id=str(side.get("id") or f"{model_path.stem}@{sha[:12]}"),
                path=str(model_path),
                sha256=sha,
                kind=kind,
                labels=label_tuple,
                input_size=size,
                providers=tuple(session.get_providers()),
                license=side.get("license") or meta.get("license"),
            )
        except ModerationModelError:
            raise
        except Exception as exc:  # corrupt file, bad graph, unreadable path, ...
            raise ModerationModelError(
                f"cannot load moderation model {model_path.name}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"
            ) from exc
        return cls(info=info, _session=session, _input_name=inp.name)

    # -- preprocessing ---------------------------------------------------------------
    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """RGB uint8 (H, W, 3) -> (3, S, S) float32 and the factor model px -> frame px."""
        import cv2

        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ModerationModelError(f"frames must be RGB uint8 (H, W, 3), got {frame.shape}")
        h, w = frame.shape[:2]
        side = max(h, w)
        s = self.info.input_size
        scale = side / s
        nh, nw = max(1, round(h / scale)), max(1, round(w / scale))
        if (nh, nw) != (h, w):
            frame = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((s, s, 3), dtype=np.uint8)
        canvas[:nh, :nw] = frame
        return canvas.transpose(2, 0, 1).astype(np.float32) * (1.0 / 255.0), scale

    # -- inference ---------------------------------------------------------------------
    def predict(
        self, frames: list[np.ndarray], *, batch_size: int = DEFAULT_BATCH
    ) -> list[list[RawDetection]]:
        """Detections per frame, boxes in that frame's pixel coordinates (x, y, w, h)."""
        results: list[list[RawDetection]] = []
        try:
            for start in range(0, len(frames), batch_size):
                chunk = frames[start : start + batch_size]
                prepped = [self.preprocess(f) for f in chunk]
                blob = np.stack([p[0] for p in prepped])
                # InferenceSession.run is thread-safe: no lock needed
                out = self._session.run(None, {self._input_name: blob})[0]
                for j, (_, scale) in enumerate(prepped):
                    h, w = chunk[j].shape[:2]
                    if self.info.kind == "yolov8":
                        results.append(self._decode_yolov8(out[j], scale, w, h))
                    else:
                        results.append(self._decode_classifier(out[j], w, h))
        except ModerationModelError:
            raise
        except Exception as exc:
            raise ModerationModelError(
                f"moderation inference failed: {type(exc).__name__}: {str(exc)[:200]}"
            ) from exc
        return results

    def _decode_yolov8(self, out: np.ndarray, scale: float, w: int, h: int) -> list[RawDetection]:
        # out: (4 + nc, N) with cx, cy, w, h in model pixels, then per-class scores.
        n_labels = len(self.info.labels)
        if out.ndim != 2 or out.shape[0] != 4 + n_labels:
            raise ModerationModelError(
                f"model output {out.shape} does not match 4 + {n_labels} labels"
            )
        preds = out.T
        cls_scores = preds[:, 4:]
        cls_ids = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(preds)), cls_ids]
        keep = scores >= MIN_SCORE
        if not keep.any():
            return []
        preds, cls_ids, scores = preds[keep], cls_ids[keep], scores[keep]
        boxes = np.empty((len(preds), 4), dtype=np.float64)
        boxes[:, 0] = (preds[:, 0] - preds[:, 2] / 2) * scale
        boxes[:, 1] = (preds[:, 1] - preds[:, 3] / 2) * scale
        boxes[:, 2] = preds[:, 2] * scale
        boxes[:, 3] = preds[:, 3] * scale
        # clip to the frame (the padded area lies right/bottom)
        boxes[:, 0] = boxes[:, 0].clip(0, w)
        boxes[:, 1] = boxes[:, 1].clip(0, h)
        boxes[:, 2] = np.minimum(boxes[:, 2], w - boxes[:, 0]).clip(0)
        boxes[:, 3] = np.minimum(boxes[:, 3], h - boxes[:, 1]).clip(0)
        dets: list[RawDetection] = []
        for c in np.unique(cls_ids):  # class-wise NMS
            idx = np.flatnonzero(cls_ids == c)
            for k in _nms(boxes[idx], scores[idx], NMS_IOU):
                i = idx[k]
                dets.append(
                    RawDetection(
                        label=self.info.labels[int(c)],
                        score=float(scores[i]),
                        box=tuple(float(v) for v in boxes[i]),  # type: ignore[arg-type]
                    )
                )
        dets.sort(key=lambda d: -d.score)
        return dets

    def _decode_classifier(self, out: np.ndarray, w: int, h: int) -> list[RawDetection]:
        probs = np.asarray(out, dtype=np.float64).reshape(-1)
        if probs.shape[0] != len(self.info.labels):
            raise ModerationModelError(
                f"classifier output {probs.shape} does not match {len(self.info.labels)} labels"
            )
        if probs.min() < 0 or probs.max() > 1 or not np.isclose(probs.sum(), 1.0, atol=1e-3):
            e = np.exp(probs - probs.max())  # logits -> softmax
            probs = e / e.sum()
        return [
            RawDetection(label=lab, score=float(p), box=(0.0, 0.0, float(w), float(h)))
            for lab, p in zip(self.info.labels, probs, strict=True)
            if p >= MIN_SCORE
        ]


@lru_cache(maxsize=4)
def _cached(path: str | None, threads: int) -> ModerationModel:
    return ModerationModel.load(path, threads=threads)


def get_model(path: Path | str | None = None, *, threads: int = 0) -> ModerationModel:
    """The configured model (``REELFORGE_MODERATION_MODEL`` or NudeNet 320n), cached per process.

    Failed loads are not cached: the next call tries again and fails again (closed).
    """
    if path is None:
        from reelforge.core.settings import get_settings

        path = get_settings().moderation_model
    return _cached(str(path) if path else None, threads)
