"""Request and response models: everything that crosses the HTTP edge is validated here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from db.webhooks import WEBHOOK_EVENTS
from reelforge.campaigns.spec import PRODUCT_FIELDS
from reelforge.core.jobs import Speed
from reelforge.ops.webhooks import DeliveryInfo, EndpointInfo

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
FieldName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
MAX_SEED = 2**63 - 1


def _printable(value: str | None, field: str) -> str | None:
    """No control characters (newlines and tabs are folded to spaces)."""
    if value is None:
        return None
    folded = value.replace("\n", " ").replace("\t", " ").replace("\r", " ")
    if any(not ch.isprintable() for ch in folded):
        raise ValueError(f"{field} contains control or unprintable characters")
    return folded


class Problem(BaseModel):
    error: str = Field(description="What is wrong, in one line.")


class VideoIn(BaseModel):
    """One video: a prompt (or a brief for a template) plus product, rendition and brand kit."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2000, description="What to make.")
    template: Name | None = Field(default=None, description="Enhancement preset.")
    product: dict[FieldName, Annotated[str, StringConstraints(max_length=200)]] | None = Field(
        default=None, max_length=20, description="Product fields (name, colour, price...)."
    )
    negative_prompt: str = Field(default="", max_length=2000)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    steps: int | None = Field(default=None, ge=1, le=200)
    speed: Speed = "quality"
    generation_preset: Name | None = Field(
        default=None, description="The model's size preset (e.g. 480p-landscape for Wan)."
    )
    seconds: float | None = Field(default=None, gt=0, le=60, description="Clip length.")
    style: Slug | None = Field(default=None, description="A registered style LoRA of the tenant.")
    style_strength: float = Field(default=1.0, ge=0.0, le=2.0)
    aspect: Literal["16:9", "9:16", "1:1"] = "16:9"
    quality: Literal["720p", "1080p"] = "720p"
    fps: Literal[24, 30] = 30
    lut: Name | None = Field(default=None, description="LUT preset name (brand kit).")
    text: str | None = Field(default=None, max_length=200, description="Overlay text.")
    policy: Name = Field(default="default", description="Safety policy name.")
    audience: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")] | None = None  # fmt: skip
    campaign: Slug | None = Field(default=None, description="Campaign (lineage) of this video.")
    versions: int = Field(
        default=1, ge=1, description="Takes to make; more than one needs review (docs/review.md)."
    )
    review: bool = Field(
        default=False, description="Hold the takes for a person's decision (GET /v1/reviews)."
    )

    @field_validator("prompt", "negative_prompt", "text")
    @classmethod
    def _text(cls, value: str | None, info: Any) -> str | None:
        folded = _printable(value, info.field_name)
        if info.field_name == "prompt" and folded is not None and not folded.strip():
            raise ValueError("prompt is empty")
        return folded

    @field_validator("product")
    @classmethod
    def _product(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        known = ("name", *PRODUCT_FIELDS)  # what enhancement's templates read
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(
                f"unknown product field {unknown[0]!r}: use {', '.join(known)} (or put it in "
                "the prompt)"
            )
        return {k: _printable(v, f"product.{k}") or "" for k, v in value.items()}

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        from tasks.enhance.templates import available_presets

        if value is not None and value not in available_presets("en"):
            raise ValueError(f"unknown template {value!r}: use one of {', '.join(available_presets('en'))}")  # fmt: skip
        return value


class JobAccepted(BaseModel):
    id: uuid.UUID
    status: str
    links: dict[str, str]


class Rendition(BaseModel):
    asset_id: uuid.UUID
    aspect: str | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    sha256: str | None = None
    url: str | None = Field(default=None, description="Presigned URL of the published object.")
    thumbnail_url: str | None = None


class Flag(BaseModel):
    model_config = ConfigDict(extra="allow")


class Verdict(BaseModel):
    asset_id: uuid.UUID
    asset_kind: str
    gate: str
    passed: bool
    category: str | None = None
    policy_version: str
    model_version: str | None = None
    flags: list[dict[str, Any]] = Field(default_factory=list)
    created_at: datetime


class Video(BaseModel):
    id: uuid.UUID
    status: str
    stage: str | None
    stages_done: int
    stages_total: int
    flow_run_id: uuid.UUID | None
    attempts: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    review: bool = False
    versions: int = 1
    review_id: uuid.UUID | None = Field(
        default=None, description="The review holding the takes (a job with review)."
    )
    submitted_by: str | None = Field(
        default=None, description="The API key that submitted the job: its name, else prefix."
    )
    prompt: str
    enhanced_prompt: str | None = None
    generation_cached: bool | None = None
    renditions: list[Rendition] = Field(default_factory=list)
    verdicts: list[Verdict] = Field(default_factory=list)


class VideoList(BaseModel):
    videos: list[Video]
    count: int


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    name: str = Field(min_length=1, max_length=200)
    prompt: str | None = Field(default=None, max_length=2000)
    text: str | None = Field(default=None, max_length=200)
    colour: str | None = Field(default=None, max_length=200)
    material: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    price: str | None = Field(default=None, max_length=200)

    @field_validator("name", "prompt", "text", "colour", "material", "category", "price")
    @classmethod
    def _text(cls, value: str | None, info: Any) -> str | None:
        return _printable(value, info.field_name)


class RenditionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    aspect: Literal["16:9", "9:16", "1:1"] = "16:9"
    quality: Literal["720p", "1080p"] = "720p"
    fps: Literal[24, 30] = 30


class GenerationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    steps: int | None = Field(default=None, ge=1, le=200)
    speed: Speed = "quality"
    negative_prompt: str = Field(default="", max_length=2000)

    @field_validator("negative_prompt")
    @classmethod
    def _text(cls, value: str) -> str:
        return _printable(value, "negative_prompt") or ""


class PersonalisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=200)
    rendition: RenditionIn = Field(default_factory=lambda: RenditionIn(aspect="9:16"))
    user_fields: list[FieldName] = Field(default_factory=lambda: ["first_name"], max_length=20)


class CampaignIn(BaseModel):
    """A campaign over HTTP: products inline; brand kit by LUT preset (no server file paths)."""

    model_config = ConfigDict(extra="forbid")

    name: Slug
    template: Name | None = None
    prompt: str | None = Field(default=None, max_length=2000)
    text: str | None = Field(default=None, max_length=200)
    products: list[ProductIn] = Field(min_length=1, max_length=1000)
    renditions: list[RenditionIn] = Field(default_factory=lambda: [RenditionIn()], min_length=1, max_length=6)  # fmt: skip
    lut: Name | None = None
    generation: GenerationIn = Field(default_factory=GenerationIn)
    concurrency: int = Field(default=2, ge=1, le=64)
    policy: Name = "default"
    personalisation: PersonalisationIn | None = None

    @field_validator("prompt", "text")
    @classmethod
    def _text(cls, value: str | None, info: Any) -> str | None:
        return _printable(value, info.field_name)


class CampaignAccepted(BaseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    name: str
    products: int
    videos: int
    status: str


class Campaign(BaseModel):
    id: uuid.UUID
    name: str
    products: list[str]
    videos_by_status: dict[str, int]
    gpu_seconds: float
    cache_hits: int
    runs: list[dict[str, Any]]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")]
    sku: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    fields: dict[FieldName, Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=dict, max_length=20
    )

    @field_validator("fields")
    @classmethod
    def _values(cls, value: dict[str, str]) -> dict[str, str]:
        return {k: _printable(v, f"fields.{k}") or "" for k, v in value.items()}


class AdShotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2000)
    duration: float = Field(description="Seconds on screen (at least 1).")
    grade: Name | None = Field(default=None, description="LUT preset for this shot.")
    transition: Name = Field(
        default="cut", description="Into the next shot: cut, fade, wipeleft..."
    )
    transition_duration: float = 0.5
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)


class AdEndCardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    headline: str | None = Field(default=None, max_length=80)
    price: str | None = Field(default=None, max_length=40)
    cta: str | None = Field(default=None, max_length=40)
    background: Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")] = "#111111"
    duration: float = 3.0
    transition: Name = "fade"
    transition_duration: float = 0.5


class AdCueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: float
    end: float
    text: str = Field(min_length=1, max_length=84)


class AdIn(BaseModel):
    """A storyboard over HTTP (docs/ads.md): the YAML's fields, brand kit by LUT preset (no
    server file paths: no logo, music or background image)."""

    model_config = ConfigDict(extra="forbid")

    name: Slug
    template: Name | None = None
    shots: list[AdShotIn] = Field(min_length=1, max_length=12)
    end_card: AdEndCardIn = Field(default_factory=AdEndCardIn)
    captions: list[Annotated[str, StringConstraints(max_length=200)] | AdCueIn] = Field(
        default_factory=list, max_length=100
    )
    renditions: list[RenditionIn] = Field(default_factory=lambda: [RenditionIn(aspect="9:16")], min_length=1, max_length=6)  # fmt: skip
    lut: Name | None = None
    generation: GenerationIn = Field(default_factory=GenerationIn)
    policy: Name = "default"


class AdAccepted(BaseModel):
    id: uuid.UUID
    name: str
    shots: int
    duration_s: float
    status: str


class AdVideo(BaseModel):
    asset_id: uuid.UUID
    url: str
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    captions: dict[str, str] = Field(default_factory=dict, description="format -> URL")


class Ad(BaseModel):
    id: uuid.UUID
    name: str
    status: str
    error: str | None = None
    flow_run_id: uuid.UUID | None = None
    videos: list[AdVideo] = Field(default_factory=list, description="one per rendition")


class PersonalisationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    campaign: Slug = Field(description="A campaign submitted earlier with a personalisation section.")  # fmt: skip
    users: list[UserIn] = Field(min_length=1, max_length=1000)


class PersonalisationsAccepted(BaseModel):
    campaign: str
    ids: list[uuid.UUID]
    count: int


class LineageNodeOut(BaseModel):
    asset_id: uuid.UUID
    kind: str
    sha256: str
    depth: int
    child_id: uuid.UUID | None
    role: str | None
    stage: str | None
    activity_id: uuid.UUID | None
    model_version: str | None
    published: bool


class LineageOut(BaseModel):
    asset_id: uuid.UUID
    direction: Literal["upstream", "downstream"]
    nodes: list[LineageNodeOut]


class RetryAccepted(BaseModel):
    id: uuid.UUID
    flow_run_id: uuid.UUID | None
    status: str


class Health(BaseModel):
    ok: bool
    checks: dict[str, str] = Field(default_factory=dict)


class WebhookIn(BaseModel):
    """An endpoint to POST the caller's events to (Standard Webhooks signatures)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, description="http(s) URL that resolves to a public address.")
    events: list[Literal[WEBHOOK_EVENTS]] = Field(min_length=1, max_length=len(WEBHOOK_EVENTS))


class WebhookCreated(EndpointInfo):
    secret: str = Field(description="The signing secret (whsec_...): shown only in this answer.")


class WebhookList(BaseModel):
    endpoints: list[EndpointInfo]


class StyleOut(BaseModel):
    """A registered brand style: a LoRA applied to both experts (``style`` of a video)."""

    name: str
    asset_id: uuid.UUID
    sha256: str
    rank: int
    modules: int = Field(description="Adapted layers per expert.")


class StyleList(BaseModel):
    styles: list[StyleOut]


class DeliveryList(BaseModel):
    deliveries: list[DeliveryInfo]


# --- reviews (versions and review: docs/review.md) --------------------------------------------


class TakeOut(BaseModel):
    take: int = Field(description="1-based: the number `pick` names.")
    seed: int
    clip_id: uuid.UUID
    preview_id: uuid.UUID | None = None
    preview_url: str | None = Field(default=None, description="Presigned, private, short-lived.")
    passed: bool = Field(description="The visual gate's verdict on the take.")
    category: str | None = None
    score: float | None = Field(default=None, description="Automatic score, 0-1 (shown only).")
    enhanced_prompt: str | None = None


class ReviewOut(BaseModel):
    review_id: uuid.UUID
    status: Literal["awaiting_review", "approved", "published", "rejected"]
    created_at: datetime | None = None
    expires_at: datetime | None = None
    prompt: str | None = None
    campaign_id: uuid.UUID | None = None
    flow_run_id: uuid.UUID | None = None
    pick: int | None = None
    decided_by: str | None = None
    note: str | None = None
    decided_at: datetime | None = None
    publishing_run_id: uuid.UUID | None = Field(
        default=None, description="The flow run that published the approved take."
    )
    takes: list[TakeOut]


class ReviewList(BaseModel):
    reviews: list[ReviewOut]
    count: int


class ReviewDecisionIn(BaseModel):
    """approve (with ``pick``), reject (with ``note``, the reason) or more (``versions``)."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "more"]
    pick: int | None = Field(default=None, ge=1, le=1000, description="approve: the take.")
    note: str | None = Field(default=None, max_length=2000, description="Note or reason.")
    versions: int = Field(default=1, ge=1, le=16, description="more: how many takes.")

    @field_validator("note")
    @classmethod
    def _note_printable(cls, value: str | None) -> str | None:
        return _printable(value, "note")
