"""Assembly stages of an ad: its own texts (captions, end card) through the text gate, then
the shots, end card, captions and music as one finished rendition per aspect.

``ad_texts`` records the captions (WebVTT and SRT, written by pysubs2) and the end card's
texts, and passes them through the existing text gate before any GPU time: a caption the
policy refuses blocks the ad before a shot is generated. ``assemble`` renders each rendition
in one ffmpeg invocation (``timeline.render_ad``), then signs, records and judges it with the
post-processing stage's own helpers (``bind_and_sign``, ``record_rendition``,
``judge_rendition``), so an ad is published under the same rules as any video.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from prefect import task
from pydantic import BaseModel

from db.models import AssetKind
from reelforge.core.caching import StageCache, digest, package_digest
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob
from reelforge.core.retry import TRANSIENT
from tasks.assemble.captions import write_captions
from tasks.assemble.timeline import AdPlan, render_ad
from tasks.inputs import BrandKit
from tasks.postprocess.renditions import PIPELINE_VERSION, postprocess_cache_dir, rendition_preset
from tasks.postprocess.stage import (
    Rendered,
    bind_and_sign,
    disclosure_for,
    label_to_draw,
    record_rendition,
    render_frames,
    rendered_from,
)
from tasks.record import (
    AssetRef,
    Output,
    StageContext,
    claim,
    failure_recorder,
    find_output,
    local_copy,
    record_stage,
    text_output,
)
from tasks.safety.stage import check_text_assets, judge_rendition


class AdTexts(BaseModel):
    """The ad's own texts, recorded and passed by the text gate."""

    captions: dict[str, AssetRef] = {}  # vtt, srt
    end_card: AssetRef | None = None


@task(
    name="ad-texts",
    cache_policy=StageCache(stage="ad-texts"),
    on_failure=[failure_recorder("ad_texts")],
    **TRANSIENT,
)
def ad_texts(ctx: StageContext, ad: AdPlan) -> AdTexts:
    """Write the captions (WebVTT, SRT) and the end card's text, record them and pass them
    through the text gate (a refused one raises ``TextBlocked``: nothing is generated)."""
    failpoint("ad-texts")
    cues = [dataclasses.asdict(cue) for cue in ad.cues]
    card = ad.card_text()
    with tempfile.TemporaryDirectory(prefix="rf-adtext-") as tmp:
        outputs: list[Output] = []
        if cues:
            files = write_captions(cues, Path(tmp), ad.name)
            outputs += [
                Output(
                    path,
                    AssetKind.captions,
                    {"format": fmt, "cues": len(cues)},
                    "text/vtt" if fmt == "vtt" else "application/x-subrip",
                )
                for fmt, path in files.items()
            ]
        if card:
            outputs.append(text_output(Path(tmp), "end-card.txt", card, AssetKind.overlay_text,
                                       role="end_card"))  # fmt: skip
        refs = record_stage(ctx, "ad_texts", outputs=outputs) if outputs else []
    captions = {ref.media["format"]: ref for ref in refs if ref.kind == AssetKind.captions}
    texts = AdTexts(captions=captions, end_card=refs[-1] if card else None)
    checked = {}
    if cues:
        checked["captions"] = (captions["vtt"], "\n".join(cue["text"] for cue in cues))
        checked["captions_srt"] = (captions["srt"], checked["captions"][1])
    if texts.end_card is not None:
        checked["end_card"] = (texts.end_card, card)
    if checked:
        check_text_assets(ctx, checked, ad.policy)
    return texts


@task(
    name="assemble",
    cache_policy=StageCache(stage="assemble"),
    on_failure=[failure_recorder("assemble")],
    **TRANSIENT,
)
def assemble(
    ctx: StageContext, ad: AdPlan, clips: list[AssetRef], brand: BrandKit, texts: AdTexts
) -> list[Rendered]:
    """Each of the ad's renditions: assembled in one ffmpeg pass, signed, recorded (derived
    from every shot, in order, the end card's inputs, the captions and the music) and judged
    by the visual gate on its render pass's frames. An identical earlier assembly is reused
    (and judged again)."""
    failpoint("assemble")
    made = []
    for job in ad.jobs:
        key = digest("assemble", PIPELINE_VERSION, package_digest(__name__), ad, job, clips,
                     brand, texts)  # fmt: skip
        with claim(f"assemble:{ctx.tenant_id}:{key}"):
            earlier = find_output(ctx, AssetKind.rendition, render_key=key)
            if earlier is not None:
                reused = rendered_from(earlier)
                judge_rendition(ctx, reused.rendition, reused.thumbnail, ad.policy, None)
                made.append(reused)
                continue
            made.append(_render(ctx, ad, job, clips, brand, texts, key))
    return made


def _render(
    ctx: StageContext,
    ad: AdPlan,
    job: VideoJob,
    clips: list[AssetRef],
    brand: BrandKit,
    texts: AdTexts,
    key: str,
) -> Rendered:
    preset = rendition_preset(job.aspect, job.quality, job.fps)
    disclosure = disclosure_for(job)
    frames = render_frames(job, preset)
    logo = str(local_copy(brand.logo)) if brand.logo else None
    end_card = dataclasses.replace(ad.end_card, logo=logo)
    with tempfile.TemporaryDirectory(prefix="rf-ad-") as tmp:
        out = Path(tmp) / f"{ad.name}-{preset.name.replace(':', 'x')}.mp4"
        result = render_ad(
            [str(local_copy(clip)) for clip in clips], ad.shots, end_card, ad.cues, out, preset,
            music=str(local_copy(brand.music)) if brand.music else None, voice=ad.voice,
            label=label_to_draw(disclosure), cache_dir=postprocess_cache_dir(), frames=frames,
        )  # fmt: skip
        result = bind_and_sign(ctx, out, result, frames, job=job, clip=clips[0], brand=brand,
                               disclosure=disclosure)  # fmt: skip
        used = [(clip, f"shot-{i}") for i, clip in enumerate(clips)]
        used += [(ref, role) for role, ref in brand if ref is not None]
        used += [(ref, f"captions-{fmt}") for fmt, ref in texts.captions.items()]
        used += [(texts.end_card, "end_card")] if texts.end_card else []
        rendered = record_rendition(
            ctx, out, result, used=used,
            media={"preset": preset.name, "render_key": key, "ad": ad.name,
                   "shots": [str(clip.id) for clip in clips], "starts": ad.starts()},
            parameters={"preset": preset.name, **result.params},
        )  # fmt: skip
        judge_rendition(ctx, rendered.rendition, rendered.thumbnail, ad.policy, frames)
        return rendered
