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
    generation: {seed: 7, speed: fast, steps: 4, preset: square}
    schedule: {cron: "0 6 * * 1", timezone: Europe/Berlin}
    concurrency: 2
    personalisation: {text: "Hi {first_name}! {name} {price}", rendition: "9:16"}
"""

from __future__ import annotations

import csv
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
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

from reelforge.errors import InvalidInput
from reelforge.jobs import VideoJob

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
    from reelforge.preflight import check_brand

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
    speed: Literal["quality", "fast"] = "quality"
    preset: str | None = None
    negative_prompt: str = Field(default="", max_length=2000)

    @field_validator("negative_prompt")
    @classmethod
    def _text(cls, value: str) -> str:
        return _printable(value, "negative_prompt") or ""


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

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        from tasks.enhance.templates import available_presets

        if value is not None and value not in available_presets("en"):
            raise ValueError(
                f"unknown template {value!r}: choose one of {', '.join(available_presets('en'))}"
            )
        return value

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


# --- loading with line numbers -------------------------------------------------------------------


class Problem(BaseModel):
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


def problems_error(problems: list[Problem]) -> InvalidInput:
    first = " ".join(str(problems[0]).split())  # one line, whatever a cell or key holds
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return InvalidInput(
        f"invalid campaign spec: {first}{more}",
        extra={"problems": [p.model_dump() for p in problems]},
    )


Path_ = tuple[str | int, ...]


MAX_FLOW_DEPTH = 50


def _flow_depth(text: str) -> int:
    """The deepest nesting of [ and { (quotes ignored: an upper bound that is cheap to get)."""
    depth = peak = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            peak = max(peak, depth)
        elif ch in "]}":
            depth = max(depth - 1, 0)
    return peak


def _compose(text: str, file: str) -> tuple[Any, dict[Path_, int]]:
    """YAML -> Python values plus the line of every key and item."""

    def refuse(line: int | None, field: str, message: str) -> InvalidInput:
        return problems_error([Problem(file=file, line=line, field=field, message=message)])

    depth = _flow_depth(text)
    if depth > MAX_FLOW_DEPTH:  # PyYAML's scanner slows down with the square of the depth
        raise refuse(
            None,
            "",
            f"YAML nested too deeply ({depth} levels of [ or {{): a campaign "
            "spec is a few levels deep",
        )
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character, checked before parsing
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise refuse(
            line,
            "",
            f"YAML: the control character U+{exc.character:04X} is not allowed in YAML: remove it",
        ) from None
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise refuse(line, "", f"YAML: {exc.problem or exc}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        message = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise refuse(None, "", f"YAML: {message}") from None
    finally:
        loader.dispose()
    marks: dict[Path_, int] = {}
    built: set[int] = set()

    def construct(node: yaml.Node, path: Path_) -> Any:
        try:
            return loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise refuse(
                node.start_mark.line + 1,
                _dotted(path),
                f"YAML: cannot read the value tagged {node.tag} ({problem}): "
                "write a plain value without a !!tag",
            ) from None

    def build(node: yaml.Node, path: Path_) -> Any:
        marks.setdefault(path, node.start_mark.line + 1)
        if len(path) > 20:
            raise refuse(
                node.start_mark.line + 1,
                _dotted(path[:3]),
                "YAML nested too deeply: a campaign spec is a few levels deep",
            )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in built:  # an alias (*name): refused, "billion laughs" lives here
                raise refuse(
                    node.start_mark.line + 1,
                    _dotted(path),
                    "YAML aliases (&anchor / *alias) are not supported: write the values out",
                )
            built.add(id(node))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(construct(key_node, path))
                if key in out:
                    raise refuse(
                        key_node.start_mark.line + 1, _dotted((*path, key)), "duplicate key"
                    )
                marks[(*path, key)] = key_node.start_mark.line + 1
                out[key] = build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        return construct(node, path)

    return (build(node, ()) if node is not None else None), marks


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _parse_dotted(text: str) -> Path_:
    parts: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", text):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _line(marks: dict[Path_, int], path: Path_) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in marks:
            return marks[path[:end]]
    return None


def _unreadable(shown: str, reader: csv.DictReader, exc: Exception) -> InvalidInput:
    if isinstance(exc, UnicodeDecodeError):
        problem = Problem(
            file=shown,
            line=None,
            field="",
            message=f"not UTF-8 text (byte {exc.start}): save the CSV as UTF-8",
        )
    else:
        limit = csv.field_size_limit()
        message = (
            f"a cell is longer than {limit} characters: is this the right file? Cells hold "
            f"at most {MAX_FIELD_CHARS} characters (prompts 2000)"
            if "field limit" in str(exc)
            else f"malformed CSV ({exc}): save it as comma-separated UTF-8 text"
        )
        # line_num counts the lines of the records read so far: the bad one starts after them
        problem = Problem(file=shown, line=reader.line_num + 1, field="", message=message)
    return problems_error([problem])


def _header(reader: csv.DictReader, shown: str) -> list[str]:
    try:
        return [h.strip() for h in reader.fieldnames or []]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise _unreadable(shown, reader, exc) from None


def _records(reader: csv.DictReader, shown: str) -> Iterator[dict[str | Any, Any]]:
    """The reader's rows; a malformed or non-UTF-8 file is one line of InvalidInput."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _unreadable(shown, reader, exc) from None
        yield row


def load_products_csv(path: Path, *, shown: str) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of a products CSV, checked for columns, SKUs and duplicates."""
    problems: list[Problem] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise problems_error(
            [Problem(file=shown, line=None, field="", message=f"cannot read: {exc.strerror}")]
        ) from None
    with handle:
        reader = csv.DictReader(handle)
        header = _header(reader, shown)
        missing = [c for c in CSV_REQUIRED if c not in header]
        unknown = [c for c in header if c not in (*CSV_REQUIRED, *CSV_OPTIONAL)]
        if missing:
            problems.append(
                Problem(
                    file=shown,
                    line=1,
                    field=missing[0],
                    message=f"missing column(s) {', '.join(missing)} "
                    f"(header: {', '.join(header) or 'empty'})",
                )
            )
        if unknown:
            problems.append(
                Problem(
                    file=shown,
                    line=1,
                    field=unknown[0],
                    message=f"unknown column(s) {', '.join(unknown)}: allowed are "
                    f"{', '.join((*CSV_REQUIRED, *CSV_OPTIONAL))}",
                )
            )
        if problems:
            raise problems_error(problems)
        reader.fieldnames = header
        rows: list[tuple[int, dict[str, str]]] = []
        seen: dict[str, int] = {}
        previous_end = 1
        for raw in _records(reader, shown):
            line = previous_end + 1
            previous_end = reader.line_num
            values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if None in raw:
                problems.append(
                    Problem(file=shown, line=line, field="", message="more cells than columns")
                )
                continue
            if not any(values.values()):
                continue  # a blank line
            row = {k: v for k, v in values.items() if v != ""}
            try:
                ProductSpec.model_validate(row)
            except ValidationError as exc:
                for err in exc.errors():
                    field = str(err["loc"][0]) if err["loc"] else ""
                    problems.append(
                        Problem(file=shown, line=line, field=field, message=_message(err))
                    )
                continue
            sku = row["sku"]
            if sku in seen:
                problems.append(
                    Problem(
                        file=shown,
                        line=line,
                        field="sku",
                        message=f"duplicate SKU {sku!r} (first on line {seen[sku]})",
                    )
                )
                continue
            seen[sku] = line
            rows.append((line, row))
        if not rows and not problems:
            problems.append(Problem(file=shown, line=None, field="", message="no products"))
    if problems:
        raise problems_error(problems)
    return rows


def _message(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown key (Extra inputs are not permitted): remove it or fix its spelling"
    message = err["msg"]
    return message.removeprefix("Value error, ")


def load_spec(path: Path | str) -> CampaignSpec:
    """Read and validate a campaign spec file (products CSV included)."""
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read campaign spec {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"campaign spec {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 YAML"
        ) from None
    data, marks = _compose(text, shown)
    if not isinstance(data, dict):
        raise problems_error(
            [Problem(file=shown, line=1, field="", message="a campaign spec is a YAML mapping")]
        )
    products = data.get("products")
    if isinstance(products, dict) and set(products) == {"csv"}:
        csv_path = Path(str(products["csv"])).expanduser()
        csv_path = csv_path if csv_path.is_absolute() else path.parent / csv_path
        if not csv_path.is_file():
            raise problems_error(
                [
                    Problem(
                        file=shown,
                        line=marks.get(("products", "csv")),
                        field="products.csv",
                        message=f"file {products['csv']} does not exist (looked at {csv_path})",
                    )
                ]
            )
        csv_shown = str(Path(shown).parent / str(products["csv"]))
        csv_rows = load_products_csv(csv_path, shown=csv_shown)
        data["products"] = [row for _, row in csv_rows]
        csv_lines = [line for line, _ in csv_rows]
    else:
        csv_shown, csv_lines = None, []
    try:
        return CampaignSpec.model_validate(data, context={"base": path.parent.resolve()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            ctx = err.get("ctx") or {}
            loc: Path_ = _parse_dotted(ctx["path"]) if "path" in ctx else tuple(err["loc"])
            if csv_shown and len(loc) >= 2 and loc[0] == "products" and isinstance(loc[1], int):
                # Problems with a CSV product point at its row in the CSV.
                field = _dotted(loc[2:])
                line = csv_lines[loc[1]]
                problems.append(
                    Problem(file=csv_shown, line=line, field=field, message=_message(err))
                )
                continue
            problems.append(
                Problem(
                    file=shown, line=_line(marks, loc), field=_dotted(loc), message=_message(err)
                )
            )
        raise problems_error(problems) from None


def load_users_csv(path: Path | str, spec: CampaignSpec) -> list[PersonalisationRequest]:
    """Personalisation requests from a CSV: user_id, sku and the campaign's user fields."""
    path = Path(path)
    shown = str(path)
    if spec.personalisation is None:
        raise InvalidInput(f"campaign {spec.name} has no personalisation section")
    allowed = ("user_id", "sku", *spec.personalisation.user_fields)
    skus = {p.sku for p in spec.products}
    problems: list[Problem] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from None
    requests: list[PersonalisationRequest] = []
    with handle:
        reader = csv.DictReader(handle)
        header = _header(reader, shown)
        missing = [c for c in ("user_id", "sku") if c not in header]
        unknown = [c for c in header if c not in allowed]
        if missing or unknown:
            field = (missing or unknown)[0]
            what = (
                f"missing column(s) {', '.join(missing)}"
                if missing
                else f"unknown column(s) {', '.join(unknown)}"
            )
            raise problems_error(
                [
                    Problem(
                        file=shown, line=1, field=field, message=f"{what}: use {', '.join(allowed)}"
                    )
                ]
            )
        reader.fieldnames = header
        seen: dict[tuple[str, str], int] = {}
        previous_end = 1
        for raw in _records(reader, shown):
            line = previous_end + 1
            previous_end = reader.line_num
            values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
            if not any(values.values()):
                continue
            fields = {k: v for k, v in values.items() if k not in ("user_id", "sku")}
            try:
                request = PersonalisationRequest(
                    user_id=values.get("user_id", ""), sku=values.get("sku", ""), fields=fields
                )
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append(Problem(file=shown, line=line, field=field, message=_message(err)))
                continue
            if request.sku not in skus:
                problems.append(
                    Problem(
                        file=shown,
                        line=line,
                        field="sku",
                        message=f"unknown SKU {request.sku!r} in campaign {spec.name}",
                    )
                )
                continue
            key = (request.user_id, request.sku)
            if key in seen:
                problems.append(
                    Problem(
                        file=shown,
                        line=line,
                        field="user_id",
                        message=f"duplicate request for {key[0]} and {key[1]} (line {seen[key]})",
                    )
                )
                continue
            seen[key] = line
            requests.append(request)
    if not requests and not problems:
        problems.append(Problem(file=shown, line=None, field="", message="no users"))
    if problems:
        raise problems_error(problems)
    return requests
