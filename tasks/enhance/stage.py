"""Enhancement stage: record the raw prompt, enhance it, record both with a derivation."""

from __future__ import annotations

import tempfile
from pathlib import Path

from db.models import AssetKind
from reelforge.jobs import VideoJob
from tasks.enhance.enhancer import EnhanceResult, enhance
from tasks.record import AssetRef, Output, StageContext, record_stage


def _text_output(directory: Path, name: str, text: str, kind: AssetKind, **media) -> Output:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return Output(path=path, kind=kind, media=media, media_type="text/plain; charset=utf-8")


def record_texts(
    ctx: StageContext, stage: str, texts: dict[str, tuple[str, AssetKind]]
) -> dict[str, AssetRef]:
    """Store input texts (prompt, overlay text) as assets of an ingest activity."""
    with tempfile.TemporaryDirectory(prefix="rf-text-") as tmp:
        outputs = [
            _text_output(Path(tmp), f"{name}.txt", text, kind, role=name)
            for name, (text, kind) in texts.items()
        ]
        refs = record_stage(ctx, stage, outputs=outputs)
    return dict(zip(texts, refs, strict=True))


def record_inputs_stage(ctx: StageContext, job: VideoJob) -> dict[AssetKind, AssetRef]:
    """The texts a job brings: its prompt and, for personalised runs, its overlay text."""
    texts = {"prompt": (job.prompt, AssetKind.prompt)}
    if job.text:
        texts["overlay_text"] = (job.text, AssetKind.overlay_text)
    refs = record_texts(ctx, "ingest", texts)
    return {kind: refs[name] for name, (_, kind) in texts.items()}


def enhance_stage(
    ctx: StageContext, job: VideoJob, prompt: AssetRef
) -> tuple[AssetRef, EnhanceResult]:
    result = enhance(job.prompt, template=job.template, product=job.product, seed=job.seed)
    with tempfile.TemporaryDirectory(prefix="rf-enh-") as tmp:
        output = _text_output(
            Path(tmp),
            "enhanced.txt",
            result.enhanced_prompt,
            AssetKind.enhanced_prompt,
            language=result.output_language,
            path=result.path,
        )
        (enhanced,) = record_stage(
            ctx,
            "enhance",
            used=[(prompt, "prompt")],
            outputs=[output],
            parameters={
                "enhancer": result.path,
                "enhancer_version": result.enhancer_version,
                "template": result.template,
                "detected_language": result.detected_language,
                "output_language": result.output_language,
                "fallback_reason": result.fallback_reason,
                **result.parameters,
            },
            model_version=result.model,
        )
    return enhanced, result
