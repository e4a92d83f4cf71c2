"""Work pools of their own for tests that deploy or start workers (imported as a plugin)."""

from __future__ import annotations

import contextlib
import uuid

import pytest


@pytest.fixture
def pools(stack, monkeypatch):
    """Settings whose cpu/gpu pools are unique to this test; pools and their deployments are
    deleted afterwards."""
    from reelforge.core.settings import get_settings

    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("REELFORGE_CPU_POOL", f"test-cpu-{suffix}")
    monkeypatch.setenv("REELFORGE_GPU_POOL", f"test-gpu-{suffix}")
    get_settings.cache_clear()
    settings = get_settings()
    try:
        yield settings
    finally:
        delete_pools(settings.cpu_pool, settings.gpu_pool)
        monkeypatch.undo()
        get_settings.cache_clear()


def delete_pools(*names: str) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, WorkPoolFilter, WorkPoolFilterName

    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=list(names))),
            deployment_filter=DeploymentFilter(),
        )
        for deployment in deployments:
            with contextlib.suppress(Exception):
                client.delete_deployment(deployment.id)
        for name in names:
            with contextlib.suppress(Exception):
                client.delete_work_pool(name)
