"""Personalised post-processing: the graded, branded, scored base comes from the content-keyed
cache (``render_base``); only this user's text overlay is rendered (``render_variant``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from db.models import AssetKind
from reelforge.jobs import VideoJob
from tasks.postprocess.audio import AudioSpec
from tasks.postprocess.logo import LogoSpec
from tasks.postprocess.overlay import TextSpec
from tasks.postprocess.renditions import (
    make_preview,
    make_thumbnail,
    render_base,
    render_variant,
    rendition_preset,
)
from tasks.postprocess.stage import LOGO_POSITION, BrandKit, Rendered, _cache_dir
from tasks.record import AssetRef, Output, StageContext, cache_file, local_copy, record_stage


def personalise_stage(
    ctx: StageContext, job: VideoJob, clip: AssetRef, brand: BrandKit, overlay: AssetRef | None
) -> Rendered:
    preset = rendition_preset(job.aspect, job.quality, job.fps)
    base = render_base(
        local_copy(clip),
        preset,
        lut=local_copy(brand.lut) if brand.lut else None,
        logo=LogoSpec(str(local_copy(brand.logo)), position=LOGO_POSITION[job.aspect])
        if brand.logo
        else None,
        audio=AudioSpec(music=str(local_copy(brand.music))) if brand.music else None,
        cache_dir=_cache_dir(),
    )
    with tempfile.TemporaryDirectory(prefix="rf-pers-") as tmp:
        out = Path(tmp) / f"{preset.name}.mp4"
        result = render_variant(base, out, TextSpec(job.text) if job.text else None)
        thumb = make_thumbnail(out, Path(tmp) / "thumbnail.jpg")
        preview = make_preview(out, Path(tmp) / "preview.webp")
        for path, sha in ((out, result.sha256), (Path(thumb.path), thumb.sha256)):
            cache_file(path, sha)  # the safety gate reads them next, on this machine
        used = [(clip, "input")]
        used += [(ref, role) for role, ref in brand if ref is not None]
        used += [(overlay, "overlay_text")] if overlay else []
        media = {"preset": preset.name, "width": result.width, "height": result.height}
        rendition, thumbnail, animated = record_stage(
            ctx,
            "postprocess",
            used=used,
            outputs=[
                Output(
                    out,
                    AssetKind.rendition,
                    media | {"fps": result.fps, "duration": result.duration, "variant": True},
                    "video/mp4",
                ),
                Output(Path(thumb.path), AssetKind.thumbnail, {"width": thumb.width}, "image/jpeg"),
                Output(
                    Path(preview.path), AssetKind.preview, {"width": preview.width}, "image/webp"
                ),
            ],
            parameters={
                **result.params,
                "base_key": base.key,
                "base_cache_hit": base.cache_hit,
                "seconds_base": base.seconds,
                "seconds_ffmpeg": result.seconds_ffmpeg,
            },
        )
    return Rendered(
        rendition=rendition,
        thumbnail=thumbnail,
        preview=animated,
        width=result.width,
        height=result.height,
        duration=result.duration,
    )
