"""The embedded stack answers nobody without credentials: another local user (and root
without the secrets) gets no object through any SeaweedFS port, no PostgreSQL connection
and no Prefect API call; `up` locks a stack made before passwords in place."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from scripts.free_ports import free_block

REELFORGE = str(Path(sys.executable).parent / "reelforge")
STRANGER = "rf-stranger"

# What a stranger tries, with no password, key, certificate or auth string.
PROBES = r"""
import json, socket, ssl, sys
import httpx, psycopg

args = json.loads(sys.argv[1])
out = {}


def attempt(name, probe):
    try:
        out[name] = probe()
    except Exception as exc:
        out[name] = f"refused: {type(exc).__name__}"


def postgres(host):
    with psycopg.connect(host=host, port=args["pg_port"], user="postgres", dbname="postgres",
                         password="", passfile="/nonexistent/pgpass", connect_timeout=3):
        return "connected"


def http(method, url, **kw):
    response = httpx.request(method, url, timeout=5, verify=False, **kw)
    return f"{response.status_code} {response.text[:200]}"


def grpc(port, tls):
    raw = socket.create_connection(("127.0.0.1", port), timeout=3)
    conn = raw
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        conn = context.wrap_socket(raw, server_hostname="127.0.0.1")
    conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    reply = conn.recv(64)
    return "answered (HTTP/2 settings)" if len(reply) > 3 and reply[3] == 4 else "refused: no h2"


attempt("postgres 127.0.0.1", lambda: postgres("127.0.0.1"))
attempt("postgres unix socket", lambda: postgres(args["pg_socket"]))
for path in args["secrets"]:
    attempt(f"read {path}", lambda path=path: open(path).read() and "read")
s3, key, bucket = args["s3_port"], args["key"], args["bucket"]
attempt("s3 get", lambda: http("GET", f"http://127.0.0.1:{s3}/{bucket}/{key}"))
attempt("s3 list", lambda: http("GET", f"http://127.0.0.1:{s3}/{bucket}/"))
attempt("s3 put", lambda: http("PUT", f"http://127.0.0.1:{s3}/{bucket}/x.txt", content=b"x"))
for scheme in ("http", "https"):
    filer = f"{scheme}://127.0.0.1:{s3 + 3}/buckets/{bucket}"
    attempt(f"filer get {scheme}", lambda filer=filer: http("GET", f"{filer}/{key}"))
    attempt(f"filer list {scheme}", lambda filer=filer: http("GET", f"{filer}/"))
    attempt(f"filer put {scheme}", lambda filer=filer: http("PUT", f"{filer}/x.txt", content=b"x"))
    attempt(f"filer delete {scheme}", lambda filer=filer: http("DELETE", f"{filer}/{key}"))
    master = f"{scheme}://127.0.0.1:{s3 + 1}"
    attempt(f"master assign {scheme}", lambda master=master: http("GET", f"{master}/dir/assign"))
    attempt(f"master delete collection {scheme}",
            lambda master=master: http("GET", f"{master}/col/delete?collection={bucket}"))
    volume = f"{scheme}://127.0.0.1:{s3 + 2}"
    attempt(f"volume status {scheme}", lambda volume=volume: http("GET", f"{volume}/status"))
    attempt(f"volume write {scheme}",
            lambda volume=volume: http("POST", f"{volume}/1,01637037d6", files={"f": b"x"}))
for port in range(s3 + 5, s3 + 10):
    for tls in (False, True):
        attempt(f"grpc {port} tls={tls}", lambda port=port, tls=tls: grpc(port, tls))
for sock in args["sockets"]:  # SeaweedFS's plain-HTTP sockets
    with httpx.Client(transport=httpx.HTTPTransport(uds=sock), timeout=5) as local:
        attempt(f"unix socket {sock}", lambda local=local: (
            lambda r: f"{r.status_code} {r.text[:200]}")(
            local.get(f"http://localhost/buckets/{bucket}/{key}")))
api = args["prefect_api"]
attempt("prefect version", lambda: http("GET", f"{api}/admin/version"))
attempt("prefect flow runs", lambda: http("POST", f"{api}/flow_runs/filter", json={"limit": 5}))
print(json.dumps(out))
"""


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [REELFORGE, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def locked_env():
    """A stack of its own under a folder any user may enter, so that only the stack's own
    permissions and credentials keep a stranger out."""
    home = Path(tempfile.mkdtemp(prefix="rf-lock-", dir="/tmp"))
    home.chmod(0o755)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REELFORGE_", "PREFECT_")) and k != "DO_NOT_TRACK"
    }
    taken = {int(os.environ[k]) for k in ("REELFORGE_PG_PORT", "REELFORGE_PREFECT_PORT")}
    taken |= set(
        range(int(os.environ["REELFORGE_S3_PORT"]), int(os.environ["REELFORGE_S3_PORT"]) + 10)
    )
    env.update(
        REELFORGE_HOME=str(home / "home"),
        REELFORGE_PG_PORT=str(free_block(45432, 1, taken)),
        REELFORGE_S3_PORT=str(free_block(48333, 10, taken)),
        REELFORGE_PREFECT_PORT=str(free_block(44200, 1, taken)),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
    )
    started = _cli(env, "up", "--json")
    assert started.returncode == 0, started.stdout + started.stderr
    yield env
    _cli(env, "down")
    shutil.rmtree(home, ignore_errors=True)


def _settings(env: dict[str, str]):
    from reelforge.core.settings import Settings

    return Settings(
        home=Path(env["REELFORGE_HOME"]),
        pg_port=int(env["REELFORGE_PG_PORT"]),
        s3_port=int(env["REELFORGE_S3_PORT"]),
        prefect_port=int(env["REELFORGE_PREFECT_PORT"]),
    )


def _probe(settings, key: str, *, as_user: str | None) -> dict[str, str]:
    home = settings.home_dir
    args = {
        "pg_port": settings.pg_port,
        "pg_socket": str(home / "postgres" / "run"),
        "s3_port": settings.s3_port,
        "bucket": settings.bucket_private,
        "key": key,
        "secrets": [str(p) for p in settings.secrets_dir.rglob("*") if p.is_file()],
        "sockets": [str(home / "run" / "filer.sock"), str(home / "run" / "s3.sock")],
        "prefect_api": f"http://127.0.0.1:{settings.prefect_port}/api",
    }
    if as_user is None:
        command = [sys.executable, "-c", PROBES, json.dumps(args)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])
    return _probe_as(as_user, args)


def _probe_as(user: str, args: dict) -> dict[str, str]:
    """The probes in a forked child that has become ``user``: it cannot exec this interpreter
    when it lives in a private folder (a pyenv under /root), so it keeps the parent's, with
    the probes' modules imported before it drops root."""
    import io
    import pwd

    import httpx  # noqa: F401 - loaded while still root, for the child
    import psycopg  # noqa: F401

    entry = pwd.getpwnam(user)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop root for good, run the probes, report, exit
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            out = io.StringIO()
            sys.stdout, sys.argv = out, ["probes", json.dumps(args)]
            exec(compile(PROBES, "probes", "exec"), {"__name__": "probes"})
            results = json.loads(out.getvalue().splitlines()[-1])
            os.write(write_end, json.dumps({"uid": os.getuid(), "results": results}).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 300  # a child stuck on a lock inherited at fork fails, not hangs
    while True:
        ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the stranger's probes did not finish within 300 s")
        chunk = os.read(read_end, 65536)
        if not chunk:  # the child closed its end: it has exited
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    report = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, "the stranger's probes failed to run"
    report_json = json.loads(report)
    assert report_json["uid"] == entry.pw_uid  # they ran as the stranger, not as root
    return report_json["results"]


def _assert_refused(results: dict[str, str], secret: str) -> None:
    assert len(results) > 30
    for name, result in results.items():
        assert secret not in result, f"{name} leaked the object: {result}"
        assert result.startswith(("refused", "4")), f"{name} answered: {result}"
    assert results["prefect flow runs"].startswith("401")
    assert results["s3 get"].startswith("403")


def _stranger() -> str:
    if subprocess.run(["id", STRANGER], capture_output=True, check=False).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", STRANGER], check=True, timeout=30
        )
    return STRANGER


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second local user")
def test_a_second_local_user_and_root_without_secrets_get_nothing(locked_env):
    from reelforge.core.storage import ObjectStore

    settings = _settings(locked_env)
    secret = f"private overlay text {uuid.uuid4().hex}"
    source = Path(tempfile.mkdtemp()) / "overlay.txt"
    source.write_text(secret)
    stored = ObjectStore(settings).put_file(
        source, tenant="t-lock", kind="prompt", asset_id=uuid.uuid4()
    )
    key = stored.uri.split("/", 3)[3]

    stranger = _probe(settings, key, as_user=_stranger())
    _assert_refused(stranger, secret)
    for path in settings.secrets_dir.rglob("*"):
        if path.is_file():
            assert stranger[f"read {path}"].startswith("refused: PermissionError")
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.secrets_dir.stat().st_mode) == 0o700

    root = _probe(settings, key, as_user=None)
    _assert_refused({k: v for k, v in root.items() if not k.startswith("read ")}, secret)
    # the owner, with the credentials, still reads it through the S3 gateway
    assert ObjectStore(settings).client.get_object(settings.bucket_private, key).read() == (
        secret.encode()
    )


def test_doctor_says_each_service_is_closed(locked_env):
    done = _cli(locked_env, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(done.stdout.splitlines()[-1])["checks"]}
    for name in ("postgres access", "s3 access", "prefect access"):
        assert checks[name]["ok"], checks[name]
        assert checks[name]["detail"].startswith("closed: ")


def test_up_locks_a_stack_made_before_passwords(locked_env):
    """A stack from before this change: pg_hba trusts everything and no password exists.
    `up` gives it one, rewrites pg_hba without trust, and keeps the data."""
    settings = _settings(locked_env)
    assert _cli(locked_env, "down").returncode == 0
    hba = settings.home_dir / "postgres" / "data" / "pg_hba.conf"
    hba.write_text(
        "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        "host replication all 127.0.0.1/32 trust\n"
    )
    (settings.secrets_dir / "postgres-password").unlink()

    again = _cli(locked_env, "up", "--json")
    log = settings.home_dir / "logs" / "prefect.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert again.returncode == 0, again.stdout + again.stderr + tail
    rules = [line.split() for line in hba.read_text().splitlines() if not line.startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules if rule), rules
    assert not any("replication" in rule for rule in rules)
    password = settings.secrets_dir / "postgres-password"
    assert stat.S_IMODE(password.stat().st_mode) == 0o600
    doctor = _cli(locked_env, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(doctor.stdout.splitlines()[-1])["checks"]}
    assert checks["postgres access"]["ok"] and checks["postgres"]["ok"], checks
    assert checks["postgres"]["detail"].startswith("schema at")  # the data survived
