"""Object storage against the real S3 server of the stack."""

from __future__ import annotations

import uuid

import httpx
import pytest

from reelforge.core.errors import InvalidInput
from reelforge.core.storage import content_key, parse_uri, sha256_file


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(uuid.uuid4().bytes * 100)
    return path


def test_put_is_content_addressed_and_points_back_to_the_asset(store, sample):
    asset_id = uuid.uuid4()
    stored = store.put_file(sample, tenant="acme", kind="raw_clip", asset_id=asset_id)
    digest = sha256_file(sample)
    assert stored.key == content_key("acme", "raw_clip", digest, ".mp4")
    assert stored.content_type == "video/mp4"
    assert store.asset_id_of(stored.uri) == str(asset_id)
    assert store.read_bytes(stored.uri) == sample.read_bytes()


def test_private_objects_never_get_a_public_url(store, sample):
    stored = store.put_file(sample, tenant="acme", kind="rendition", asset_id=uuid.uuid4())
    with pytest.raises(InvalidInput, match="not published"):
        store.presign(stored.uri)


def test_published_object_is_downloadable_through_its_presigned_url(store, sample):
    stored = store.put_file(sample, tenant="acme", kind="rendition", asset_id=uuid.uuid4())
    published = store.publish(stored.uri, tenant="acme")
    assert parse_uri(published)[0] == store.published
    url = store.presign(published)
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == sample.read_bytes()
    # A tampered signature is refused by the server.
    assert (
        httpx.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10).status_code
        == 403
    )


def test_internal_presign_reaches_private_objects_for_reviewers(store, sample):
    stored = store.put_file(sample, tenant="acme", kind="rendition", asset_id=uuid.uuid4())
    assert httpx.get(store.presign(stored.uri, internal=True), timeout=10).status_code == 200


def test_delete_and_exists(store, sample):
    stored = store.put_file(sample, tenant="acme", kind="logo", asset_id=uuid.uuid4())
    assert store.exists(stored.uri)
    store.delete(stored.uri)
    assert not store.exists(stored.uri)


@pytest.mark.parametrize("uri", ["http://x/y", "s3://bucket", "s3:///key", "bucket/key"])
def test_bad_uris_are_refused(uri):
    with pytest.raises(InvalidInput):
        parse_uri(uri)
