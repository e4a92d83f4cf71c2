"""The ONNX moderation model, for real: NudeNet's 320n.onnx from the installed wheel."""

from __future__ import annotations

import hashlib

import numpy as np
import onnxruntime as ort
import pytest

from models.moderation import (
    NUDENET_LABELS,
    ModerationModel,
    ModerationModelError,
    choose_providers,
    default_model_path,
    get_model,
)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()  # RGB uint8, 512 x 512


def test_astronaut_is_a_female_face(astronaut: np.ndarray) -> None:
    model = get_model()
    [dets] = model.predict([astronaut])
    faces = [d for d in dets if d.label == "FACE_FEMALE"]
    assert faces, dets
    face = faces[0]
    assert 0.6 <= face.score <= 1.0
    x, y, w, h = face.box  # the face is in the upper middle of the photo
    assert 140 < x < 210 and 50 < y < 120 and 70 < w < 140 and 70 < h < 140


def test_model_info_identifies_the_bundled_model() -> None:
    info = get_model().info
    path = default_model_path()
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.labels == NUDENET_LABELS  # read from the ONNX metadata
    assert info.kind == "yolov8" and info.input_size == 320
    assert "AGPL" in (info.license or "")
    assert info.providers[-1] == "CPUExecutionProvider"


def test_providers_put_cuda_first_when_available() -> None:
    chosen = choose_providers()
    assert chosen[-1] == "CPUExecutionProvider"
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert chosen[0] == "CUDAExecutionProvider"
    with pytest.raises(ModerationModelError, match="not available"):
        choose_providers(["NoSuchExecutionProvider"])


def test_batch_equals_single(astronaut: np.ndarray) -> None:
    model = get_model()
    small = astronaut[::2, ::2].copy()
    blank = np.full((180, 320, 3), 200, np.uint8)
    batched = model.predict([astronaut, blank, small], batch_size=3)
    singles = [model.predict([f])[0] for f in (astronaut, blank, small)]
    for b, s in zip(batched, singles, strict=True):
        assert [d.label for d in b] == [d.label for d in s]
        assert np.allclose([d.score for d in b], [d.score for d in s], atol=1e-4)
    assert batched[1] == []  # a flat grey frame has nothing
    # boxes come back in each frame's own pixels
    big = next(d for d in batched[0] if d.label == "FACE_FEMALE").box
    half = next(d for d in batched[2] if d.label == "FACE_FEMALE").box
    assert abs(big[0] / 2 - half[0]) < 6 and abs(big[2] / 2 - half[2]) < 6


def test_corrupt_or_missing_model_fails_closed(tmp_path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx graph" * 100)
    with pytest.raises(ModerationModelError, match="cannot load moderation model"):
        ModerationModel.load(bad)
    with pytest.raises(ModerationModelError, match="not found"):
        ModerationModel.load(tmp_path / "missing.onnx")


def test_other_model_by_path_with_label_map(tmp_path, astronaut: np.ndarray) -> None:
    # the same graph under another name, with a sidecar label map renaming two classes
    link = tmp_path / "detector.onnx"
    link.symlink_to(default_model_path())
    labels = list(NUDENET_LABELS)
    labels[1], labels[12] = "face_a", "face_b"
    (tmp_path / "detector.onnx.labels.yaml").write_text(
        "kind: yolov8\nid: my-detector-v1\nlicense: Apache-2.0\nlabels:\n"
        + "".join(f"  - {lab}\n" for lab in labels),
        encoding="utf-8",
    )
    model = ModerationModel.load(link)
    assert model.info.model_id == "my-detector-v1" and model.info.license == "Apache-2.0"
    assert "face_a" in {d.label for d in model.predict([astronaut])[0]}
    # a label map that does not fit the graph's output is an error, not an empty result
    wrong = ModerationModel.load(link, labels=["only", "three", "labels"])
    with pytest.raises(ModerationModelError, match="does not match"):
        wrong.predict([astronaut])


def test_non_rgb_input_is_rejected() -> None:
    with pytest.raises(ModerationModelError, match="RGB uint8"):
        get_model().predict([np.zeros((10, 10), np.uint8)])
