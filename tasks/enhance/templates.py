"""Deterministic template enhancer: campaign presets as per-language YAML data files.

Each file ``templates/<lang>/<preset>.yaml`` holds Jinja2 snippets for the six director
slots (subject, motion, background, lighting, shot, camera) and the final ``prompt``.
Slots may be a string or a list of options; a list is indexed by a sha256 of the preset,
language, product fields and brief, so the same input always gives the same prompt while
different products get varied shots.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, field_validator

from reelforge.core.errors import InvalidInput

from .language import SUPPORTED_LANGUAGES

TEMPLATE_DIR = Path(__file__).with_name("templates")
SLOTS = ("subject", "motion", "background", "lighting", "shot", "camera")
MAX_FIELD_CHARS = 200
_WS = re.compile(r"\s+")


class Product(BaseModel):
    """Product fields a campaign template can use (all optional)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, description="Product name, e.g. 'Aurora desk lamp'.")
    colour: str | None = Field(default=None, description="Main colour, e.g. 'sage green'.")
    material: str | None = Field(default=None, description="Main material, e.g. 'brushed steel'.")
    category: str | None = Field(default=None, description="Category, e.g. 'lamp'.")
    price: str | None = Field(default=None, description="Price as shown, e.g. '$49' or '¥299'.")

    @field_validator("name", "colour", "material", "category", "price", mode="before")
    @classmethod
    def _clean(cls, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, int | float):
            v = f"{v:g}"
        if not isinstance(v, str):
            raise ValueError("must be text")
        v = "".join(ch for ch in v if ch.isprintable())
        v = _WS.sub(" ", v).strip()
        if len(v) > MAX_FIELD_CHARS:
            raise ValueError(f"is longer than {MAX_FIELD_CHARS} characters")
        return v or None

    def is_empty(self) -> bool:
        return not any(self.model_dump().values())


class TemplateResult(BaseModel):
    preset: str
    language: str
    prompt: str
    slots: dict[str, str]


_env = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


def _cap1(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _indef(text: str) -> str:
    """English indefinite article: 'an orange mug', 'a blue mug'."""
    return ("an " if text[:1].lower() in "aeiou" else "a ") + text


def _ko_subject_particle(text: str) -> str:
    """Korean subject particle: 이 after a final consonant, 가 after a vowel."""
    for ch in reversed(text):
        cp = ord(ch)
        if 0xAC00 <= cp <= 0xD7A3:
            return "이" if (cp - 0xAC00) % 28 else "가"
        if ch.isalnum():
            break
    return "이(가)"


_env.filters["cap1"] = _cap1
_env.filters["ko_subject_particle"] = _ko_subject_particle
_env.filters["indef"] = _indef


def available_presets(language: str = "en") -> list[str]:
    lang_dir = TEMPLATE_DIR / language
    return sorted(p.stem for p in lang_dir.glob("*.yaml") if not p.stem.startswith("_"))


@lru_cache(maxsize=64)
def _load(language: str, preset: str) -> dict[str, Any]:
    common = TEMPLATE_DIR / language / "_common.yaml"
    path = TEMPLATE_DIR / language / f"{preset}.yaml"
    data: dict[str, Any] = {}
    if common.exists():
        data.update(yaml.safe_load(common.read_text(encoding="utf-8")) or {})
    data.update(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    missing = [k for k in (*SLOTS, "prompt") if k not in data]
    if missing:
        raise ValueError(f"template {path} lacks {', '.join(missing)}")
    return data


def _pick(options: Any, key: str) -> str:
    if isinstance(options, str):
        return options
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return options[int.from_bytes(digest[:8], "big") % len(options)]


def _price_value(price: str | None) -> float | None:
    if not price:
        return None
    m = re.search(r"\d[\d,]*(?:\.\d+)?", price)
    if not m:
        return None
    try:
        return float(m.group(0).replace(",", ""))
    except ValueError:
        return None


def render_template(
    preset: str, *, language: str, product: Product | None = None, brief: str | None = None
) -> TemplateResult:
    """Render ``preset`` in ``language`` (en/zh/ja/ko; others fall back to en)."""
    if language not in SUPPORTED_LANGUAGES:
        language = "en"
    valid = available_presets(language)
    if preset not in valid:
        raise InvalidInput(f"unknown template {preset!r}: choose one of {', '.join(valid)}")
    data = _load(language, preset)
    product = product or Product()
    fields = product.model_dump()
    price = _price_value(product.price)
    premium_from = float(data.get("premium_from", 100))
    brief = (brief or "").strip().rstrip(".。．!！") or None
    ctx: dict[str, Any] = {
        **fields,
        "brief": brief,
        "has_product": not product.is_empty(),
        "premium": price is not None and price >= premium_from,
    }
    seed_key = json.dumps([preset, language, fields, brief], ensure_ascii=False, sort_keys=True)
    slots: dict[str, str] = {}
    for slot in SLOTS:
        choice = _pick(data[slot], f"{seed_key}|{slot}")
        slots[slot] = _WS.sub(" ", _env.from_string(choice).render(**ctx, **slots)).strip()
    prompt = _env.from_string(data["prompt"]).render(**ctx, **slots)
    prompt = _WS.sub(" ", prompt).strip()
    prompt = re.sub(r"\s+([,.，。、])", r"\1", prompt)
    prompt = re.sub(r"([。，、])\s+", r"\1", prompt)  # folded YAML leaves spaces after CJK stops
    prompt = prompt.replace(",,", ",").replace(",.", ".")
    return TemplateResult(preset=preset, language=language, prompt=prompt, slots=slots)
