"""Per-tenant safety policies, kept as YAML data files.

Lookup of ``load_policy(NAME)``: a path to a ``.yaml`` file; else ``NAME.yaml`` in
``REELFORGE_SAFETY_POLICY_DIR`` (tenants' own policies); else ``NAME.yaml`` shipped in
``tasks/safety/policies/``. ``None`` means ``default`` (marketing content).

``load_policy(NAME, tenant=T)`` is the lookup on a tenant's behalf: a policy in the policy
dir counts only if its ``tenant:`` is T (another tenant's is passed over as if it did not
exist, so nobody learns its name); the shipped ones count for everyone.

The version recorded with each verdict is ``NAME@VERSION+<sha256 of the file, 12 hex>``.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from reelforge.core.errors import InvalidInput

POLICY_DIR = Path(__file__).parent / "policies"
DEFAULT_POLICY = "default"
TEXT_CATEGORIES = ("sexual", "minors", "violence", "hate", "self-harm", "brand")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class ClassRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    threshold: float = Field(ge=0.2, le=1.0, description="Block at or above this score")
    category: str = "sexual"


class VisualPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    classes: dict[str, ClassRule] = Field(description="Model label -> threshold and category")
    aggregation: Literal["max", "consecutive"] = Field(
        default="max",
        description="max: one sample at/over threshold blocks. consecutive: N consecutive "
        "flagged samples block, or one sample at/over hard_threshold.",
    )
    consecutive: int = Field(default=2, ge=1, le=100)
    hard_threshold: float | None = Field(default=None, ge=0.2, le=1.0)
    sample_fps: float = Field(default=2.0, ge=2.0, le=60.0)
    scene_threshold: float = Field(default=0.12, gt=0.0, le=1.0)
    max_duration_s: float = Field(default=900.0, gt=0)
    batch_size: int = Field(default=16, ge=1, le=256)


class TextPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    categories: tuple[str, ...] = TEXT_CATEGORIES
    brand_terms: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="group (competitor, banned-claims, ...) -> terms"
    )

    @field_validator("categories")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(v) - set(TEXT_CATEGORIES)
        if unknown:
            raise ValueError(f"unknown text categories: {sorted(unknown)}")
        return v


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    version: str
    description: str = ""
    tenant: str | None = None
    visual: VisualPolicy
    text: TextPolicy = TextPolicy()
    # Content credentials and disclosure (tasks/postprocess/credentials.py): a visible
    # "AI-generated" label on every rendition, and whether the signed manifest may carry
    # the prompt text (off: prompts can hold names or unreleased product details).
    ai_label: bool = True
    manifest_prompt: bool = False
    # A fast/turbo clip whose motion collapsed against the quality clip (REELFORGE_MOTION_GUARD
    # measures it): allow records it in the clip's metadata, refuse blocks the job (exit 3).
    motion_collapse: Literal["allow", "refuse"] = "allow"
    file_sha256: str = ""

    @property
    def version_id(self) -> str:
        return f"{self.name}@{self.version}+{self.file_sha256[:12]}"


class UnknownPolicy(InvalidInput):
    """No policy by this name that the caller may use (the API answers 404)."""


def _tenant_dir() -> Path | None:
    from reelforge.core.settings import get_settings

    extra = getattr(get_settings(), "safety_policy_dir", None)
    return Path(extra).expanduser() if extra else None


def _find(name: str, tenant: str | None) -> Path:
    if name.endswith((".yaml", ".yml")):
        return Path(name).expanduser()
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"policy name {name!r} is not valid: use lowercase letters, digits, '-' or '_'"
        )
    folder = _tenant_dir()
    if folder is not None:
        candidate = folder / f"{name}.yaml"
        if candidate.is_file() and (tenant is None or _read(candidate).tenant == tenant):
            return candidate
    shipped = POLICY_DIR / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in POLICY_DIR.glob("*.yaml"))
    if tenant is not None:
        known = sorted({*known, *own_policies(tenant)})
    raise UnknownPolicy(f"unknown safety policy {name!r}: use one of {', '.join(known)}")


def own_policies(tenant: str) -> list[str]:
    """The names of the tenant's own policies in the policy dir."""
    folder = _tenant_dir()
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if _read(p).tenant == tenant)


def _read(path: Path) -> Policy:
    return _load_file(path.resolve(), path.stat().st_mtime_ns)


@lru_cache(maxsize=32)
def _load_file(path: Path, mtime_ns: int) -> Policy:
    raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw)
        if not isinstance(data, dict):
            raise ValueError("the file is not a mapping")
        return Policy(**data, file_sha256=hashlib.sha256(raw).hexdigest())
    except (ValidationError, ValueError, yaml.YAMLError) as exc:
        first = str(exc).replace("\n", " ")[:300]
        raise InvalidInput(f"safety policy {path.name} is invalid: {first}") from exc


def load_policy(name: str | Path | Policy | None = None, *, tenant: str | None = None) -> Policy:
    """A policy by name or path (``None``: the default marketing policy); with ``tenant``,
    only one that tenant may use (its own or a shipped one), else :class:`UnknownPolicy`."""
    if isinstance(name, Policy):
        return name
    path = Path(name) if isinstance(name, Path) else _find(name or DEFAULT_POLICY, tenant)
    if not path.is_file():
        raise InvalidInput(f"safety policy file not found: {path}")
    policy = _read(path)
    if tenant is not None and path.parent != POLICY_DIR and policy.tenant not in (None, tenant):
        # a file named by path (the CLI) may be anyone's: it must not be another tenant's
        raise UnknownPolicy(f"safety policy {path.name} belongs to another tenant: use your own")
    return policy


def list_policies() -> list[str]:
    return sorted(p.stem for p in POLICY_DIR.glob("*.yaml"))
