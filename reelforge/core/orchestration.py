"""Prefect objects the pipeline relies on: result storage, work pools, the GPU slot limit.

* Results: every stage persists its result to S3 through a prefect-aws ``S3Bucket`` block
  (``s3-bucket/reelforge-results``) that points at our S3 endpoint, so a retried run on any
  machine finds what the failed attempt finished.
* Work pools (type ``process``): ``cpu`` runs campaign orchestration, ``gpu`` runs video and
  personalised flows. ``reelforge worker --pool cpu|gpu`` joins a machine to one.
* GPU slots: a global concurrency limit per machine (``reelforge-gpu-<host>``) with as many
  slots as it has GPUs; generation holds one slot under a lease, so a crashed worker's slot
  comes back when the lease runs out.

Everything here is idempotent: ``ensure_*`` creates what is missing and leaves the rest.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any, Literal

import httpx
from pydantic import SecretStr

from reelforge.core.errors import InvalidInput, ServiceUnavailable
from reelforge.core.settings import PREFECT_AUTH_SECRET, Settings, get_settings
from reelforge.core.storage import ObjectStore

RESULTS_BLOCK_NAME = "reelforge-results"
RESULTS_BLOCK = f"s3-bucket/{RESULTS_BLOCK_NAME}"
RESULTS_FOLDER = "prefect"
Pool = Literal["cpu", "gpu"]

_ready: set[str] = set()
_ready_lock = threading.Lock()


def prefect_env(settings: Settings) -> dict[str, str]:
    """Environment for any process that talks to our Prefect API, offline-safe."""
    env = {
        "PREFECT_API_URL": settings.prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_HOME": str(settings.home_dir / "prefect"),
    }
    if settings.prefect_auth is not None:
        env["PREFECT_API_AUTH_STRING"] = settings.prefect_auth
    return env


def configure_prefect(settings: Settings) -> None:
    """Set Prefect's environment unless the caller already chose values.

    Must run before Prefect reads its settings; the telemetry switches keep Prefect from
    calling hosts outside this machine. The auth string goes with the API URL: where this
    sets the URL it sets the auth string too, so a child process pointed at another stack
    never keeps its parent's string.
    """
    env = prefect_env(settings)
    if "PREFECT_API_URL" not in os.environ and "PREFECT_API_AUTH_STRING" in env:
        os.environ["PREFECT_API_AUTH_STRING"] = env["PREFECT_API_AUTH_STRING"]
    for key, value in env.items():
        os.environ.setdefault(key, value)
    if "prefect.context" in sys.modules:
        # Prefect was imported before this ran: it read its settings then, so re-read them
        # (otherwise its client would start a throwaway local server instead of our API).
        from prefect.context import refresh_global_settings_context
        from prefect.settings import get_current_settings

        api = get_current_settings().api
        auth = api.auth_string.get_secret_value() if api.auth_string else None
        if str(api.url or "") != os.environ["PREFECT_API_URL"] or auth != os.environ.get(
            "PREFECT_API_AUTH_STRING"
        ):
            refresh_global_settings_context()


@lru_cache(maxsize=1)
def _probe_client() -> httpx.Client:
    """One client for the health checks every run makes: a new one per check builds a TLS
    context (20 ms, a tenth of a small video's orchestration time). No kept-alive
    connections: nothing pooled survives into a forked process."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def prefect_answers(api: str, timeout: float = 3) -> bool:
    """Whether the Prefect API at ``api`` is up (its ``/health`` says true)."""
    try:
        response = _probe_client().get(f"{api}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json() is True


def prefect_auth_source(settings: Settings) -> str:
    """Where the Prefect auth string in use comes from: the secret to fix when refused."""
    if settings.prefect_auth_string is not None:
        return "REELFORGE_PREFECT_AUTH_STRING"
    if settings.uses_local_prefect:
        return f"{settings.secrets_dir / PREFECT_AUTH_SECRET} (or REELFORGE_PREFECT_AUTH_STRING)"
    return "PREFECT_API_AUTH_STRING"


def prefect_accepts(api: str, auth: str | None, timeout: float = 3) -> bool:
    """Whether the API at ``api`` lets ``auth`` (user:password; None: no credentials) in."""
    credentials = tuple(auth.split(":", 1)) if auth else None
    response = _probe_client().get(f"{api}/admin/version", auth=credentials, timeout=timeout)
    if response.status_code == 401:
        return False
    response.raise_for_status()
    return True


def require_prefect(settings: Settings) -> None:
    """Point Prefect at our API and fail with one line if it is not there or refuses us."""
    configure_prefect(settings)
    api = os.environ.get("PREFECT_API_URL", settings.prefect_api)
    if not prefect_answers(api):
        raise ServiceUnavailable(
            f"Prefect API at {api} is unreachable: run `reelforge up` or check PREFECT_API_URL"
        )
    if not prefect_accepts(api, os.environ.get("PREFECT_API_AUTH_STRING")):
        raise InvalidInput(
            f"the Prefect API at {api} refused the auth string: fix {prefect_auth_source(settings)}"
        )


def results_block(settings: Settings):
    """The S3 result storage (prefect-aws ``S3Bucket``) for our S3 endpoint."""
    from prefect_aws import MinIOCredentials, S3Bucket
    from prefect_aws.client_parameters import AwsClientParameters

    scheme = "https" if settings.s3_secure else "http"
    access_key, secret_key = settings.s3_credentials
    credentials = MinIOCredentials(
        minio_root_user=access_key,
        minio_root_password=SecretStr(secret_key),
        region_name=settings.s3_region,
        aws_client_parameters=AwsClientParameters(
            endpoint_url=f"{scheme}://{settings.s3_address}",
            use_ssl=settings.s3_secure,
            config={"s3": {"addressing_style": "path"}, "signature_version": "s3v4"},
        ),
    )
    return S3Bucket(
        bucket_name=settings.bucket_results, credentials=credentials, bucket_folder=RESULTS_FOLDER
    )


def ensure_results_storage(settings: Settings | None = None) -> None:
    """Create the results bucket and save the result-storage block (once per process)."""
    settings = settings or get_settings()
    configure_prefect(settings)
    scope = f"{settings.prefect_api}|{settings.s3_address}|{settings.bucket_results}"
    with _ready_lock:
        if scope in _ready:
            return
        ObjectStore(settings).ensure_buckets(settings.bucket_results)
        results_block(settings).save(RESULTS_BLOCK_NAME, overwrite=True)
        _ready.add(scope)


def ready(settings: Settings | None = None) -> Settings:
    """What any run needs first: a reachable Prefect API and the result storage."""
    settings = settings or get_settings()
    require_prefect(settings)
    ensure_results_storage(settings)
    return settings


# --- work pools -------------------------------------------------------------------------------


def pool_name(pool: Pool, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if pool not in ("cpu", "gpu"):
        raise InvalidInput(f"unknown pool {pool!r}: use cpu or gpu")
    return settings.cpu_pool if pool == "cpu" else settings.gpu_pool


def ensure_work_pool(name: str) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            try:
                from prefect.workers.process import ProcessWorker

                template = ProcessWorker.get_default_base_job_template()
                client.create_work_pool(
                    WorkPoolCreate(name=name, type="process", base_job_template=template)
                )
            except ObjectAlreadyExists:
                pass


# --- GPU slots ----------------------------------------------------------------------------------


def gpu_limit_name(host: str | None = None) -> str:
    """One limit per machine: its slots are the machine's GPUs."""
    host = host or os.environ.get("REELFORGE_GPU_HOST") or socket.gethostname()
    slug = re.sub(r"[^a-z0-9-]+", "-", host.lower()).strip("-") or "host"
    return f"reelforge-gpu-{slug}"[:120]


def gpu_slot_count(settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    if settings.gpu_slots:
        return settings.gpu_slots
    try:
        import torch

        return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    except Exception:  # torch missing or CUDA broken: one generation at a time
        return 1


def ensure_gpu_limit(slots: int | None = None, *, name: str | None = None) -> str:
    """Create (or resize) this machine's generation limit; returns its name."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = name or gpu_limit_name()
    slots = slots or gpu_slot_count()
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots, active=True)
                )
            return name
        if limit.limit != slots or not limit.active:
            from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

            client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(limit=slots, active=True)
            )
    return name


_limits_ready: set[str] = set()


@contextmanager
def gpu_slot() -> Iterator[str]:
    """Hold one of this machine's generation slots (leased: a crash frees it after the lease)."""
    from prefect.concurrency.sync import concurrency

    settings = get_settings()
    name = gpu_limit_name()
    if name not in _limits_ready:
        # Created here too, so runs outside `reelforge worker` are limited as well; a
        # worker started with --slots has already sized it.
        from prefect import get_client
        from prefect.exceptions import ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                ensure_gpu_limit(gpu_slot_count(settings), name=name)
        _limits_ready.add(name)
    with concurrency(
        name,
        occupy=1,
        lease_duration=settings.gpu_lease_seconds,
        strict=True,
        raise_on_lease_renewal_failure=False,
    ):
        yield name


def ensure_prefect_objects(settings: Settings | None = None) -> None:
    """What `reelforge up` prepares in Prefect: result storage and both work pools."""
    settings = ready(settings)
    for name in (settings.cpu_pool, settings.gpu_pool):
        ensure_work_pool(name)


_run_settings: dict[tuple[int, bool], tuple[object, object]] = {}


@contextmanager
def in_process(*, fresh: bool = False) -> Iterator[None]:
    """Settings for a flow run made in this process (CLI, tests), not by a worker.

    No flow-run heartbeats: the caller is watching the run (a worker's runs keep them), and
    Prefect's heartbeat thread sleeps in 1 s steps, so stopping it at the end of every flow
    run costs up to a second (most of the orchestration overhead of a small video).
    ``fresh``: a brand-new run of a flow whose cache keys are scoped to its run id (the
    video flow) cannot find a cached result, so tasks skip the lookup (one S3 read each) and
    only write theirs. The derived settings are built once per process (a quarter second).
    """
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, PREFECT_TASKS_REFRESH_CACHE

    context = get_settings_context()
    key = (id(context.settings), fresh)
    cached = _run_settings.get(key)
    if cached is None or cached[0] is not context.settings:
        updates: dict = {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        if fresh:
            updates[PREFECT_TASKS_REFRESH_CACHE] = True
        cached = _run_settings[key] = (
            context.settings,
            context.settings.copy_with_update(updates=updates),
        )
    with SettingsContext(profile=context.profile, settings=cached[1]):  # type: ignore[arg-type]
        yield


def run_tagged(flow: Any, parameters: dict[str, Any], tags: list[str]) -> Any:
    """Run ``flow`` in this process as a new flow run carrying ``tags``; its final state.

    The tags go on the flow run only, not on its task runs (as ``with tags(...)`` would put
    them): a tagged task run asks the server for its tags' concurrency slots, one request per
    task run, and no ReelForge limit is a tag's. Runs with subflows keep ``with tags(...)``:
    a subflow takes its tags from there."""
    from prefect.context import SyncClientContext
    from prefect.flow_engine import run_flow
    from prefect.states import Pending

    with SyncClientContext.get_or_create() as context:  # the run reuses this client
        flow_run = context.client.create_flow_run(
            flow, parameters=flow.serialize_parameters(parameters), state=Pending(), tags=tags
        )
        return run_flow(flow, flow_run=flow_run, parameters=parameters, return_type="state")


def queue_wait_seconds(flow_run: Any) -> float | None:
    """How long a flow run waited to start: from when it was due (``expected_start_time``)
    to its first start (a run being started now: its ``Running`` state)."""
    started = flow_run.start_time
    if started is None and flow_run.state is not None and flow_run.state.is_running():
        started = flow_run.state.timestamp
    if started is None or flow_run.expected_start_time is None:
        return None
    return round(max(0.0, (started - flow_run.expected_start_time).total_seconds()), 3)


# --- which process runs a flow run --------------------------------------------------------------

_PROCESS_TAG = "reelforge-process"


def _process_tag() -> str:
    import psutil

    created = psutil.Process().create_time()
    return f"{_PROCESS_TAG}:{socket.gethostname()}:{os.getpid()}:{created:.3f}"


def claim_process(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_running`` hook: record which process runs an in-process flow run."""
    if flow_run.deployment_id is not None:
        return  # a worker's run: the worker records its process and reports its crash
    from prefect import get_client

    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, infrastructure_pid=_process_tag())


def process_gone(process: str | None) -> bool:
    """Whether a run's recorded process is known to be dead: it ran on this machine and
    that process (same pid and start time, so not a stranger that reused the pid) is gone.
    Anything else (a worker's run, another machine) is not ours to judge."""
    import psutil

    parts = (process or "").split(":")
    if len(parts) != 4 or parts[0] != _PROCESS_TAG or parts[1] != socket.gethostname():
        return False
    try:
        return abs(psutil.Process(int(parts[2])).create_time() - float(parts[3])) > 0.01
    except psutil.NoSuchProcess:
        return True
    except (ValueError, psutil.Error):
        return False


def video_deployment(settings: Settings | None = None) -> str:
    """The video flow's deployment: one per gpu pool, named after it."""
    return f"video/{(settings or get_settings()).gpu_pool}"
