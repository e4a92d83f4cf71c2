"""The job a caller submits (CLI, API, campaign row) and what comes back."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reelforge.core.errors import InvalidInput

# Speed profiles, fastest last: steps, step cache and distillation LoRA per profile are in
# models/generator.py (SpeedProfile).
Speed = Literal["quality", "fast", "turbo"]


class VideoJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    prompt: str = Field(description="What to make; free text or a brief for a template.")
    template: str | None = Field(default=None, description="Enhancement preset.")
    product: dict[str, Any] | None = Field(default=None, description="Product fields.")
    negative_prompt: str = ""
    seed: int = Field(default=0, ge=0)
    steps: int | None = Field(default=None, ge=1, le=200)
    speed: Speed = "quality"
    generation_preset: str | None = Field(
        default=None, description="The model's size preset (e.g. 480p-landscape for Wan)."
    )
    seconds: float | None = Field(
        default=None, gt=0, le=60, description="Clip length (default: the model's)."
    )
    style: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,63}$",
        description="The tenant's registered style LoRA (`reelforge style add`).",
    )
    style_strength: float = Field(default=1.0, ge=0.0, le=2.0)
    aspect: Literal["16:9", "9:16", "1:1"] = "16:9"
    quality: Literal["720p", "1080p"] = "720p"
    fps: Literal[24, 30] = 30
    lut: str | None = Field(default=None, description="Preset name or path of a .cube file.")
    logo: Path | None = None
    music: Path | None = None
    text: str | None = Field(default=None, description="Overlay text (name, price, CTA).")
    policy: str = Field(default="default", description="Safety policy name.")
    audience: str | None = Field(default=None, description="End user id for personalised runs.")
    campaign: str | None = Field(
        default=None, max_length=200, description="Campaign the job belongs to (lineage)."
    )


def parse_style(value: str | None) -> dict[str, Any]:
    """``NAME`` or ``NAME:STRENGTH`` (CLI, campaign files) as VideoJob's style fields."""
    if value is None:
        return {}
    name, _, strength = value.partition(":")
    if not strength:
        return {"style": name}
    try:
        return {"style": name, "style_strength": float(strength)}
    except ValueError:
        raise InvalidInput(
            f"style {value!r}: strength {strength!r} is not a number; write NAME or NAME:0.8"
        ) from None


class PublishedVideo(BaseModel):
    asset_id: uuid.UUID
    uri: str
    url: str
    sha256: str
    width: int
    height: int
    duration: float
    thumbnail_url: str | None = None
    # files published beside the video (an ad's captions), presigned URL by name
    attachments: dict[str, str] = Field(default_factory=dict)


class VideoResult(BaseModel):
    flow_run_id: uuid.UUID | None
    prompt_asset_id: uuid.UUID
    enhanced_prompt: str
    raw_clip_asset_id: uuid.UUID
    generation_cached: bool
    video: PublishedVideo
