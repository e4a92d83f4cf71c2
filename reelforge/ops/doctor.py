"""`reelforge doctor`: each check says what is wrong and what to do about it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

from reelforge.core.checkpoints import check_checkpoint, configured_checkpoint
from reelforge.core.orchestration import prefect_answers
from reelforge.core.settings import Settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def _run(name: str, fix: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except Exception as exc:
        return Check(name, False, " ".join(str(exc).split())[:300] or type(exc).__name__, fix)


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
    if not prefect_answers(settings.prefect_api):
        raise RuntimeError(f"no healthy Prefect API at {settings.prefect_api}")
    return f"healthy at {settings.prefect_api}"


def _generator(settings: Settings) -> str:
    path = check_checkpoint(settings.generator, configured_checkpoint(settings))
    return f"{'wan checkpoint' if settings.generator == 'wan' else 'tiny model'} at {path}"


def run_checks(settings: Settings) -> list[Check]:
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
            "generator",
            "set REELFORGE_GENERATOR=tiny, or point REELFORGE_WAN_CHECKPOINT_DIR at a "
            "diffusers-format Wan2.2 checkpoint",
            lambda: _generator(settings),
        ),
    ]
