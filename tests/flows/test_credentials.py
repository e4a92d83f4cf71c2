"""Content credentials end to end: what `run_video` publishes (plain and personalised) carries
a C2PA manifest an independent reader validates, `reelforge verify` finds its lineage asset
and catches a tampered copy, and a broken signing key publishes nothing."""

from __future__ import annotations

import json
import struct
import uuid
from pathlib import Path

import c2pa
import numpy as np
import pytest
from typer.testing import CliRunner

from reelforge.cli.app import app
from reelforge.core.errors import InvalidInput
from reelforge.core.jobs import VideoJob
from reelforge.core.settings import get_settings
from reelforge.ops.run import run_video
from tasks.postprocess.credentials import AI_SOURCE
from tasks.postprocess.renditions import frames_to_mp4
from tasks.postprocess.stage import require_signed
from tasks.record import AssetRef

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _job(tenant: str, **overrides) -> VideoJob:
    fields = dict(
        tenant=tenant,
        prompt="a red circle moves from left to right",
        seed=7,
        aspect="9:16",
        logo=EXAMPLES / "logo.png",
        music=EXAMPLES / "music.wav",
    )
    return VideoJob(**(fields | overrides))


def _verify(path: Path) -> tuple[int, dict]:
    result = CliRunner().invoke(app, ["verify", str(path), "--json"])
    return result.exit_code, json.loads(result.stdout)


def _unsigned_mp4(path: Path) -> Path:
    return frames_to_mp4(np.zeros((4, 16, 16, 3), np.uint8), path)


def _published_copy(store, uri: str, path: Path) -> Path:
    store.download(uri, path)
    return path


def _check_published(store, committed, result, tmp_path: Path) -> Path:
    signed = _published_copy(store, result.video.uri, tmp_path / "published.mp4")
    with c2pa.Reader(str(signed)) as reader:
        report = json.loads(reader.json())
    assert report["validation_state"] == "Valid"
    assert {s["code"] for s in report["validation_status"]} == {"signingCredential.untrusted"}
    manifest = report["manifests"][report["active_manifest"]]
    actions = next(a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    assert actions["data"]["actions"][0]["digitalSourceType"] == AI_SOURCE
    raw = next(i for i in manifest["ingredients"] if i["title"] == "raw clip")
    assert raw["metadata"]["com.reelforge.asset_id"] == str(result.raw_clip_asset_id)
    assert {i["title"] for i in manifest["ingredients"]} == {"raw clip", "logo", "music"}
    data, boxes, at = signed.read_bytes(), [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        boxes.append(kind.decode())
        at += size
    assert boxes.index("moov") < boxes.index("mdat")
    # the published file is the recorded rendition: same sha256 in lineage
    code, payload = _verify(signed)
    assert code == 0 and payload["valid"] is True
    assert str(result.video.asset_id) in [a["asset_id"] for a in payload["lineage_assets"]]
    (row,) = committed(
        "SELECT ac.parameters FROM activities ac JOIN generated g ON g.activity_id = ac.id "
        "WHERE g.asset_id = :id",
        id=result.video.asset_id,
    )
    assert row.parameters["ai_label"]["text"] == "AI-generated"
    assert row.parameters["c2pa"]["alg"] == "es256"
    return signed


def test_a_published_video_carries_valid_credentials_and_verify_finds_it(
    stack, store, tenant_slug, committed, tmp_path
):
    result = run_video(_job(tenant_slug))
    signed = _check_published(store, committed, result, tmp_path)

    data = bytearray(signed.read_bytes())
    data[-4000] ^= 0xFF
    tampered = tmp_path / "tampered.mp4"
    tampered.write_bytes(bytes(data))
    code, payload = _verify(tampered)
    assert code == 3 and payload["ok"] is False
    assert "assertion.bmffHash.mismatch" in payload["validation_status"]
    assert payload["lineage_assets"] == []

    code, payload = _verify(_unsigned_mp4(tmp_path / "unsigned.mp4"))
    assert code == 2 and "no content credentials" in payload["error"]


def test_a_personalised_video_is_signed_once_with_its_label(
    stack, store, tenant_slug, committed, tmp_path
):
    result = run_video(_job(tenant_slug, audience="ana", text="Hola Ana"))
    _check_published(store, committed, result, tmp_path)


def test_a_broken_signing_key_publishes_nothing(
    stack, store, tenant_slug, committed, tmp_path, monkeypatch
):
    bad = tmp_path / "key.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("REELFORGE_C2PA_PRIVATE_KEY", str(bad))
    monkeypatch.setenv("REELFORGE_C2PA_CERT_CHAIN", str(stack.c2pa_chain_path))
    get_settings.cache_clear()
    try:
        with pytest.raises(InvalidInput, match="not an unencrypted PEM private key") as caught:
            run_video(_job(tenant_slug))
        assert "\n" not in str(caught.value)
        assert caught.value.flow_run_id is None  # refused before any run or GPU time
    finally:
        get_settings.cache_clear()
    assert not list(store.list_keys(store.published, prefix=f"{tenant_slug}/"))


def test_publish_refuses_an_unsigned_rendition(stack, tmp_path):
    from reelforge.core.storage import sha256_file

    unsigned = _unsigned_mp4(tmp_path / "r.mp4")
    sha = sha256_file(unsigned)
    cached = stack.home_dir / "cache" / "assets" / f"{sha}.mp4"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(unsigned.read_bytes())
    ref = AssetRef(id=uuid.uuid4(), kind="rendition", uri="s3://private/r.mp4", sha256=sha)
    with pytest.raises(InvalidInput, match="cannot be published with REELFORGE_C2PA_SIGNING"):
        require_signed(ref)
