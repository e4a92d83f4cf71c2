from __future__ import annotations

import pytest

from reelforge.core.checkpoints import TINY_DIR


@pytest.fixture(scope="session")
def tiny_service():
    """One resident service for the whole session (the shipped tiny model, CPU)."""
    import torch

    from models.service import GeneratorService
    from reelforge.core.settings import Settings

    if not (TINY_DIR / "model_index.json").exists():
        pytest.fail("the shipped tiny model is missing: run `reelforge model train`")
    torch.set_num_threads(2)
    return GeneratorService(Settings(generator="tiny", device="cpu"), result_cache=0)


@pytest.fixture(scope="session")
def tiny(tiny_service):
    return tiny_service.generator()
