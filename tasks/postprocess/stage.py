"""Post-processing stage: brand kit in, one finished rendition plus thumbnail and preview out."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from db.models import AssetKind
from reelforge.failpoints import failpoint
from reelforge.jobs import VideoJob
from reelforge.settings import get_settings
from tasks.postprocess.audio import AudioSpec, probe_audio
from tasks.postprocess.logo import LogoSpec, validate_logo
from tasks.postprocess.lut import resolve_lut
from tasks.postprocess.overlay import TextSpec
from tasks.postprocess.renditions import (
    RenditionResult,
    make_preview,
    make_thumbnail,
    render_rendition,
    rendition_preset,
)
from tasks.record import AssetRef, Output, StageContext, cache_file, local_copy, record_stage

# 9:16 keeps the right edge clear of the platforms' action rail.
LOGO_POSITION = {"16:9": "top-right", "1:1": "top-right", "9:16": "top-left"}


class BrandKit(BaseModel):
    lut: AssetRef | None = None
    logo: AssetRef | None = None
    music: AssetRef | None = None


class Rendered(BaseModel):
    rendition: AssetRef
    thumbnail: AssetRef
    preview: AssetRef
    width: int
    height: int
    duration: float


def postprocess_cache_dir() -> Path:
    path = get_settings().home_dir / "cache" / "postprocess"
    path.mkdir(parents=True, exist_ok=True)
    return path


def ingest_brand_kit(ctx: StageContext, job: VideoJob) -> BrandKit:
    """Validate the brand inputs (bad ones fail here, before any GPU time) and record them."""
    outputs: dict[str, Output] = {}
    if job.lut:
        lut = resolve_lut(job.lut, postprocess_cache_dir())
        outputs["lut"] = Output(
            lut.path, AssetKind.lut, {"name": lut.name, "size": lut.size}, "text/plain"
        )
    if job.logo:
        info = validate_logo(job.logo)
        outputs["logo"] = Output(
            Path(job.logo), AssetKind.logo, {"width": info.width, "height": info.height}
        )
    if job.music:
        audio = probe_audio(job.music)
        outputs["music"] = Output(Path(job.music), AssetKind.music, {"duration": audio.duration})
    if not outputs:
        return BrandKit()
    refs = record_stage(ctx, "ingest_brand_kit", outputs=list(outputs.values()))
    return BrandKit(**dict(zip(outputs, refs, strict=True)))


def postprocess_stage(
    ctx: StageContext, job: VideoJob, clip: AssetRef, brand: BrandKit, overlay: AssetRef | None
) -> Rendered:
    preset = rendition_preset(job.aspect, job.quality, job.fps)
    with tempfile.TemporaryDirectory(prefix="rf-pp-") as tmp:
        out = Path(tmp) / f"{preset.name}.mp4"
        result = render_rendition(
            local_copy(clip),
            out,
            preset,
            lut=local_copy(brand.lut) if brand.lut else None,
            logo=LogoSpec(str(local_copy(brand.logo)), position=LOGO_POSITION[job.aspect])
            if brand.logo
            else None,
            audio=AudioSpec(music=str(local_copy(brand.music))) if brand.music else None,
            text=TextSpec(job.text) if job.text else None,
            cache_dir=postprocess_cache_dir(),
        )
        return record_rendition(
            ctx,
            out,
            result,
            used=rendition_inputs(clip, brand, overlay),
            media={"preset": preset.name},
            parameters={"preset": preset.name, **result.params},
        )


def rendition_inputs(
    clip: AssetRef, brand: BrandKit, overlay: AssetRef | None
) -> list[tuple[AssetRef, str]]:
    """What a rendition was made from, with each input's role, for its lineage."""
    used = [(clip, "input")]
    used += [(ref, role) for role, ref in brand if ref is not None]
    return used + ([(overlay, "overlay_text")] if overlay else [])


def record_rendition(
    ctx: StageContext,
    out: Path,
    result: RenditionResult,
    *,
    used: list[tuple[AssetRef, str]],
    media: dict[str, Any],
    parameters: dict[str, Any],
) -> Rendered:
    """Cut the thumbnail and preview from a finished rendition and record all three.

    The thumbnail's ``at`` tells the safety gate it is a frame of this rendition (judged
    with it, by the video rule); see ``tasks/safety/stage.py``.
    """
    thumb = make_thumbnail(out, out.parent / "thumbnail.jpg")
    preview = make_preview(out, out.parent / "preview.webp")
    for path, sha in ((out, result.sha256), (Path(thumb.path), thumb.sha256)):
        cache_file(path, sha)  # the safety gate reads them next, on this machine
    size = {"width": result.width, "height": result.height}
    rendition, thumbnail, animated = record_stage(
        ctx,
        "postprocess",
        used=used,
        outputs=[
            Output(
                out,
                AssetKind.rendition,
                media | size | {"fps": result.fps, "duration": result.duration},
                "video/mp4",
            ),
            Output(
                Path(thumb.path),
                AssetKind.thumbnail,
                {"width": thumb.width, "at": thumb.at},
                "image/jpeg",
            ),
            Output(Path(preview.path), AssetKind.preview, {"width": preview.width}, "image/webp"),
        ],
        parameters=parameters | {"seconds_ffmpeg": result.seconds_ffmpeg},
    )
    failpoint("rendition")  # crash tests: a rendition recorded, not yet checked or published
    return Rendered(
        rendition=rendition,
        thumbnail=thumbnail,
        preview=animated,
        **size,
        duration=result.duration,
    )
