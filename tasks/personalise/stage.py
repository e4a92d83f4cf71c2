"""Personalised post-processing: the graded, branded, scored base comes from the content-keyed
cache (``render_base``); only this user's text overlay is rendered (``render_variant``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from reelforge.jobs import VideoJob
from tasks.postprocess.audio import AudioSpec
from tasks.postprocess.logo import LogoSpec
from tasks.postprocess.overlay import TextSpec
from tasks.postprocess.renditions import (
    render_base,
    render_variant,
    rendition_preset,
)
from tasks.postprocess.stage import (
    LOGO_POSITION,
    BrandKit,
    Rendered,
    postprocess_cache_dir,
    record_rendition,
    rendition_inputs,
)
from tasks.record import AssetRef, StageContext, local_copy


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
