"""`reelforge doctor`: each check says what is wrong and what to do about it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import OperationalError

from db.session import password_refused
from reelforge.core.checkpoints import check_checkpoint, configured_checkpoint
from reelforge.core.errors import InvalidInput
from reelforge.core.orchestration import require_prefect
from reelforge.core.settings import Settings
from reelforge.ops.signing import describe_signing
from reelforge.ops.stack import postgres_openings, prefect_openings, s3_openings

LOCK_FIX = "run `reelforge up` (it locks an embedded stack in place); an external service: "


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    refused_secret: InvalidInput | None = None  # a secret the service refused (exit 2)

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


def _run(name: str, fix: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except Exception as exc:
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        refused = exc if isinstance(exc, InvalidInput) else None
        return Check(name, False, detail, fix, refused)


def _home(settings: Settings) -> str:
    home = settings.home_dir
    home.mkdir(parents=True, exist_ok=True)
    if not os.access(home, os.W_OK):
        raise PermissionError(f"{home} is not writable")
    return str(home)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    return f"{exe} ({imageio_ffmpeg.get_ffmpeg_version()})"


def _database(settings: Settings) -> str:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    from db.migrate import alembic_config

    engine = create_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(
                conn, opts={"version_table": "reelforge_alembic_version"}
            ).get_current_revision()
    except OperationalError as exc:
        refused = password_refused(settings, exc)
        if refused is not None:
            raise refused from exc
        raise
    finally:
        engine.dispose()
    head = ScriptDirectory.from_config(alembic_config(settings.sqlalchemy_url)).get_current_head()
    if current != head:
        raise RuntimeError(f"schema at {current}, code expects {head}")
    return f"schema at {head}"


def _s3(settings: Settings) -> str:
    from reelforge.core.storage import probe

    probe(settings)
    return f"put/get ok at {settings.s3_address}"


def _prefect(settings: Settings) -> str:
    require_prefect(settings)  # unreachable, or the auth string refused (InvalidInput)
    return f"healthy at {settings.prefect_api}"


def _closed(openings: list[str], closed: str) -> str:
    if openings:
        raise RuntimeError(f"open: {'; '.join(openings)}")
    return f"closed: {closed}"


def _generator(settings: Settings) -> str:
    path = check_checkpoint(settings.generator, configured_checkpoint(settings))
    return f"{'wan checkpoint' if settings.generator == 'wan' else 'tiny model'} at {path}"


def run_checks(settings: Settings) -> list[Check]:
    """Every check; raises InvalidInput (exit 2) naming the secret to fix when a service
    refused the configured password or auth string, with every check in ``extra``."""
    checks = _checks(settings)
    refused = [c.refused_secret for c in checks if c.refused_secret is not None]
    if refused:
        raise InvalidInput(
            "; ".join(str(exc) for exc in refused), extra={"checks": [c.as_json() for c in checks]}
        )
    return checks


def _checks(settings: Settings) -> list[Check]:
    return [
        _run("home", "set REELFORGE_HOME to a writable folder", lambda: _home(settings)),
        _run("ffmpeg", "reinstall: pip install imageio-ffmpeg", _ffmpeg),
        _run(
            "postgres",
            "run `reelforge up` (embedded) or check REELFORGE_DATABASE_URL; "
            "schema behind: `alembic upgrade head`",
            lambda: _database(settings),
        ),
        _run(
            "s3",
            "run `reelforge up` (embedded) or check REELFORGE_S3_ENDPOINT and its keys",
            lambda: _s3(settings),
        ),
        _run(
            "prefect",
            "run `reelforge up` (local server) or check PREFECT_API_URL",
            lambda: _prefect(settings),
        ),
        _run(
            "postgres access",
            LOCK_FIX + "require passwords (scram-sha-256) in its pg_hba.conf",
            lambda: _closed(
                postgres_openings(settings),
                "no connection without the password (scram-sha-256, no trust)",
            ),
        ),
        _run(
            "s3 access",
            LOCK_FIX + "turn off anonymous access",
            lambda: _closed(
                s3_openings(settings),
                "the S3 gateway wants an identity"
                + (
                    "; master, volume and filer (HTTP and gRPC) want the stack's certificate"
                    if settings.uses_embedded_s3
                    else ""
                ),
            ),
        ),
        _run(
            "prefect access",
            LOCK_FIX + "set PREFECT_SERVER_API_AUTH_STRING on the server",
            lambda: _closed(prefect_openings(settings), "the API wants its auth string"),
        ),
        _run(
            "generator",
            "set REELFORGE_GENERATOR=tiny, or point REELFORGE_WAN_CHECKPOINT_DIR at a "
            "diffusers-format Wan2.2 checkpoint",
            lambda: _generator(settings),
        ),
        _run(
            "signing",
            "fix what the error names, or run `reelforge up` to make the local signing CA",
            lambda: describe_signing(settings),
        ),
    ]
