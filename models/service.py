"""Resident generation service: loads pipelines once, batches compatible requests.

``GeneratorService`` keeps a cache of loaded ``WanGenerator`` objects (one per source,
checkpoint, device and GPU options) so a worker process pays the load once and then serves
many jobs. ``generate_many`` groups compatible requests (same size, frames, steps, guidance)
into batches of at most ``max_batch``; each batch is one ``WanPipeline`` call, so the
high-noise expert runs for every video of the batch before the single switch to the
low-noise expert (one expert swap per batch, reported as ``metadata.expert_swaps``).
Identical requests (same cache key) are generated once, and a small in-memory LRU of
results keyed by ``cache_key`` avoids generating a repeated template twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from models.generator import (
    GeneratedVideo,
    GenerationRequest,
    GeneratorConfig,
    ResolvedRequest,
    WanGenerator,
)
from reelforge.core.checkpoints import Source
from reelforge.core.settings import Settings, get_settings


class GeneratorService:
    def __init__(
        self, settings: Settings | None = None, max_batch: int | None = None, result_cache: int = 32
    ) -> None:
        self.settings = settings or get_settings()
        self._max_batch = max_batch or (self.settings.gen_max_batch or None)
        self._generators: dict[GeneratorConfig, WanGenerator] = {}
        self._lock = threading.Lock()
        self._results: OrderedDict[str, GeneratedVideo] = OrderedDict()
        self._result_cache = result_cache
        self.loads = 0
        self.cache_hits = 0

    def generator(
        self,
        source: Source | None = None,
        checkpoint_dir: Path | None = None,
        device: str | None = None,
    ) -> WanGenerator:
        config = GeneratorConfig.from_settings(
            self.settings, source=source, checkpoint_dir=checkpoint_dir, device=device
        )
        with self._lock:
            gen = self._generators.get(config)
            if gen is None:
                gen = WanGenerator.from_config(config)
                self._generators[config] = gen
                self.loads += 1
        return gen

    def max_batch(self, gen: WanGenerator) -> int:
        return self._max_batch or gen.spec.max_batch

    def generate(self, request: GenerationRequest, **kw) -> GeneratedVideo:
        return self.generate_many([request], **kw)[0]

    def generate_many(
        self,
        requests: Sequence[GenerationRequest],
        batch: bool = True,
        use_cache: bool = True,
        slot: Callable[[], AbstractContextManager[object]] = nullcontext,
        **gen_kw,
    ) -> list[GeneratedVideo]:
        """Generate videos in request order; compatible requests share batches. ``slot`` is
        held while the model runs, and only then: results already resident need no GPU."""
        gen = self.generator(**gen_kw)
        resolved: list[ResolvedRequest] = [gen.resolve(r) for r in requests]
        keys = [gen.cache_key(r) for r in resolved]
        out: dict[str, GeneratedVideo] = {}
        todo: dict[str, ResolvedRequest] = {}
        for k, r in zip(keys, resolved, strict=True):
            if use_cache and k in self._results:
                out[k] = self._results[k]
                self._results.move_to_end(k)
                self.cache_hits += 1
            elif k not in todo:
                todo[k] = r
        groups: dict[tuple, list[tuple[str, ResolvedRequest]]] = {}
        for k, r in todo.items():
            groups.setdefault(r.batch_key(), []).append((k, r))
        size = self.max_batch(gen) if batch else 1
        with slot() if todo else nullcontext():
            for items in groups.values():
                for i in range(0, len(items), size):
                    chunk = items[i : i + size]
                    videos = gen.generate_batch([r for _, r in chunk])
                    for (k, _), v in zip(chunk, videos, strict=True):
                        out[k] = v
                        if use_cache and self._result_cache:
                            self._results[k] = v
                            while len(self._results) > self._result_cache:
                                self._results.popitem(last=False)
        return [out[k] for k in keys]


_SERVICE: GeneratorService | None = None
_SERVICE_LOCK = threading.Lock()


def get_service() -> GeneratorService:
    """The process-wide resident service (a worker process loads each model once)."""
    global _SERVICE
    with _SERVICE_LOCK:
        if _SERVICE is None:
            _SERVICE = GeneratorService()
        return _SERVICE
