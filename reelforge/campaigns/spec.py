"""Campaign specs: a YAML file (products inline or from a CSV) validated before anything runs.

Every problem names the file, the line and the field (``campaign.yaml:12: schedule.cron:
...``, ``products.csv:5: sku: ...``); a spec with any problem raises ``InvalidInput``
(exit code 2) carrying all of them, and nothing is scheduled, generated or published.

Shape (see ``examples/campaign.yaml``)::

    name: spring-sale            # [a-z0-9-], unique per tenant
    tenant: acme
    template: product_showcase   # an enhancement preset
    prompt: "{prompt}"           # optional; per product from {sku,name,prompt,colour,...}
    text: "{name} {price}"       # optional overlay text, same placeholders
    products: {csv: products.csv}   # or a list of {sku, name, prompt, ...}
    renditions: ["9:16", {aspect: "16:9", quality: 720p, fps: 30}]
    brand: {logo: logo.png, lut: warm, music: music.wav}
    generation: {seed: 7, speed: fast, steps: 4, preset: square, seconds: 2, style: neon:0.8}
    schedule: {cron: "0 6 * * 1", timezone: Europe/Berlin}
    concurrency: 2
    personalisation: {text: "Hi {first_name}! {name} {price}", rendition: "9:16"}
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reelforge.core.errors import InvalidInput
from reelforge.core.jobs import Speed, VideoJob, parse_style
from reelforge.core.settings import get_settings

SLUG = r"^[a-z0-9][a-z0-9-]{0,63}$"
# SKUs become parts of object keys, artifact rows and file names: letters, digits, . _ -
# only, starting with a letter or digit, never "..".
SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PRODUCT_FIELDS = ("colour", "material", "category", "price")
CSV_REQUIRED = ("sku", "name")
CSV_OPTIONAL = ("prompt", "text", *PRODUCT_FIELDS)
USER_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Text a spreadsheet would run as a formula when the data is opened again (CSV injection):
# a leading = or @, or a leading + / - followed by a letter, "(", "=" or "@", or with a "|"
# (DDE) anywhere. "-20% today", "+1.5" and "- a red mug" are fine.
FORMULA = re.compile(r"^(?:[=@]|[+-](?:[A-Za-z(=@]|.*\|))")
MAX_PRODUCTS = 100_000
MAX_FIELD_CHARS = 200


# --- models ----------------------------------------------------------------------------------


def _issue(path: str, message: str) -> PydanticCustomError:
    """A problem at ``path`` (dotted, e.g. products[3].sku) inside a model validator."""
    return PydanticCustomError("campaign_spec", "{message}", {"path": path, "message": message})


def _printable(value: str | None, field: str) -> str | None:
    """Newlines and tabs fold to spaces; other control characters are refused (they break
    overlays and PostgreSQL refuses NUL in the lineage record of the spec)."""
    if value is None:
        return None
    folded = value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    bad = next((ch for ch in folded if not ch.isprintable()), None)
    if bad is not None:
        raise ValueError(f"{field} contains the control character U+{ord(bad):04X}: remove it")
    return folded


def _no_formula(value: str | None, field: str) -> str | None:
    if value is not None and FORMULA.match(value):
        raise ValueError(
            f"{field} starts with {value[0]!r}, which a spreadsheet runs as a formula: "
            f"remove the leading {value[0]!r}"
        )
    return value


def _placeholders(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"bad placeholder syntax: {exc}") from None


class ProductSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    sku: str = Field(description="Stock keeping unit: letters, digits, '.', '_', '-'.")
    name: str = Field(min_length=1, max_length=MAX_FIELD_CHARS)
    prompt: str | None = Field(default=None, max_length=2000)
    text: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    colour: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    material: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    category: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    price: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)

    @field_validator("sku")
    @classmethod
    def _sku(cls, value: str) -> str:
        if not SKU.match(value) or ".." in value:
            raise ValueError(
                f"SKU {value!r} is not allowed: use letters, digits, '.', '_' and '-' "
                "(at most 64, starting with a letter or digit, no '..')"
            )
        return value

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: Any) -> Any:
        return (
            f"{value:g}"
            if isinstance(value, int | float) and not isinstance(value, bool)
            else value
        )

    @field_validator("name", "prompt", "text", "colour", "material", "category", "price")
    @classmethod
    def _text(cls, value: str | None, info: ValidationInfo) -> str | None:
        field = info.field_name or "value"
        return _no_formula(_printable(value, field), field)

    def fields(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class RenditionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aspect: Literal["16:9", "9:16", "1:1"] = "16:9"
    quality: Literal["720p", "1080p"] = "720p"
    fps: Literal[24, 30] = 30

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"aspect": value} if isinstance(value, str) else value

    @property
    def label(self) -> str:
        return f"{self.aspect} {self.quality} {self.fps}fps"


def known_template(value: str | None) -> str | None:
    """An enhancement preset's name, checked (campaigns and storyboards)."""
    from tasks.enhance.templates import available_presets

    if value is not None and value not in available_presets("en"):
        raise ValueError(
            f"unknown template {value!r}: choose one of {', '.join(available_presets('en'))}"
        )
    return value


def _resolve(value: Path | None, info: ValidationInfo) -> Path | None:
    if value is None:
        return None
    base = (info.context or {}).get("base")
    path = value.expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    path = path.resolve()
    if not path.is_file():
        raise ValueError(f"file {value} does not exist (looked at {path})")
    return path


def _checked(value: Any, **files: Path | None) -> Any:
    """The brand file decodes (logo), parses (LUT) or is audible (music): checked at load,
    before anything is scheduled, not when the first product renders."""
    from tasks.preflight import check_brand

    if value is None:
        return None
    try:
        check_brand(**files)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None
    return value


class BrandSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    logo: Path | None = Field(default=None, description="PNG/WebP logo, relative to the spec.")
    lut: str | None = Field(default=None, description="LUT preset name or .cube file.")
    music: Path | None = Field(default=None, description="Music track, relative to the spec.")

    @field_validator("logo", "music")
    @classmethod
    def _exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve(value, info)

    @field_validator("logo")
    @classmethod
    def _logo_type(cls, value: Path | None) -> Path | None:
        if value is not None and value.suffix.lower() not in (".png", ".webp"):
            raise ValueError(f"logo {value.name} must be a .png or .webp file")
        return _checked(value, logo=value)

    @field_validator("music")
    @classmethod
    def _music(cls, value: Path | None) -> Path | None:
        return _checked(value, music=value)

    @field_validator("lut")
    @classmethod
    def _lut(cls, value: str | None, info: ValidationInfo) -> str | None:
        from tasks.postprocess.lut import PRESETS

        if value is None or value in PRESETS:
            return value
        if not value.lower().endswith(".cube"):
            raise ValueError(
                f"unknown LUT {value!r}: use one of {', '.join(PRESETS)} or a .cube file"
            )
        resolved = _resolve(Path(value), info)
        return _checked(str(resolved), lut=resolved)


class GenerationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, ge=0, lt=2**63)
    steps: int | None = Field(default=None, ge=1, le=200)
    speed: Speed = "quality"
    preset: str | None = Field(default=None, description="The model's size preset.")
    seconds: float | None = Field(default=None, gt=0, le=60, description="Clip length.")
    style: str | None = Field(default=None, description="A registered style, NAME[:STRENGTH].")
    negative_prompt: str = Field(default="", max_length=2000)

    @field_validator("negative_prompt")
    @classmethod
    def _text(cls, value: str) -> str:
        return _printable(value, "negative_prompt") or ""

    @field_validator("style")
    @classmethod
    def _style(cls, value: str | None) -> str | None:
        try:
            VideoJob.model_validate({"prompt": "-", **parse_style(value)})
        except (InvalidInput, ValidationError) as exc:
            raise ValueError(f"write a registered style as NAME or NAME:0.8 ({value!r})") from exc
        return value


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(description="Five-field cron, e.g. '0 6 * * 1' (Mondays 06:00).")
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(
                f"invalid cron expression {value!r}: use five fields "
                "(minute hour day-of-month month day-of-week), e.g. '0 6 * * 1'"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as Europe/Berlin or UTC"
            ) from None
        return value


class PersonalisationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        max_length=MAX_FIELD_CHARS,
        description="Per-user overlay, e.g. 'Hi {first_name}! {name} {price}'.",
    )
    rendition: RenditionSpec = Field(default_factory=lambda: RenditionSpec(aspect="9:16"))
    user_fields: list[str] = Field(
        default_factory=lambda: ["first_name"], description="Fields a request may carry."
    )

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _printable(value, "text") or ""

    @field_validator("user_fields")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        bad = [name for name in value if not USER_FIELD.match(name)]
        if bad:
            raise ValueError(f"bad user field name {bad[0]!r}: use [a-z][a-z0-9_]*")
        return value


class CampaignSpec(BaseModel):
    """A validated campaign: products are always inline here (a CSV is read on load)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SLUG, description="Campaign name (a-z, 0-9, '-').")
    tenant: str = Field(pattern=SLUG)
    template: str | None = Field(default=None, description="Enhancement preset.")
    prompt: str | None = Field(default=None, max_length=2000)
    text: str | None = Field(default=None, max_length=MAX_FIELD_CHARS)
    products: list[ProductSpec] = Field(min_length=1, max_length=MAX_PRODUCTS)
    renditions: list[RenditionSpec] = Field(
        default_factory=lambda: [RenditionSpec()], min_length=1, max_length=6
    )
    brand: BrandSpec = Field(default_factory=BrandSpec)
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    schedule: ScheduleSpec | None = None
    concurrency: int = Field(default=2, ge=1, le=64)
    policy: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    personalisation: PersonalisationSpec | None = None
    review: Literal["required"] | None = Field(
        default=None,
        description="required: each product's takes wait for a person's decision (one review "
        "per product, docs/review.md); the product is published when its review is approved.",
    )
    versions: int = Field(default=1, ge=1, le=16, description="Takes per product (with review).")
    review_timeout: Literal["reject", "auto: best_score"] | None = Field(
        default=None,
        description="What a product's review becomes when its time runs out "
        "(default: REELFORGE_REVIEW_ON_TIMEOUT).",
    )

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return known_template(value)

    @field_validator("prompt", "text")
    @classmethod
    def _texts(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _printable(value, info.field_name or "value")

    @model_validator(mode="after")
    def _cross_checks(self) -> CampaignSpec:
        seen: dict[str, int] = {}
        for i, product in enumerate(self.products):
            if product.sku in seen:
                raise _issue(
                    f"products[{i}].sku",
                    f"duplicate SKU {product.sku!r} (also products[{seen[product.sku]}])",
                )
            seen[product.sku] = i
        known = {"sku", "name", "prompt", *PRODUCT_FIELDS}
        for field in ("prompt", "text"):
            template = getattr(self, field)
            if template is None:
                continue
            try:
                unknown = _placeholders(template) - known
            except ValueError as exc:
                raise _issue(field, str(exc)) from None
            if unknown:
                raise _issue(
                    field,
                    f"unknown placeholder {{{sorted(unknown)[0]}}}: use {', '.join(sorted(known))}",
                )
        if self.prompt is None:
            missing = [i for i, p in enumerate(self.products) if not p.prompt]
            if missing:
                raise _issue(
                    f"products[{missing[0]}].prompt",
                    "no prompt: give each product a prompt or the campaign a prompt template",
                )
        from tasks.enhance.normalize import normalize_prompt

        for i, product in enumerate(self.products):
            prompt = product.prompt or _render(self.prompt or "", product.fields())
            try:
                normalize_prompt(prompt)
            except InvalidInput as exc:
                where = "prompt" if product.prompt else "prompt (from the campaign's template)"
                raise _issue(f"products[{i}].prompt", f"{where}: {exc}") from None
        if self.versions > 1 and self.review is None:
            raise _issue("versions", "versions need a review: add `review: required`")
        most = get_settings().max_versions
        if self.versions > most:
            raise _issue("versions", f"at most {most} takes (REELFORGE_MAX_VERSIONS)")
        if self.personalisation is not None:
            allowed = known | set(self.personalisation.user_fields)
            try:
                unknown = _placeholders(self.personalisation.text) - allowed
            except ValueError as exc:
                raise _issue("personalisation.text", str(exc)) from None
            if unknown:
                raise _issue(
                    "personalisation.text",
                    f"unknown placeholder {{{sorted(unknown)[0]}}}: add it to "
                    "personalisation.user_fields or use a product field",
                )
        return self

    # --- jobs -----------------------------------------------------------------------------

    def product(self, sku: str) -> ProductSpec:
        for product in self.products:
            if product.sku == sku:
                return product
        raise InvalidInput(f"campaign {self.name} has no product {sku!r}")

    def job(self, product: ProductSpec, rendition: RenditionSpec, **overrides: Any) -> VideoJob:
        """The video job of one product in one rendition."""
        fields = product.fields()
        prompt = product.prompt or _render(self.prompt or "", fields)
        text = product.text or (_render(self.text, fields) if self.text else None) or None
        gen = self.generation
        job = {
            "tenant": self.tenant,
            "campaign": self.name,
            "prompt": prompt,
            "template": self.template,
            "product": {k: fields[k] for k in ("name", *PRODUCT_FIELDS) if k in fields},
            "negative_prompt": gen.negative_prompt,
            "seed": gen.seed,
            "steps": gen.steps,
            "speed": gen.speed,
            "generation_preset": gen.preset,
            "seconds": gen.seconds,
            **parse_style(gen.style),
            "aspect": rendition.aspect,
            "quality": rendition.quality,
            "fps": rendition.fps,
            "lut": self.brand.lut,
            "logo": self.brand.logo,
            "music": self.brand.music,
            "text": text,
            "policy": self.policy,
        }
        return VideoJob(**(job | overrides))

    def jobs(self, product: ProductSpec) -> list[VideoJob]:
        return [self.job(product, rendition) for rendition in self.renditions]


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return ""  # an optional product field left empty


def _render(template: str, fields: dict[str, str]) -> str:
    return " ".join(template.format_map(_Fields(fields)).split())


# --- personalisation requests -------------------------------------------------------------------


class PersonalisationRequest(BaseModel):
    """One user's request (the payload of a ``reelforge.personalisation.requested`` event)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
    sku: str
    fields: dict[str, str] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _values(cls, value: dict[str, str]) -> dict[str, str]:
        clean = {}
        for key, text in value.items():
            if not USER_FIELD.match(key):
                raise ValueError(f"bad field name {key!r}")
            text = " ".join("".join(ch for ch in text if ch.isprintable()).split())
            if len(text) > 100:
                raise ValueError(f"{key} is longer than 100 characters")
            clean[key] = _no_formula(text, key)
        return clean


def personal_job(spec: CampaignSpec, request: PersonalisationRequest) -> VideoJob:
    """The product's job in the personalisation rendition, with this user's overlay text."""
    if spec.personalisation is None:
        raise InvalidInput(f"campaign {spec.name} has no personalisation section")
    extra = set(request.fields) - set(spec.personalisation.user_fields)
    if extra:
        raise InvalidInput(
            f"personalisation request for {request.user_id}: unknown field {sorted(extra)[0]!r} "
            f"(campaign {spec.name} accepts {', '.join(spec.personalisation.user_fields)})"
        )
    product = spec.product(request.sku)
    text = _render(spec.personalisation.text, product.fields() | request.fields)
    return spec.job(
        product, spec.personalisation.rendition, text=text or None, audience=request.user_id
    )
