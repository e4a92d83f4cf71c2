"""Outages: S3, PostgreSQL and the Prefect server stop in the middle of runs, and the
scratch disk fills up.

The services are stopped for real, on a stack of this module's own (its own home and
ports, started and stopped here), so the session's shared stack never goes down under the
other tests. A ``pause`` failpoint holds the run at an exact point while a service stops.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.free_ports import free_block
from tests.reliability.conftest import (
    PROMPT,
    Lineage,
    campaign_run_id,
    cli,
    cli_env,
    failpoints,
    finish,
    needs_model,
    prefect_basic_auth,
    spawn,
    tenant_slug,
    wait_paused,
    write_campaign,
)

JOB = ("--aspect", "1:1", "--seed", "5", "--fast")


@dataclass
class OwnStack:
    settings: object
    env: dict[str, str]
    lineage: Lineage

    def stop(self, service: str) -> None:
        from reelforge.ops.stack import stop_service

        assert stop_service(self.settings, service), f"{service} was not running"

    def start(self, service: str) -> None:
        from reelforge.ops.stack import start_service

        start_service(self.settings, service)

    def run_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    def task_runs(self, run_id: str, name: str) -> list[dict]:
        response = httpx.post(
            f"{self.settings.prefect_api}/task_runs/filter",
            json={"flow_runs": {"id": {"any_": [run_id]}}, "limit": 200},
            auth=prefect_basic_auth(self.settings),
            timeout=10,
        )
        response.raise_for_status()
        return [t for t in response.json() if t["name"].rsplit("-", 1)[0] == name]


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> Iterator[OwnStack]:
    from reelforge.core.settings import Settings

    home = tmp_path_factory.mktemp("outage-stack")
    ports = {
        "REELFORGE_PG_PORT": str(free_block(26432, 1)),
        "REELFORGE_S3_PORT": str(free_block(29333, 10)),
        "REELFORGE_PREFECT_PORT": str(free_block(26200, 1)),
    }
    env = cli_env(None, REELFORGE_HOME=str(home), **ports)
    for key in ("PREFECT_API_URL", "PREFECT_HOME", "REELFORGE_FAILPOINTS"):
        env.pop(key, None)
    with pytest.MonkeyPatch.context() as patch:
        for key in ("PREFECT_API_URL", "REELFORGE_PREFECT_API_URL"):
            patch.delenv(key, raising=False)
        for key, value in env.items():
            if key.startswith("REELFORGE_"):
                patch.setenv(key, value)
        settings = Settings()
    for _ in range(3):  # a first Prefect start migrates its database: slow on a busy machine
        up = cli("up", env=env, timeout=400)
        if up.code == 0:
            break
    assert up.code == 0, (up.payload, up.stderr[-3000:])
    try:
        yield OwnStack(settings, env, Lineage(settings))
    finally:
        cli("down", env=env, timeout=120)


def _error_line(done) -> str:
    error = done.payload.get("error", "")
    assert error and "\n" not in error and "Traceback" not in error, done
    return error


@dataclass
class Paused:
    tenant: str
    env: dict[str, str]
    proc: object
    marker: Path


def _video_paused_at(own: OwnStack, stage: str, name: str, retries: int, delay: float) -> Paused:
    """A video run of a fresh tenant, held by a ``pause`` failpoint just before ``stage``."""
    tenant = tenant_slug(name)
    value = failpoints(f"{stage}:1:pause")
    env = own.run_env(REELFORGE_FAILPOINTS=value, REELFORGE_STAGE_RETRIES=str(retries),
                      REELFORGE_STAGE_RETRY_DELAY_SECONDS=str(delay))  # fmt: skip
    proc = spawn("generate", PROMPT, "--tenant", tenant, *JOB, env=env)
    return Paused(tenant, env, proc, wait_paused(stage, value, own.settings.home_dir, proc))


@needs_model
@pytest.mark.slow
def test_s3_down_during_publish_is_retried_until_it_returns(own: OwnStack):
    run = _video_paused_at(own, "publish", "s3back", retries=8, delay=1)
    own.stop("s3")
    run.marker.unlink()  # publish goes on against a dead S3
    time.sleep(5)
    own.start("s3")
    done = finish(run.proc)
    assert done.code == 0, (done.payload, done.stderr[-3000:])
    (attempts,) = own.task_runs(done.payload["flow_run_id"], "publish")
    assert attempts["run_count"] > 1, "publish never failed: S3 was not down during it"
    own.lineage.assert_published_once(run.tenant)


@needs_model
@pytest.mark.slow
def test_s3_down_past_the_retry_budget_fails_clearly_and_retry_completes(own: OwnStack):
    run = _video_paused_at(own, "publish", "s3gone", retries=1, delay=0.5)
    own.stop("s3")
    try:
        run.marker.unlink()
        done = finish(run.proc, timeout=1500)
    finally:
        own.start("s3")
    assert done.code == 1, (done.payload, done.stderr[-3000:])
    error = _error_line(done)
    assert "S3" in error and "reelforge retry" in error, error
    run_id = done.payload["flow_run_id"]
    _, public = own.lineage.objects(run.tenant)
    assert public == set(), "published while S3 was failing"

    retried = cli("retry", run_id, env=run.env)
    assert retried.code == 0, (retried.payload, retried.stderr[-3000:])
    own.lineage.assert_published_once(run.tenant)


@needs_model
@pytest.mark.slow
def test_postgres_down_mid_run_fails_clearly_then_retry_completes_with_lineage(own: OwnStack):
    run = _video_paused_at(own, "postprocess", "pgdown", retries=1, delay=0.5)
    (run_id,) = own.lineage.run_ids(run.tenant)
    own.stop("postgres")  # Prefect's own database too: its API fails as well
    try:
        run.marker.unlink()
        done = finish(run.proc, timeout=1500)
    finally:
        own.start("postgres")
    assert done.code != 0, (done.payload, done.stderr[-3000:])
    error = _error_line(done)
    assert "PostgreSQL" in error and ("reelforge retry" in error or "reelforge up" in error)

    retried = cli("retry", run_id, env=run.env)
    assert retried.code == 0, (retried.payload, retried.stderr[-3000:])
    own.lineage.assert_published_once(run.tenant)
    stages = {
        r.stage
        for r in own.lineage.rows(
            "SELECT stage FROM activities WHERE flow_run_id = :run AND status = 'succeeded'",
            run=run_id,
        )
    }
    assert {"ingest", "enhance", "text_safety", "generate", "visual_safety", "postprocess",
            "publish"} <= stages, stages  # fmt: skip


def _tiny_scratch(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(path)])
    return done.returncode == 0


@needs_model
@pytest.mark.slow
def test_a_full_scratch_disk_fails_clearly_and_publishes_nothing(stack, tmp_path):
    scratch = tmp_path / "scratch"
    if not _tiny_scratch(scratch):
        pytest.skip("needs root to mount a 512 KiB tmpfs as the scratch disk")
    try:
        tenant = tenant_slug("diskfull")
        done = cli("generate", PROMPT, "--tenant", tenant, *JOB,
                   env=cli_env(TMPDIR=str(scratch)))  # fmt: skip
    finally:
        subprocess.run(["umount", "-l", str(scratch)])
    assert done.code == 1, (done.payload, done.stderr[-3000:])
    error = _error_line(done)
    assert "space" in error and "TMPDIR" in error, error
    lin = Lineage(stack)
    _, public = lin.objects(tenant)
    assert public == set() and not any(a.published_uri for a in lin.assets(tenant))
    assert lin.orphans(tenant) == []


@needs_model
@pytest.mark.slow
def test_prefect_restarts_during_a_campaign_and_the_campaign_completes(own: OwnStack, tmp_path):
    """The Prefect server goes away while a campaign works and comes back: the campaign
    resumes (its client retries the API), or it fails with one line and `reelforge retry`
    completes it. Either way: every video published once, no clip generated twice."""
    tenant = tenant_slug("pfrestart")
    spec = tmp_path / "campaign.yaml"
    name = write_campaign(spec, tenant, [PROMPT, "a blue square moves down"], ["1:1"])
    value = failpoints("postprocess:1:pause")  # the first product, its clip made
    env = own.run_env(REELFORGE_FAILPOINTS=value, REELFORGE_STAGE_RETRIES="8",
                      REELFORGE_STAGE_RETRY_DELAY_SECONDS="1")  # fmt: skip
    proc = spawn("campaign", "run", str(spec), env=env)
    marker = wait_paused("postprocess", value, own.settings.home_dir, proc)
    own.stop("prefect")
    try:
        marker.unlink()  # the run goes on against a dead API
        time.sleep(5)
    finally:
        own.start("prefect")
    done = finish(proc)
    if done.code != 0:
        error = _error_line(done)
        assert "Prefect" in error and "reelforge retry" in error, error
        retried = cli("retry", campaign_run_id(own.settings, name), env=env)
        assert retried.code == 0, (retried.payload, retried.stderr[-3000:])
    else:
        assert done.payload["made"] == 2, done.payload
    own.lineage.assert_published_once(tenant, videos=2, clips=2)
