"""Deterministic cache keys for Prefect tasks: content hashes of inputs + code and model versions.

A stage's key is ``sha256(stage, code digest of the stage package, [model version],
content digest of the task's inputs)``.  The content digest hashes *bytes*, not names: an
``AssetRef`` by its sha256 and id, a file ``Path`` by its contents, a pydantic model field by
field.  The inputs of every stage include the ``StageContext`` (tenant and flow-run id), so a
stage's key is scoped to its flow run: a retry of the same run (``reelforge retry``, Prefect's
UI, on any machine that can read the results bucket) finds every finished stage's result and
re-runs only what failed, while a new run of the same job records its own lineage (and the
generate stage still reuses the clip through its generation cache key).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from pydantic import BaseModel

from reelforge.core.checkpoints import model_version
from reelforge.core.storage import sha256_file


@lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (memoised per path, size and mtime in this process)."""
    stat = path.stat()
    return _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def canonical(value: Any) -> Any:
    """A JSON-able form of ``value`` in which files appear as content hashes."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if isinstance(value, Path):
        return {"file": file_digest(value)} if value.is_file() else {"path": str(value)}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"bytes": hashlib.sha256(value).hexdigest()}
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {"__model__": type(value).__name__} | {
            name: canonical(getattr(value, name)) for name in fields
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__dataclass__": type(value).__name__} | {
            f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        return {str(canonical(k)): canonical(v) for k, v in sorted(value.items(), key=_key)}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((canonical(v) for v in value), key=json.dumps)
    raise TypeError(f"cannot derive a cache key from a {type(value).__name__}")


def _key(item: tuple[Any, Any]) -> str:
    return str(canonical(item[0]))


def digest(*parts: Any) -> str:
    blob = json.dumps(canonical(list(parts)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _release() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reelforge")
    except PackageNotFoundError:
        return "0+unknown"


@lru_cache(maxsize=64)
def package_digest(module: str) -> str:
    """Code version of a stage: the release plus a hash of its package's sources (as loaded
    by this process), so any edit to a stage, committed or not, invalidates its cached
    results, and commits elsewhere in the repository do not."""
    import importlib.util

    spec = importlib.util.find_spec(module)  # located, not imported (no torch in orchestrators)
    path = Path(spec.origin if spec and spec.origin else "")
    h = hashlib.sha256(_release().encode())
    for source in sorted(path.parent.glob("*.py")):
        h.update(source.name.encode() + b"\0" + source.read_bytes())
    return h.hexdigest()


@dataclasses.dataclass
class StageCache(CachePolicy):
    """Cache policy of a pipeline stage (see the module docstring)."""

    stage: str = ""
    with_model: bool = False

    def __post_init__(self) -> None:
        if not self.stage or self.key_storage is not None:
            raise TypeError("StageCache(stage=...): pass the stage by keyword")

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        fn: Callable[..., Any] = task_ctx.task.fn
        parts: list[Any] = [self.stage, package_digest(fn.__module__), inputs]
        if self.with_model:
            parts.append(model_version())
        return f"{self.stage}-{digest(*parts)}"


@dataclasses.dataclass
class KeyField(CachePolicy):
    """Use a key the caller computed (``inputs[argument].cache_key``), e.g. a product's."""

    argument: str = ""

    def __post_init__(self) -> None:
        if not self.argument or self.key_storage is not None:
            raise TypeError("KeyField(argument=...): pass the argument by keyword")

    def compute_key(
        self,
        task_ctx: Any,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return inputs[self.argument].cache_key
