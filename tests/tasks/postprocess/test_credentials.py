"""Content credentials (C2PA) and the AI label: real ffmpeg renders, real c2pa signing, and
the SDK's own Reader as the independent reader."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import av
import c2pa
import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from reelforge.core.errors import InvalidInput
from reelforge.core.settings import Settings
from reelforge.ops.signing import describe_signing, ensure_local_identity
from tasks.postprocess.credentials import (
    AI_SOURCE,
    Disclosure,
    Ingredient,
    ManifestFacts,
    build_manifest,
    load_signing_identity,
    read_credentials,
    sign_video,
)
from tasks.postprocess.logo import LogoSpec
from tasks.postprocess.overlay import TextSpec, ai_label_for
from tasks.postprocess.renditions import render_base, render_rendition, render_variant
from tasks.postprocess.renditions import rendition_preset as preset_of

from .conftest import EXAMPLES, make_clip


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("signing-home")


@pytest.fixture(scope="module")
def settings(home) -> Settings:
    settings = Settings(home=home)
    assert ensure_local_identity(settings) is True
    return settings


@pytest.fixture(scope="module")
def rendition(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("render")
    clip = make_clip(folder / "clip.mp4", seconds=1.0)
    out = folder / "rendition.mp4"
    render_rendition(
        clip, out, preset_of("16:9", "720p", 24), label=ai_label_for("en"), cache_dir=folder
    )
    return out


def _facts(**overrides) -> ManifestFacts:
    fields = dict(
        title="rendition.mp4",
        model_id="reelforge-tiny",
        model_version="tiny-1",
        pipeline="pp-2",
        ingredients=[
            Ingredient("raw_clip", "raw clip", "video/mp4", "11111111-aaaa", "ab" * 32),
            Ingredient("logo", "logo", "image/png", "22222222-bbbb", "cd" * 32),
        ],
        disclosure=Disclosure(True, "AI-generated", "en"),
        graded=True,
        edits={"preset": "16:9-720p@24"},
    )
    return ManifestFacts(**(fields | overrides))


def _top_level_boxes(path: Path) -> list[str]:
    data, boxes, at = path.read_bytes(), [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        boxes.append(kind.decode())
        at += size
    return boxes


def _signed(settings, rendition, tmp_path, **facts) -> Path:
    out = tmp_path / "signed.mp4"
    sign_video(rendition, out, build_manifest(_facts(**facts)), load_signing_identity(settings))
    return out


def test_a_signed_rendition_reads_valid_with_the_ai_action_and_its_ingredients(
    settings, rendition, tmp_path
):
    signed = _signed(settings, rendition, tmp_path)
    with c2pa.Reader(str(signed)) as reader:  # the SDK's reader, not ours
        report = json.loads(reader.json())
    assert report["validation_state"] == "Valid"
    assert [s["code"] for s in report["validation_status"]] == ["signingCredential.untrusted"]
    manifest = report["manifests"][report["active_manifest"]]
    assert manifest["claim_generator_info"][0]["name"] == "ReelForge"
    actions = next(a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    created = actions["data"]["actions"][0]
    assert created["action"] == "c2pa.created" and created["digitalSourceType"] == AI_SOURCE
    assert created["softwareAgent"] == {"name": "reelforge-tiny", "version": "tiny-1"}
    raw = next(i for i in manifest["ingredients"] if i["title"] == "raw clip")
    assert raw["metadata"]["com.reelforge.asset_id"] == "11111111-aaaa"
    disclosure = next(a for a in manifest["assertions"] if a["label"].endswith("ai_disclosure"))
    assert disclosure["data"] == {"visible": True, "text": "AI-generated", "language": "en"}
    generation = next(a for a in manifest["assertions"] if a["label"].endswith("generation"))
    assert "prompt" not in generation["data"]  # only when the tenant's policy allows it
    # faststart kept: the player needs moov before mdat to start streaming
    boxes = _top_level_boxes(signed)
    assert boxes.index("moov") < boxes.index("mdat")
    # and the video still decodes
    with av.open(str(signed)) as container:
        assert container.streams.video[0].codec_context.width == 1280


def test_a_tampered_copy_fails_validation(settings, rendition, tmp_path):
    signed = _signed(settings, rendition, tmp_path)
    data = bytearray(signed.read_bytes())
    data[-2000] ^= 0xFF  # inside mdat: one changed byte of video
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    credentials = read_credentials(tampered)
    assert not credentials.valid
    assert "assertion.bmffHash.mismatch" in credentials.failures
    assert read_credentials(signed).valid


def test_a_file_without_credentials_or_not_media_is_refused_in_one_line(rendition, tmp_path):
    with pytest.raises(InvalidInput, match="no content credentials"):
        read_credentials(rendition)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InvalidInput, match="not a video or image"):
        read_credentials(text)


def test_the_prompt_goes_into_the_manifest_only_when_given(settings, rendition, tmp_path):
    signed = _signed(settings, rendition, tmp_path, prompt="a red circle")
    assert read_credentials(signed).generation["prompt"] == "a red circle"


def test_bad_keys_and_chains_are_one_line_errors(settings, tmp_path):
    garbage = tmp_path / "key.pem"
    garbage.write_text("not a key")
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(other)
    unreadable = tmp_path / "unreadable.pem"
    unreadable.mkdir()  # a folder where the key should be: reading it fails
    chain = settings.c2pa_chain_path
    cases = [
        (Settings(c2pa_cert_chain=chain, c2pa_private_key=tmp_path / "no.pem"), "does not exist"),
        (Settings(c2pa_cert_chain=chain, c2pa_private_key=garbage), "not an unencrypted PEM"),
        (Settings(c2pa_cert_chain=chain, c2pa_private_key=wrong), "does not belong"),
        (Settings(c2pa_cert_chain=chain, c2pa_private_key=unreadable), "cannot read"),
        (Settings(c2pa_cert_chain=garbage, c2pa_private_key=wrong), "no PEM certificate"),
    ]
    for bad, message in cases:
        with pytest.raises(InvalidInput, match=message) as caught:
            load_signing_identity(bad)
        assert "\n" not in str(caught.value)
        with pytest.raises(InvalidInput, match=message):
            describe_signing(bad)  # what `reelforge doctor` reports


def test_doctor_warns_that_the_local_ca_is_not_trusted(settings):
    assert "WARNING: issued by the local CA" in describe_signing(settings)


def test_the_local_identity_is_made_once(settings):
    before = settings.c2pa_key_path.read_bytes()
    assert ensure_local_identity(settings) is False
    assert settings.c2pa_key_path.read_bytes() == before
    assert oct(settings.c2pa_key_path.stat().st_mode & 0o777) == "0o600"


def sign_with_test_kms(data: bytes) -> bytes:
    """A stand-in for a KMS client: signs with a key the signer process never loads."""
    key = serialization.load_pem_private_key(
        Path(os.environ["TEST_KMS_KEY"]).read_bytes(), password=None
    )
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def test_a_callback_signer_signs_with_a_key_held_elsewhere(
    settings, rendition, tmp_path, monkeypatch
):
    monkeypatch.setenv("TEST_KMS_KEY", str(settings.c2pa_key_path))
    kms = Settings(
        c2pa_cert_chain=settings.c2pa_chain_path,
        c2pa_signer_callback=f"{__name__}:sign_with_test_kms",
    )
    identity = load_signing_identity(kms)
    assert identity.key_pem is None
    out = tmp_path / "kms.mp4"
    sign_video(rendition, out, build_manifest(_facts()), identity)
    assert read_credentials(out).valid
    with pytest.raises(InvalidInput, match="cannot be imported"):
        load_signing_identity(Settings(c2pa_signer_callback="no.such.module:sign"))


# --- the visible label -------------------------------------------------------------------------


def _corner(path: Path, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return frame[y0:y1, x0:x1].astype(int)


def test_the_label_is_drawn_in_the_top_corner_away_from_the_logo(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    preset = preset_of("16:9", "720p", 24)
    logo = LogoSpec(str(EXAMPLES / "logo.png"), position="top-right")
    plain = render_rendition(clip, tmp_path / "plain.mp4", preset, logo=logo, cache_dir=tmp_path)
    labelled = render_rendition(
        clip, tmp_path / "ja.mp4", preset, logo=logo, label=ai_label_for("ja"), cache_dir=tmp_path
    )
    assert plain.params["ai_label"] is None
    assert labelled.params["ai_label"] == {
        "text": "AI生成", "language": "ja", "corner": "top-left", "font_size": 22,
    }  # fmt: skip
    top_left = (0, 0, 400, 120)
    diff = np.abs(
        _corner(tmp_path / "ja.mp4", top_left) - _corner(tmp_path / "plain.mp4", top_left)
    )
    assert diff.max() > 100  # white text on a dark box where the clip was
    top_right = (880, 0, 1280, 120)
    same = np.abs(
        _corner(tmp_path / "ja.mp4", top_right) - _corner(tmp_path / "plain.mp4", top_right)
    )
    assert same.mean() < 3  # the logo's corner is left alone


def test_a_personalised_variant_draws_the_label_once_and_the_base_never(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
    preset = preset_of("9:16", "720p", 24)
    base = render_base(clip, preset, cache_dir=tmp_path)
    variant = render_variant(base, tmp_path / "v.mp4", TextSpec("Hi Ana"), label=ai_label_for("ko"))
    assert variant.params["ai_label"]["text"] == "AI 생성"
    assert variant.params["ai_label"]["corner"] == "top-right"
    assert "ai_label" not in base.params
    assert "drawtext" in " ".join(variant.command) and "ai-label.txt" in " ".join(variant.command)
    assert " ".join(variant.command).count("ai-label.txt") == 1
    corner = (400, 0, 720, 200)
    diff = np.abs(_corner(tmp_path / "v.mp4", corner) - _corner(Path(base.path), corner))
    assert diff.max() > 100
