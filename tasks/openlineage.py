"""OpenLineage run events for stage runs, so collectors such as Marquez see our pipelines.

Each stage run becomes an OpenLineage job ``<flow>.<stage>`` in ``REELFORGE_OPENLINEAGE_NAMESPACE``
whose run is the Prefect task run, with the Prefect flow run as its parent run facet. A START
event (at the task's start time) and a COMPLETE or FAIL event are emitted when the stage
records its outcome (``tasks/record.py``), the one place every stage passes through. Datasets
are the assets' S3 objects (namespace ``s3://bucket``, name the key) with a ``reelforge``
facet: sha256, kind and, on outputs, the model version.

Emission never blocks or fails a run: the HTTP transport has a short timeout and no
retries, and any error is logged and counted (``emit_failures``) instead of raised.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import DatasetFacet, error_message_run, parent_run
from openlineage.client.transport import Transport
from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from prefect.context import FlowRunContext, TaskRunContext

from reelforge.core.settings import Settings, get_settings
from reelforge.core.version import code_version

log = logging.getLogger("reelforge.openlineage")

PRODUCER = "urn:reelforge"  # + ":<code version>"


class AssetLike(Protocol):
    """What a dataset needs of an asset (``tasks.record.AssetRef`` has it)."""

    uri: str
    sha256: str
    kind: Any


@attr.define
class ReelForgeAssetFacet(DatasetFacet):
    """What ReelForge knows of an asset: its content hash, kind and the model that made it."""

    sha256: str
    kind: str
    modelVersion: str | None = attr.field(default=None)  # OpenLineage field casing


class _Failures:
    """Events that could not be emitted in this process (a collector down, a full disk)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> int:
        with self._lock:
            self.count += 1
            return self.count


emit_failures = _Failures()


def _transport(settings: Settings) -> Transport:
    kind = settings.openlineage_transport
    if kind == "console":
        return ConsoleTransport(ConsoleConfig())
    if kind == "file":
        path = settings.openlineage_file or settings.home_dir / "openlineage.jsonl"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return FileTransport(FileConfig(log_file_path=str(path), append=True))
    if kind == "http":
        if not settings.openlineage_url:
            raise ValueError("REELFORGE_OPENLINEAGE_URL is required for the http transport")
        config = HttpConfig(
            url=settings.openlineage_url,
            timeout=settings.openlineage_timeout_seconds,
            retry={"total": 0},  # a down collector costs one timeout, not a retry ladder
        )
        return HttpTransport(config)
    raise ValueError(f"no OpenLineage transport {kind!r}")


_clients: dict[tuple, OpenLineageClient] = {}


def _client(settings: Settings) -> OpenLineageClient:
    """One client per transport configuration (tests change the settings between runs)."""
    key = (
        settings.openlineage_transport,
        settings.openlineage_url,
        settings.openlineage_file,
        settings.openlineage_timeout_seconds,
    )
    if key not in _clients:
        _clients[key] = OpenLineageClient(transport=_transport(settings))
    return _clients[key]


def _dataset_parts(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (``s3://bucket``, ``key``): OpenLineage's naming for objects."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return f"s3://{bucket}", key


def _facets(asset: AssetLike, model_version: str | None) -> dict[str, DatasetFacet]:
    return {
        "reelforge": ReelForgeAssetFacet(
            sha256=asset.sha256, kind=str(asset.kind), modelVersion=model_version
        )
    }


def emit_stage_run(
    stage: str,
    *,
    flow_run_id: uuid.UUID | None,
    task_run_id: uuid.UUID | None,
    inputs: Sequence[AssetLike] = (),
    outputs: Sequence[AssetLike] = (),
    model_version: str | None = None,
    started_at: datetime | None = None,
    error: str | None = None,
) -> None:
    """START then COMPLETE (or FAIL with ``error``) for one stage run; never raises."""
    settings = get_settings()
    if settings.openlineage_transport == "off":
        return
    try:
        client = _client(settings)
        task_run = TaskRunContext.get()
        flow_run = FlowRunContext.get()
        flow_name = flow_run.flow.name if flow_run is not None and flow_run.flow else "adhoc"
        run_id = str(task_run_id or (task_run.task_run.id if task_run else uuid.uuid4()))
        start = started_at or (task_run.task_run.start_time if task_run else None)
        facets: dict = {}
        if flow_run_id is not None:
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=str(flow_run_id)),
                job=parent_run.Job(namespace=settings.openlineage_namespace, name=flow_name),
            )
        job = Job(namespace=settings.openlineage_namespace, name=f"{flow_name}.{stage}")
        used = [InputDataset(*_dataset_parts(a.uri), facets=_facets(a, None)) for a in inputs]
        made = [
            OutputDataset(*_dataset_parts(a.uri), facets=_facets(a, model_version)) for a in outputs
        ]
        producer = f"{PRODUCER}:{code_version()}"
        now = datetime.now(UTC)
        client.emit(
            RunEvent(
                eventType=RunState.START,
                eventTime=(start or now).isoformat(),
                run=Run(runId=run_id, facets=dict(facets)),
                job=job,
                inputs=used,
                producer=producer,
            )
        )
        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error, programmingLanguage="python"
            )
        client.emit(
            RunEvent(
                eventType=RunState.FAIL if error is not None else RunState.COMPLETE,
                eventTime=now.isoformat(),
                run=Run(runId=run_id, facets=facets),
                job=job,
                inputs=used,
                outputs=made,
                producer=producer,
            )
        )
    except Exception as exc:  # a lineage collector must never fail a video
        failures = emit_failures.add()
        log.warning(
            "OpenLineage events for stage %s not emitted (%d so far in this process): %s",
            stage,
            failures,
            " ".join(f"{type(exc).__name__}: {exc}".split())[:300],
        )
