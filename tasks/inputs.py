"""Inputs stage: the texts a job brings and its brand kit, validated and recorded as assets.

Bad brand inputs (an unreadable logo, a broken LUT) fail here, before any GPU time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task
from pydantic import BaseModel

from db.models import AssetKind
from reelforge.core.caching import StageCache
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob
from reelforge.core.retry import TRANSIENT
from tasks.postprocess.audio import probe_audio
from tasks.postprocess.logo import validate_logo
from tasks.postprocess.lut import resolve_lut
from tasks.postprocess.renditions import postprocess_cache_dir
from tasks.record import AssetRef, Output, StageContext, failure_recorder, record_stage, text_output


class BrandKit(BaseModel):
    lut: AssetRef | None = None
    logo: AssetRef | None = None
    music: AssetRef | None = None


@task(
    name="record-inputs",
    cache_policy=StageCache(stage="inputs"),
    on_failure=[failure_recorder("ingest")],
    **TRANSIENT,
)
def record_inputs(ctx: StageContext, job: VideoJob) -> dict[AssetKind, AssetRef]:
    """The texts a job brings: its prompt and, for personalised runs, its overlay text."""
    failpoint("inputs")
    texts = {"prompt": (job.prompt, AssetKind.prompt)}
    if job.text:
        texts["overlay_text"] = (job.text, AssetKind.overlay_text)
    with tempfile.TemporaryDirectory(prefix="rf-text-") as tmp:
        outputs = [
            text_output(Path(tmp), f"{name}.txt", text, kind, role=name)
            for name, (text, kind) in texts.items()
        ]
        refs = record_stage(ctx, "ingest", outputs=outputs)
    return {kind: ref for (_, kind), ref in zip(texts.values(), refs, strict=True)}


@task(
    name="ingest-brand-kit",
    cache_policy=StageCache(stage="brand"),
    on_failure=[failure_recorder("ingest_brand_kit")],
    **TRANSIENT,
)
def ingest_brand_kit(ctx: StageContext, job: VideoJob) -> BrandKit:
    """Validate the brand inputs (bad ones fail here, before any GPU time) and record them."""
    failpoint("brand")
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
