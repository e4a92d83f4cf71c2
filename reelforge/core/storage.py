"""Object storage through the ``minio`` SDK (SeaweedFS locally, MinIO or any S3 in production).

Two buckets keep the safety promise structural: every asset lands in the private bucket
under a content-addressed key; only renditions with a passing verdict are *copied* to the
published bucket, and only published keys are ever presigned for the public.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from reelforge.core.errors import InvalidInput, ServiceUnavailable
from reelforge.core.settings import Settings, get_settings

_CHUNK = 1 << 20
META_ASSET_ID = "asset-id"
_TRANSIENT = (urllib3.exceptions.HTTPError, OSError)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, read in chunks (the one definition: assets, models, LUTs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    sha256: str
    size_bytes: int
    content_type: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise InvalidInput(f"not an object URI: {uri!r} (expected s3://bucket/key)")
    return parts.netloc, parts.path.lstrip("/")


def content_key(tenant: str, kind: str, sha256: str, suffix: str) -> str:
    """Content-addressed key: the same bytes of the same kind for a tenant live at one key."""
    return f"{tenant}/{kind}/{sha256[:2]}/{sha256}{suffix}"


def _client(settings: Settings) -> Minio:
    # Short timeouts and few SDK retries: outages must surface quickly so that the
    # stage's own retry policy (with backoff) decides, not a hidden 2-minute hang.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=3, read=60),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
        maxsize=8,
    )
    access_key, secret_key = settings.s3_credentials
    return Minio(
        settings.s3_address,
        access_key=access_key,
        secret_key=secret_key,
        secure=settings.s3_secure,
        region=settings.s3_region,
        http_client=http,
    )


class ObjectStore:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.client = _client(self.settings)
        self.private = self.settings.bucket_private
        self.published = self.settings.bucket_published

    def ensure_buckets(self, *buckets: str) -> None:
        """Create the given buckets (default: private and published) unless they exist."""
        for bucket in buckets or (self.private, self.published):
            try:
                if not self.client.bucket_exists(bucket):
                    self.client.make_bucket(bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            except _TRANSIENT as exc:
                raise ServiceUnavailable(
                    f"S3 at {self.settings.s3_address} is unreachable: run `reelforge up` "
                    "or check REELFORGE_S3_ENDPOINT"
                ) from exc

    def put_file(
        self,
        path: Path,
        *,
        tenant: str,
        kind: str,
        asset_id: uuid.UUID,
        content_type: str | None = None,
        sha256: str | None = None,
    ) -> StoredObject:
        """Upload into the private bucket at the content key, tagged with its lineage asset id."""
        digest = sha256 or sha256_file(path)
        ctype = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        key = content_key(tenant, kind, digest, path.suffix.lower())
        self.client.fput_object(
            self.private,
            key,
            str(path),
            content_type=ctype,
            metadata={META_ASSET_ID: str(asset_id), "sha256": digest, "tenant": tenant},
        )
        return StoredObject(self.private, key, digest, path.stat().st_size, ctype)

    def download(self, uri: str, dest: Path) -> Path:
        bucket, key = parse_uri(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.client.fget_object(bucket, key, str(dest))
        return dest

    def read_bytes(self, uri: str) -> bytes:
        bucket, key = parse_uri(uri)
        response = self.client.get_object(bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def exists(self, uri: str) -> bool:
        bucket, key = parse_uri(uri)
        try:
            self.client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise
        return True

    def asset_id_of(self, uri: str) -> str | None:
        bucket, key = parse_uri(uri)
        stat = self.client.stat_object(bucket, key)
        meta = {k.lower(): v for k, v in (stat.metadata or {}).items()}
        return meta.get(f"x-amz-meta-{META_ASSET_ID}")

    def publish(self, uri: str, *, tenant: str) -> str:
        """Copy a private object to the published bucket; returns the published URI.

        Callers must hold a passing safety verdict: the database refuses to mark an asset
        published without one, and the publish task checks before copying.
        """
        bucket, key = parse_uri(uri)
        target = self.published_uri(uri, tenant=tenant)
        self.client.copy_object(self.published, parse_uri(target)[1], CopySource(bucket, key))
        return target

    def published_uri(self, uri: str, *, tenant: str) -> str:
        """Where a private object appears once published (content-addressed too)."""
        bucket, key = parse_uri(uri)
        if bucket != self.private:
            raise InvalidInput(f"only private objects can be published, got {uri}")
        return f"s3://{self.published}/{tenant}/{key.split('/', 1)[1]}"

    def delete(self, uri: str) -> None:
        bucket, key = parse_uri(uri)
        self.client.remove_object(bucket, key)

    def presign(self, uri: str, *, internal: bool = False) -> str:
        """A time-limited GET URL. Public URLs exist only for the published bucket;
        ``internal=True`` (reviewers, the ops dashboard) may presign private objects."""
        bucket, key = parse_uri(uri)
        if bucket != self.published and not internal:
            raise InvalidInput(f"{uri} is not published: only published objects get public URLs")
        return self.client.presigned_get_object(
            bucket, key, expires=timedelta(seconds=self.settings.presign_expiry_seconds)
        )

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        return [
            o.object_name for o in self.client.list_objects(bucket, prefix=prefix, recursive=True)
        ]


def probe(settings: Settings) -> None:
    """Readiness for real: a put and a get of a small object, not just an open port."""
    store = ObjectStore(settings)
    store.ensure_buckets()
    payload = uuid.uuid4().bytes
    key = "_health/probe"
    store.client.put_object(store.private, key, io.BytesIO(payload), len(payload))
    response = store.client.get_object(store.private, key)
    try:
        if response.read() != payload:
            raise ServiceUnavailable("S3 returned different bytes than were written")
    finally:
        response.close()
        response.release_conn()
