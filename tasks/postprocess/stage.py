"""Post-processing stage: brand kit in, one finished rendition plus thumbnail and preview out.

Personalised jobs render only their overlay on top of the shared, cached base. Every rendition
carries the visible AI label (unless the tenant's policy turns it off) and is signed with its
content credentials (C2PA) before it is recorded, so the recorded rendition, the one the
safety gate checks and the one published are the same signed file.

The rendition's safety gate runs in this task, on the frames of the render's own ffmpeg pass
(``RenderFrames``: a second, model-sized output of the same invocation, tied to the file by its
video track, which signing leaves unchanged), so the rendition is not decoded again; its
verdicts are recorded before the task returns, and a blocked rendition never leaves it.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import task
from pydantic import BaseModel

from db.models import AssetKind
from reelforge.core.caching import StageCache, digest, package_digest
from reelforge.core.errors import InvalidInput
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob
from reelforge.core.retry import TRANSIENT
from reelforge.core.settings import get_settings
from reelforge.core.storage import sha256_file
from tasks.enhance.language import detect_language
from tasks.inputs import BrandKit
from tasks.postprocess.audio import AudioSpec
from tasks.postprocess.credentials import (
    Disclosure,
    Ingredient,
    ManifestFacts,
    build_manifest,
    load_signing_identity,
    read_credentials,
    sign_video,
)
from tasks.postprocess.logo import LogoSpec
from tasks.postprocess.overlay import AiLabel, TextSpec, ai_label_for
from tasks.postprocess.renditions import (
    PIPELINE_VERSION,
    RenditionPreset,
    RenditionResult,
    make_previews,
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
    claim,
    failure_recorder,
    find_output,
    local_copy,
    made_with,
    record_stage,
)
from tasks.safety.policy import load_policy
from tasks.safety.stage import judge_rendition
from tasks.safety.verdicts import ModerationError
from tasks.safety.visual import RenderFrames

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
    """Grade, brand and encode the clip as the job's rendition, with thumbnail and preview, and
    pass them through the safety gate."""
    failpoint("postprocess")
    key = render_key(job, clip, brand, overlay)
    # Identical jobs in flight render once: the others wait for the claim, then reuse it.
    with claim(f"postprocess:{ctx.tenant_id}:{key}"):
        earlier = find_output(ctx, AssetKind.rendition, render_key=key)
        if earlier is not None:
            reused = rendered_from(earlier)
            # judged again, on its file: this run's verdict, and a blocked one stops here
            judge_rendition(ctx, reused.rendition, reused.thumbnail, job.policy, None)
            return reused
        return render(ctx, job, clip, brand, overlay, key)


def render_key(job: VideoJob, clip: AssetRef, brand: BrandKit, overlay: AssetRef | None) -> str:
    """Everything a rendition is made from: the job (rendition, text, policy, prompt for the
    manifest), the clip, the brand kit, the overlay, and the code and pipeline versions."""
    return digest("postprocess", PIPELINE_VERSION, package_digest(__name__), job, clip, brand,
                  overlay)  # fmt: skip


def rendered_from(rendition: AssetRef) -> Rendered:
    """An earlier rendition with the thumbnail and preview made along with it."""
    made = made_with(rendition)
    media = rendition.media
    return Rendered(
        rendition=rendition,
        thumbnail=made[AssetKind.thumbnail],
        preview=made[AssetKind.preview],
        width=int(media["width"]),
        height=int(media["height"]),
        duration=float(media["duration"]),
    )


def render(
    ctx: StageContext,
    job: VideoJob,
    clip: AssetRef,
    brand: BrandKit,
    overlay: AssetRef | None,
    key: str,
) -> Rendered:
    """Grade, brand, encode and sign the rendition, then record it (its ``render_key`` in
    its media, for the next identical job), then judge it on its render pass's frames."""
    preset = rendition_preset(job.aspect, job.quality, job.fps)
    disclosure = disclosure_for(job)
    frames = render_frames(job, preset)
    with tempfile.TemporaryDirectory(prefix="rf-pp-") as tmp:
        out = Path(tmp) / f"{preset.name}.mp4"
        result = render_rendition(
            local_copy(clip),
            out,
            preset,
            **brand_inputs(job, brand),
            text=TextSpec(job.text) if job.text else None,
            label=label_to_draw(disclosure),
            cache_dir=postprocess_cache_dir(),
            frames=frames,
        )
        result = bind_and_sign(
            ctx, out, result, frames, job=job, clip=clip, brand=brand, disclosure=disclosure
        )
        rendered = record_rendition(
            ctx,
            out,
            result,
            used=rendition_inputs(clip, brand, overlay),
            media={"preset": preset.name, "render_key": key},
            parameters={"preset": preset.name, **result.params},
        )
        judge_rendition(ctx, rendered.rendition, rendered.thumbnail, job.policy, frames)
        return rendered


def render_frames(job: VideoJob, preset: RenditionPreset) -> RenderFrames | None:
    """The safety gate's sampler for this render pass; None without a moderation model (the
    gate then fails closed on the file and records why)."""
    try:
        return RenderFrames(job.policy, width=preset.width, height=preset.height, fps=preset.fps)
    except ModerationError:
        return None


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
    (preview,) = make_previews([(out, out.parent / "preview.webp")])
    for path, sha in ((out, result.sha256), (Path(thumb.path), thumb.sha256)):
        cache_file(path, sha)  # the safety gate reads them next, on this machine
    size = {"width": result.width, "height": result.height}
    c2pa = result.params.get("c2pa") or {}
    # what signing started from: the same bytes are signed once (see sign_rendition)
    unsigned = {"unsigned_sha256": c2pa["unsigned_sha256"]} if c2pa else {}
    rendition, thumbnail, animated = record_stage(
        ctx,
        "postprocess",
        used=used,
        outputs=[
            Output(
                out,
                AssetKind.rendition,
                media | size | {"fps": result.fps, "duration": result.duration} | unsigned,
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
    cache (``render_base``); only this user's text overlay is rendered (``render_variant``);
    then the gate, as in ``render``."""
    failpoint("postprocess")
    preset = rendition_preset(job.aspect, job.quality, job.fps)
    frames = render_frames(job, preset)
    base = render_base(
        local_copy(clip),
        preset,
        **brand_inputs(job, brand),
        cache_dir=postprocess_cache_dir(),
    )
    with tempfile.TemporaryDirectory(prefix="rf-pers-") as tmp:
        out = Path(tmp) / f"{preset.name}.mp4"
        disclosure = disclosure_for(job)
        text = TextSpec(job.text) if job.text else None
        result = render_variant(base, out, text, label=label_to_draw(disclosure), frames=frames)
        result = bind_and_sign(
            ctx, out, result, frames, job=job, clip=clip, brand=brand, disclosure=disclosure
        )
        rendered = record_rendition(
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
        judge_rendition(ctx, rendered.rendition, rendered.thumbnail, job.policy, frames)
        return rendered


def brand_inputs(job: VideoJob, brand: BrandKit) -> dict[str, Any]:
    """The brand kit as the renderer's arguments (local copies of its assets)."""
    return {
        "lut": local_copy(brand.lut) if brand.lut else None,
        "logo": LogoSpec(str(local_copy(brand.logo)), position=LOGO_POSITION[job.aspect])
        if brand.logo
        else None,
        "audio": AudioSpec(music=str(local_copy(brand.music))) if brand.music else None,
    }


def bind_and_sign(
    ctx: StageContext,
    out: Path,
    result: RenditionResult,
    frames: Any,
    *,
    job: VideoJob,
    clip: AssetRef,
    brand: BrandKit,
    disclosure: Disclosure,
) -> RenditionResult:
    """Tie the render pass's frames to the file they came from, then sign it."""
    if frames:
        frames.bind(out)
    return sign_rendition(ctx, out, result, job=job, clip=clip, brand=brand, disclosure=disclosure)


# --- content credentials and the AI label -----------------------------------------------------


def disclosure_for(job: VideoJob) -> Disclosure:
    """The AI label of a job: in the language of its prompt, drawn unless the tenant's safety
    policy sets ``ai_label: false`` (recorded in the manifest either way)."""
    label = ai_label_for(detect_language(job.prompt).language)
    return Disclosure(load_policy(job.policy).ai_label, label.text, label.language)


def label_to_draw(disclosure: Disclosure) -> AiLabel | None:
    return AiLabel(disclosure.text, disclosure.language) if disclosure.visible else None


def sign_rendition(
    ctx: StageContext,
    out: Path,
    result: RenditionResult,
    *,
    job: VideoJob,
    clip: AssetRef,
    brand: BrandKit,
    disclosure: Disclosure,
) -> RenditionResult:
    """Sign the rendition at ``out`` in place (when REELFORGE_C2PA_SIGNING is on) and return
    its result with the signed file's sha256 and size, and what was signed in ``params``."""
    settings = get_settings()
    if not settings.c2pa_signing:
        return dataclasses.replace(result, params=result.params | {"c2pa": None})
    started = time.perf_counter()
    identity = load_signing_identity(settings)
    earlier = find_output(ctx, AssetKind.rendition, unsigned_sha256=result.sha256)
    if earlier is not None:
        # The same bytes were signed before: reuse that file, since a new signature differs
        # in its random parts and would make the same rendition a second asset.
        shutil.copyfile(local_copy(earlier), out)
        return _signed(out, result, identity, started, reused=earlier)
    used = (
        ("raw_clip", "raw clip", clip),
        ("logo", "logo", brand.logo),
        ("music", "music", brand.music),
    )
    facts = ManifestFacts(
        title=out.name,
        model_id=str(clip.media.get("model_id", "unknown")),
        model_version=str(clip.media.get("model_version", "unknown")),
        pipeline=PIPELINE_VERSION,
        ingredients=[
            Ingredient(
                role,
                title,
                mimetypes.guess_type(ref.uri)[0] or "application/octet-stream",
                str(ref.id),
                ref.sha256,
            )
            for role, title, ref in used
            if ref is not None
        ],
        disclosure=disclosure,
        graded=brand.lut is not None,
        prompt=job.prompt if load_policy(job.policy).manifest_prompt else None,
        edits={"preset": result.preset, "lut": result.params.get("lut")},
    )
    sign_video(out, out, build_manifest(facts), identity)
    return _signed(out, result, identity, started)


def _signed(
    out: Path,
    result: RenditionResult,
    identity: Any,
    started: float,
    reused: AssetRef | None = None,
) -> RenditionResult:
    signed = {
        "signer": identity.subject,
        "alg": identity.alg,
        "unsigned_sha256": result.sha256,
        "seconds": round(time.perf_counter() - started, 4),
        "reused": str(reused.id) if reused else None,
    }
    return dataclasses.replace(
        result,
        sha256=sha256_file(out),
        size_bytes=out.stat().st_size,
        params=result.params | {"c2pa": signed},
    )


def require_signed(ref: AssetRef) -> None:
    """Publish's check: the rendition carries a valid ReelForge manifest (InvalidInput if not)."""
    try:
        credentials = read_credentials(local_copy(ref))
    except InvalidInput as exc:
        raise InvalidInput(
            f"rendition {ref.id} cannot be published with REELFORGE_C2PA_SIGNING on: {exc}; "
            "post-process it again"
        ) from None
    if not credentials.by_reelforge:
        raise InvalidInput(
            f"rendition {ref.id} is signed by {credentials.claim_generator!r}, not ReelForge; "
            "not published: post-process it again"
        )
    if not credentials.valid:
        raise InvalidInput(
            f"rendition {ref.id} fails C2PA validation ({', '.join(credentials.failures)}); "
            "not published: post-process it again"
        )
