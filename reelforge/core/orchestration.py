"""Prefect objects the pipeline relies on (result storage, work pools) and the GPU slots.

* Results: every stage persists its result to S3 through a prefect-aws ``S3Bucket`` block
  (``s3-bucket/reelforge-results``) that points at our S3 endpoint, so a retried run on any
  machine finds what the failed attempt finished.
* Work pools (type ``process``): ``cpu`` runs campaign orchestration, ``gpu`` runs video and
  personalised flows. ``reelforge worker --pool cpu|gpu`` joins a machine to one.
* GPU slots: as many per machine as it has GPUs, each a file lock (``gpu_slot``); generation
  holds one, and a crashed worker's slot comes back the moment its process is gone.

Everything here is idempotent: ``ensure_*`` creates what is missing and leaves the rest.
"""

from __future__ import annotations

import fcntl
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Literal

import certifi
import httpx
from pydantic import SecretStr

from reelforge.core.errors import InvalidInput, ServiceUnavailable
from reelforge.core.settings import PREFECT_AUTH_SECRET, Settings, get_settings
from reelforge.core.storage import ObjectStore

RESULTS_BLOCK_NAME = "reelforge-results"
RESULTS_BLOCK = f"s3-bucket/{RESULTS_BLOCK_NAME}"
RESULTS_FOLDER = "prefect"
Pool = Literal["cpu", "gpu"]

_saved_results: dict[str, Any] = {}  # scope -> the saved result-storage block
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


def _results_scope(settings: Settings) -> str:
    return f"{settings.prefect_api}|{settings.s3_address}|{settings.bucket_results}"


def ensure_results_storage(settings: Settings | None = None) -> None:
    """Create the results bucket and save the result-storage block (once per process)."""
    settings = settings or get_settings()
    configure_prefect(settings)
    scope = _results_scope(settings)
    with _ready_lock:
        if scope in _saved_results:
            return
        ObjectStore(settings).ensure_buckets(settings.bucket_results)
        block = results_block(settings)
        block.save(RESULTS_BLOCK_NAME, overwrite=True)
        _saved_results[scope] = block


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


def gpu_slot_count(settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    if settings.gpu_slots:
        return settings.gpu_slots
    try:
        import torch

        return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    except Exception:  # torch missing or CUDA broken: one generation at a time
        return 1


@contextmanager
def gpu_slot(poll_seconds: float = 0.05) -> Iterator[int]:
    """Hold one of this machine's generation slots (its index) until the block ends.

    A slot is an exclusive ``flock`` on one of ``gpu_slot_count()`` files in
    ``settings.gpu_slot_path``. The kernel drops a lock when its holder exits, crashed or
    not, so no slot leaks or waits for a lease to expire, and taking one asks no server
    (a Prefect concurrency lease cost 80 ms of a small video's orchestration).
    """
    settings = get_settings()
    folder = settings.gpu_slot_path
    folder.mkdir(parents=True, exist_ok=True)
    slots = gpu_slot_count(settings)
    while True:
        for index in range(slots):
            with open(folder / f"slot-{index}.lock", "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # held by another generation
                try:
                    yield index
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
                return
        time.sleep(poll_seconds)


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


@lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, insecure: bool) -> ssl.SSLContext:
    """The TLS context a Prefect client would build for itself: building one reads the CA
    bundle (35 ms, a fifth of a small video's orchestration), so it is built once."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cert_file or certifi.where())


# (id(flow), id(block)) -> (flow, its copy); the flow is kept so that its id is not reused
_flows_with_storage: dict[tuple[int, int], tuple[Any, Any]] = {}


def _with_saved_storage(flow: Any) -> Any:
    """``flow`` writing its results to this process's saved result-storage block: given its
    slug, Prefect reads the block from the API at every flow run."""
    block = _saved_results.get(_results_scope(get_settings()))
    if block is None or flow.result_storage != RESULTS_BLOCK:
        return flow
    key = (id(flow), id(block))
    if key not in _flows_with_storage:
        _flows_with_storage[key] = (flow, flow.with_options(result_storage=block))
    return _flows_with_storage[key][1]


def run_tagged(flow: Any, parameters: dict[str, Any], tags: list[str]) -> Any:
    """Run ``flow`` in this process as a new flow run carrying ``tags``; its final state.

    The tags go on the flow run only, not on its task runs (as ``with tags(...)`` would put
    them): a tagged task run asks the server for its tags' concurrency slots, one request per
    task run, and no ReelForge limit is a tag's. Runs with subflows keep ``with tags(...)``:
    a subflow takes its tags from there. The run also carries this process's tag, so that
    ``claim_process`` need not record it with a request of its own."""
    from prefect.context import SyncClientContext
    from prefect.flow_engine import run_flow
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY
    from prefect.states import Pending

    flow = _with_saved_storage(flow)
    context = SyncClientContext.get()
    if context is None:
        tls = _tls_context(
            PREFECT_API_SSL_CERT_FILE.value(), PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value()
        )
        context = SyncClientContext(httpx_settings={"verify": tls})
        # Prefect lends a context's client only to callers asking with the same httpx
        # settings, and its own callers ask with none: ours differ only in the prebuilt TLS
        # context, so the client is registered as the default one (else every such caller
        # builds a client, and a TLS context, of its own).
        context._httpx_settings = None
    with context:  # the run reuses this client
        flow_run = context.client.create_flow_run(
            flow,
            parameters=flow.serialize_parameters(parameters),
            state=Pending(),
            tags=[*tags, process_tag()],
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


def process_tag() -> str:
    """This process, as ``process_gone`` reads it: host, pid and start time."""
    import psutil

    created = psutil.Process().create_time()
    return f"{_PROCESS_TAG}:{socket.gethostname()}:{os.getpid()}:{created:.3f}"


def run_process(flow_run: Any) -> str | None:
    """Who runs ``flow_run``: the process ``claim_process`` recorded, else the one its tags
    name (``run_tagged``'s runs, until a retry elsewhere claims them)."""
    tags = (t for t in flow_run.tags or () if t.startswith(f"{_PROCESS_TAG}:"))
    return flow_run.infrastructure_pid or next(tags, None)


def claim_process(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_running`` hook: record which process runs an in-process flow run."""
    if flow_run.deployment_id is not None:
        return  # a worker's run: the worker records its process and reports its crash
    if run_process(flow_run) == process_tag():
        return  # created here by ``run_tagged``: its tags say so already
    from prefect import get_client

    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, infrastructure_pid=process_tag())


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
