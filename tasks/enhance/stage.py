"""Enhancement stage: the raw prompt rewritten for the generator, with its derivation."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task

from db.models import AssetKind
from reelforge.core.caching import StageCache
from reelforge.core.failpoints import failpoint
from reelforge.core.jobs import VideoJob
from reelforge.core.retry import TRANSIENT
from tasks.enhance.enhancer import EnhanceResult, enhance
from tasks.record import AssetRef, StageContext, failure_recorder, record_stage, text_output


@task(
    name="enhance-prompt",
    cache_policy=StageCache(stage="enhance"),
    on_failure=[failure_recorder("enhance")],
    **TRANSIENT,
)
def enhance_prompt(
    ctx: StageContext, job: VideoJob, prompt: AssetRef
) -> tuple[AssetRef, EnhanceResult]:
    """The prompt rewritten for the generator, recorded as derived from the raw prompt."""
    failpoint("enhance")
    result = enhance(job.prompt, template=job.template, product=job.product, seed=job.seed)
    with tempfile.TemporaryDirectory(prefix="rf-enh-") as tmp:
        output = text_output(
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
