"""Helpers of the reliability tests: the CLI in a subprocess (a process that can be killed),
and the invariants every recovered video must meet, checked on any stack's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HAS_MODEL = (REPO / "models" / "tiny" / "model_index.json").is_file()
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="the tiny model (models/tiny) is not trained yet")  # fmt: skip
PROMPT = "a red circle moves from left to right"


@dataclass
class Done:
    code: int
    payload: dict
    stderr: str


def cli_env(settings=None, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this session's, or another stack's settings."""
    env = os.environ.copy()
    env.setdefault("OMP_NUM_THREADS", "1")
    if settings is not None:
        env.update(
            REELFORGE_HOME=str(settings.home_dir),
            REELFORGE_PG_PORT=str(settings.pg_port),
            REELFORGE_S3_PORT=str(settings.s3_port),
            REELFORGE_PREFECT_PORT=str(settings.prefect_port),
        )
        env.pop("PREFECT_API_URL", None)  # the stack's own server, from its port
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 1500) -> Done:
    """Run `reelforge ARGS --json`; its exit code and its one JSON object."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "reelforge"), *args, "--json"],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        cwd=REPO,
        timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    payload = json.loads(lines[-1]) if lines else {}
    return Done(done.returncode, payload, done.stderr)


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen:
    """Start `reelforge ARGS --json` without waiting (a run to disturb while it works)."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "reelforge"), *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def finish(proc: subprocess.Popen, timeout: float = 1500) -> Done:
    out, err = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return Done(proc.returncode, json.loads(lines[-1]) if lines else {}, err)


def failpoints(spec: str) -> str:
    """A failpoint value with counters of its own (a unique trailing item)."""
    return f"{spec},scope-{uuid.uuid4().hex[:8]}:0"


def wait_paused(stage: str, value: str, home: Path, proc: subprocess.Popen) -> Path:
    """Wait until a run in another process stops at a ``pause`` failpoint; its marker."""
    import hashlib

    marker = home / "failpoints" / hashlib.sha256(value.encode()).hexdigest()[:16]
    marker = marker / f"{stage}.paused"
    deadline = time.monotonic() + 900  # a loaded 2-core machine can take minutes to get there
    while not marker.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before pausing at {stage}: {out[-2000:]} {err[-2000:]}")
        assert time.monotonic() < deadline, f"never paused at {stage}"
        time.sleep(0.2)
    return marker


def tenant_slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Lineage:
    """Read lineage and objects of one stack (any settings, not just this process's)."""

    def __init__(self, settings) -> None:
        from sqlalchemy import create_engine

        from reelforge.core.storage import ObjectStore

        self.settings = settings
        self.engine = create_engine(settings.sqlalchemy_url, pool_pre_ping=True)
        self.store = ObjectStore(settings)

    def rows(self, sql: str, **params):
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def run_ids(self, tenant: str) -> list[str]:
        rows = self.rows(
            "SELECT DISTINCT a.flow_run_id FROM activities a JOIN tenants t ON t.id = a.tenant_id "
            "WHERE t.slug = :slug AND a.flow_run_id IS NOT NULL",
            slug=tenant,
        )
        return [str(r.flow_run_id) for r in rows]

    def assets(self, tenant: str):
        return self.rows(
            "SELECT a.id, a.kind, a.uri, a.sha256, a.published_uri FROM assets a "
            "JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = :slug",
            slug=tenant,
        )

    def objects(self, tenant: str) -> tuple[set[str], set[str]]:
        """The tenant's object URIs in the private and the published bucket."""
        store = self.store
        return (
            {f"s3://{store.private}/{k}" for k in store.list_keys(store.private, f"{tenant}/")},
            {f"s3://{store.published}/{k}" for k in store.list_keys(store.published, f"{tenant}/")},
        )

    def orphans(self, tenant: str) -> list[str]:
        """The tenant's objects that no lineage row points at (no grace period)."""
        known = {a.uri for a in self.assets(tenant)}
        known |= {a.published_uri for a in self.assets(tenant) if a.published_uri}
        private, public = self.objects(tenant)
        return sorted((private | public) - known)

    def assert_published_once(self, tenant: str, *, videos: int = 1, clips: int = 1) -> None:
        """The promise after any crash and recovery: the video(s) published once, safely,
        with every object recorded and every record's object present."""
        assets = self.assets(tenant)
        kinds = Counter(a.kind for a in assets)
        published = [a for a in assets if a.published_uri]
        renditions = [a for a in published if a.kind == "rendition"]
        assert len(renditions) == videos, (renditions, kinds)
        assert kinds["rendition"] == videos, f"an extra, unpublished rendition: {kinds}"
        assert kinds["thumbnail"] == videos and kinds["preview"] == videos, kinds
        assert kinds["raw_clip"] == clips, f"a clip generated twice: {kinds}"
        for video in renditions:
            verdicts = self.rows(
                "SELECT passed FROM safety_verdicts WHERE asset_id = :id AND gate = 'visual'",
                id=video.id,
            )
            assert verdicts and all(v.passed for v in verdicts), verdicts
        private, public = self.objects(tenant)
        assert public == {a.published_uri for a in published}, "published objects != records"
        assert len(public) == 2 * videos  # each video and its thumbnail, once
        recorded = {a.uri for a in assets if a.uri.startswith(f"s3://{self.store.private}/")}
        assert private == recorded, (
            f"orphans {sorted(private - recorded)}, dangling {sorted(recorded - private)}"
        )
        assert self.orphans(tenant) == []


def write_campaign(path: Path, tenant: str, prompts: list[str], renditions: list[str]) -> str:
    """A small campaign spec for ``tenant`` (fast, one product at a time); its name."""
    name = f"rel-{uuid.uuid4().hex[:8]}"
    products = "".join(
        f"  - {{sku: P-{i}, name: Product {i}, prompt: {p}}}\n" for i, p in enumerate(prompts, 1)
    )
    path.write_text(
        f"name: {name}\ntenant: {tenant}\nproducts:\n{products}"
        f"renditions: {json.dumps(renditions)}\ngeneration: {{speed: fast, seed: 3}}\n"
        "concurrency: 1\n"
    )
    return name


def prefect_basic_auth(settings) -> tuple[str, str] | None:
    """The Prefect API's basic auth (the locked-down stack refuses requests without it)."""
    auth = settings.prefect_auth
    return tuple(auth.split(":", 1)) if auth else None


def campaign_run_id(settings, name: str) -> str:
    """The id of the (one) run of campaign ``name`` on the stack of ``settings``."""
    import httpx

    response = httpx.post(
        f"{settings.prefect_api}/flow_runs/filter",
        json={"flows": {"name": {"any_": ["campaign"]}}, "limit": 200},
        auth=prefect_basic_auth(settings),
        timeout=10,
    )
    response.raise_for_status()
    (run,) = [r for r in response.json() if r["parameters"]["spec"]["name"] == name]
    return run["id"]


@contextmanager
def running_probes(tenant: str, count: int) -> Iterator[list]:
    """``count`` runs of a deployment that no worker serves, set ``Running`` and tagged for
    ``tenant``: a worker's runs as Prefect sees them, whose heartbeats a test sends or
    withholds (``heartbeat``). Deleted afterwards."""
    from prefect import get_client
    from prefect.states import Running

    from reelforge.ops.runs import tenant_tag

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("stall-probe")
        deployment_id = client.create_deployment(flow_id, f"probe-{uuid.uuid4().hex[:8]}")
        runs = [
            client.create_flow_run_from_deployment(deployment_id, tags=[tenant_tag(tenant)])
            for _ in range(count)
        ]
        for run in runs:
            client.set_flow_run_state(run.id, Running(), force=True)
    try:
        yield runs
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)
            for run in runs:
                client.delete_flow_run(run.id)


def heartbeat(run_id: uuid.UUID) -> None:
    """The event a worker's flow process sends every PREFECT_FLOWS_HEARTBEAT_FREQUENCY s."""
    from prefect.events import emit_event

    emit_event(
        "prefect.flow-run.heartbeat", resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"}
    )


def wait_stalled(tenant: str, expected: list[uuid.UUID], timeout_s: float = 30) -> None:
    """Wait (a minute at most) until exactly ``expected`` of the tenant's runs are stalled."""
    from reelforge.ops.runs import stalled_runs

    deadline = time.monotonic() + 60 + timeout_s
    while sorted(r.id for r in stalled_runs(timeout_s, tenant=tenant)) != sorted(expected):
        assert time.monotonic() < deadline, stalled_runs(timeout_s, tenant=tenant)
        time.sleep(1)
