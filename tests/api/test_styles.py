"""/v1/styles: a tenant uploads, lists and removes its brand styles; other tenants see none
of them, and a file that does not fit the model is a 422 with one line."""

from __future__ import annotations

from models.train_style_lora import STYLES_DIR
from reelforge.core.storage import sha256_file

OCEAN = STYLES_DIR / "ocean.safetensors"


def _upload(client, tenant, name: str, body: bytes):
    return client.post(
        "/v1/styles",
        data={"name": name},
        files={"file": ("style.safetensors", body, "application/octet-stream")},
        headers=tenant.headers,
    )


def test_upload_list_remove_per_tenant(client, make_tenant):
    owner, other = make_tenant("style"), make_tenant("style")
    created = _upload(client, owner, "ocean", OCEAN.read_bytes())
    assert created.status_code == 201, created.text
    assert created.json()["sha256"] == sha256_file(OCEAN) and created.json()["rank"] == 4
    listed = client.get("/v1/styles", headers=owner.headers).json()["styles"]
    assert [s["name"] for s in listed] == ["ocean"]
    assert client.get("/v1/styles", headers=other.headers).json() == {"styles": []}
    assert client.delete("/v1/styles/ocean", headers=other.headers).status_code == 404
    video = {"prompt": "a red circle moves up", "style": "ocean", "style_strength": 0.8}
    refused = client.post("/v1/videos", json=video, headers=other.headers)
    assert refused.status_code == 422 and "has no style 'ocean'" in refused.json()["error"]
    assert client.delete("/v1/styles/ocean", headers=owner.headers).status_code == 204
    assert client.get("/v1/styles", headers=owner.headers).json() == {"styles": []}


def test_a_file_that_does_not_fit_is_422(client, make_tenant):
    tenant = make_tenant("style")
    answer = _upload(client, tenant, "junk", b"not a LoRA at all")
    assert answer.status_code == 422
    assert "is not a safetensors file" in answer.json()["error"]
    assert "\n" not in answer.json()["error"]
    assert client.get("/v1/styles", headers=tenant.headers).json() == {"styles": []}
