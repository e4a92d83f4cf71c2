"""Post-processing stage: brand kit in, one finished rendition plus thumbnail and preview out.

Personalised jobs render only their overlay on top of the shared, cached base.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import task
from pydantic import BaseModel

from db.models import AssetKind
from reelforge.core.caching import StageCache
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob
from reelforge.core.retry import TRANSIENT
from tasks.inputs import BrandKit
from tasks.postprocess.audio import AudioSpec
from tasks.postprocess.logo import LogoSpec
from tasks.postprocess.overlay import TextSpec
from tasks.postprocess.renditions import (
    RenditionResult,
    make_preview,
    make_thumbnail,
    postprocess_cache_dir,
    render_base,
    render_rendition,
    render_variant,
    rendition_preset,
)
from tasks.record import (
    AssetRef,
    Output,
    StageContext,
    cache_file,
    failure_recorder,
    local_copy,
    record_stage,
)

# 9:16 keeps the right edge clear of the platforms' action rail.
LOGO_POSITION = {"16:9": "top-right", "1:1": "top-right", "9:16": "top-left"}


class Rendered(BaseModel):
    rendition: AssetRef
    thumbnail: AssetRef
    preview: AssetRef
    width: int
    height: int
    duration: float


@task(
    name="post-process",
    cache_policy=StageCache(stage="postprocess"),
    on_failure=[failure_recorder("postprocess")],
    **TRANSIENT,
)
def postprocess(
    ctx: StageContext, job: VideoJob, clip: AssetRef, brand: BrandKit, overlay: AssetRef | None
) -> Rendered:
    """Grade, brand and encode the clip as the job's rendition, with thumbnail and preview."""
    failpoint("postprocess")
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


@task(
    name="personalise",
    cache_policy=StageCache(stage="personalise"),
    on_failure=[failure_recorder("postprocess")],
    **TRANSIENT,
)
def personalise(
    ctx: StageContext, job: VideoJob, clip: AssetRef, brand: BrandKit, overlay: AssetRef | None
) -> Rendered:
    """One user's rendition: the graded, branded, scored base comes from the content-keyed
    cache (``render_base``); only this user's text overlay is rendered (``render_variant``)."""
    failpoint("postprocess")
    preset = rendition_preset(job.aspect, job.quality, job.fps)
    base = render_base(
        local_copy(clip),
        preset,
        lut=local_copy(brand.lut) if brand.lut else None,
        logo=LogoSpec(str(local_copy(brand.logo)), position=LOGO_POSITION[job.aspect])
        if brand.logo
        else None,
        audio=AudioSpec(music=str(local_copy(brand.music))) if brand.music else None,
        cache_dir=postprocess_cache_dir(),
    )
    with tempfile.TemporaryDirectory(prefix="rf-pers-") as tmp:
        out = Path(tmp) / f"{preset.name}.mp4"
        result = render_variant(base, out, TextSpec(job.text) if job.text else None)
        return record_rendition(
            ctx,
            out,
            result,
            used=rendition_inputs(clip, brand, overlay),
            media={"preset": preset.name, "variant": True},
            parameters={
                **result.params,
                "base_key": base.key,
                "base_cache_hit": base.cache_hit,
                "seconds_base": base.seconds,
            },
        )
