"""The enhance() entry point: normalise, detect language, pick a path, fall back, audit.

Paths (``EnhanceResult.path``): ``template`` | ``llm-transformers`` | ``llm-openai`` |
``vocabulary`` | ``original``. Fallback chain: LLM -> template -> original; vocabulary ->
original (the tiny model cannot use a director-style prompt). The reason for any fallback is
recorded in ``fallback_reason``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from reelforge.core.errors import InvalidInput
from reelforge.core.settings import get_settings

from .cache import EnhanceCache
from .language import SUPPORTED_LANGUAGES, detect_language
from .llm import (
    LLMError,
    LLMParams,
    OpenAIBackend,
    TransformersBackend,
    build_messages,
    cache_key,
)
from .normalize import normalize_prompt
from .templates import Product, available_presets, render_template
from .vocabulary import VocabularyMatch, map_to_vocabulary

log = logging.getLogger(__name__)

ENHANCER_VERSION = "1.0.0"
EnhancerPath = Literal["template", "llm-transformers", "llm-openai", "vocabulary", "original"]
Backend = Literal["auto", "template", "transformers", "openai", "vocabulary", "none"]
BACKENDS: tuple[str, ...] = ("auto", "template", "transformers", "openai", "vocabulary", "none")
LLM_PATHS = ("transformers", "openai")


class EnhanceResult(BaseModel):
    """What the pipeline generates from, plus everything lineage needs."""

    original_prompt: str = Field(description="The prompt exactly as given.")
    normalized_prompt: str = Field(description="After control-character and whitespace cleanup.")
    enhanced_prompt: str = Field(description="The prompt to generate from.")
    detected_language: str = Field(description="en, zh, ja, ko or und.")
    output_language: str = Field(description="Language of enhanced_prompt.")
    path: EnhancerPath = Field(description="The enhancer that produced enhanced_prompt.")
    requested_backend: str = Field(description="The backend asked for (after resolving auto).")
    enhancer_version: str = ENHANCER_VERSION
    template: str | None = Field(default=None, description="Preset used, if any.")
    model: str | None = Field(default=None, description="LLM identity, if an LLM was used.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    fallback_reason: str | None = None
    notices: list[str] = Field(default_factory=list)
    cached: bool = False
    slots: dict[str, str] | None = Field(default=None, description="Template director slots.")
    vocabulary: VocabularyMatch | None = None
    original_sha256: str
    enhanced_sha256: str
    duration_s: float


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _resolve_backend(backend: str, template: str | None, settings: Any) -> str:
    if backend != "auto":
        return backend
    if template:
        return "template"
    if settings.generator == "tiny":
        return "vocabulary"
    if settings.enhance_openai_url:
        return "openai"
    if settings.enhance_model_dir:
        return "transformers"
    return "template"


def rewrite_varies_with_seed(template: str | None = None, settings: Any = None) -> bool:
    """Whether two seeds of one prompt can be rewritten differently: only an LLM samples; the
    template, vocabulary and verbatim paths depend on the prompt alone."""
    settings = settings or get_settings()
    return _resolve_backend(settings.enhance_backend, template, settings) in LLM_PATHS


def make_llm_backend(kind: str, settings: Any) -> TransformersBackend | OpenAIBackend:
    if kind == "transformers":
        if not settings.enhance_model_dir:
            raise LLMError("REELFORGE_ENHANCE_MODEL_DIR is not set")
        return TransformersBackend(Path(settings.enhance_model_dir), device=settings.device)
    if not settings.enhance_openai_url:
        raise LLMError("REELFORGE_ENHANCE_OPENAI_URL is not set")
    key = settings.enhance_api_key.get_secret_value() if settings.enhance_api_key else None
    return OpenAIBackend(
        settings.enhance_openai_url,
        model=settings.enhance_openai_model,
        api_key=key,
        timeout_s=settings.enhance_timeout_s,
        retries=settings.enhance_retries,
    )


def enhance(
    prompt: str,
    *,
    template: str | None = None,
    product: Product | dict[str, Any] | None = None,
    backend: Backend | None = None,
    output_language: str | None = None,
    seed: int = 0,
    settings: Any = None,
    llm: TransformersBackend | OpenAIBackend | None = None,
    cache: EnhanceCache | bool | None = True,
) -> EnhanceResult:
    """Enhance ``prompt``; raises InvalidInput for refused input, never for backend failures.

    ``backend`` defaults to ``settings.enhance_backend``; ``llm`` overrides the LLM backend
    built from settings (tests, resident workers); ``cache`` is True (default cache under
    REELFORGE_HOME), False (off) or an EnhanceCache.
    """
    t0 = time.perf_counter()
    if settings is None:
        settings = get_settings()
    original = prompt
    norm = normalize_prompt(prompt)
    notices = list(norm.notices)
    text = norm.text

    if isinstance(product, dict):
        try:
            product = Product.model_validate(product)
        except Exception as exc:  # pydantic ValidationError -> one line
            first = exc.errors()[0] if hasattr(exc, "errors") else {}
            where = ".".join(str(p) for p in first.get("loc", ())) or "product"
            raise InvalidInput(f"invalid product field {where}: {first.get('msg', exc)}") from exc

    backend = backend or settings.enhance_backend
    if backend not in BACKENDS:
        raise InvalidInput(
            f"unknown enhancer backend {backend!r}: choose one of {', '.join(BACKENDS)}"
        )
    lang_info = detect_language(text)
    if lang_info.notice:
        notices.append(lang_info.notice)
    if lang_info.language == "und":
        notices.append("language not recognised (supported: en, zh, ja, ko); using en")
    out_lang = output_language or settings.enhance_output_language
    if out_lang == "same":
        out_lang = lang_info.language if lang_info.language in SUPPORTED_LANGUAGES else "en"
    if out_lang not in SUPPORTED_LANGUAGES:
        raise InvalidInput(
            f"unknown output language {out_lang!r}: choose one of same, {', '.join(SUPPORTED_LANGUAGES)}"
        )
    if template is not None and template not in available_presets(out_lang):
        raise InvalidInput(
            f"unknown template {template!r}: choose one of {', '.join(available_presets(out_lang))}"
        )

    resolved = _resolve_backend(backend, template, settings)
    if settings.generator == "tiny" and resolved not in ("vocabulary", "none"):
        notices.append(
            "the tiny generator only understands its caption vocabulary; "
            "the vocabulary backend suits it better"
        )
    preset = template or settings.enhance_template
    base: dict[str, Any] = {
        "original_prompt": original,
        "normalized_prompt": text,
        "detected_language": lang_info.language,
        "output_language": out_lang,
        "requested_backend": resolved,
        "notices": notices,
        "original_sha256": _sha(original),
    }

    def finish(enhanced: str, path: str, **extra: Any) -> EnhanceResult:
        return EnhanceResult(
            **base,
            enhanced_prompt=enhanced,
            path=path,  # type: ignore[arg-type]
            enhanced_sha256=_sha(enhanced),
            duration_s=round(time.perf_counter() - t0, 6),
            **extra,
        )

    def via_template(reason: str | None) -> EnhanceResult:
        try:
            res = render_template(preset, language=out_lang, product=product, brief=text)
        except InvalidInput as exc:
            if reason is None:
                raise
            return finish(text, "original", fallback_reason=f"{reason}; template: {exc}")
        return finish(
            res.prompt,
            "template",
            template=preset,
            slots=res.slots,
            parameters={"preset": preset, "product": product.model_dump() if product else None},
            fallback_reason=reason,
        )

    if resolved == "none":
        return finish(text, "original")
    if resolved == "template":
        return via_template(None)
    if resolved == "vocabulary":
        # Product fields can supply a missing colour or shape; on a tie the prompt wins.
        extra = [product.colour, product.category, product.name] if product else []
        map_text = " ".join([text, *(x for x in extra if x)])
        match = map_to_vocabulary(map_text, language=lang_info.language, output_language=out_lang)
        params = {"ambiguous": match.ambiguous}
        if match.caption is None:
            reason = f"vocabulary: no {', no '.join(match.missing)} found in the prompt"
            return finish(
                text, "original", vocabulary=match, parameters=params, fallback_reason=reason
            )
        return finish(match.caption, "vocabulary", vocabulary=match, parameters=params)

    # LLM paths
    params = LLMParams(
        max_new_tokens=settings.enhance_max_new_tokens,
        temperature=settings.enhance_temperature,
        seed=seed,
    )
    product_dict = product.model_dump() if product else None
    messages = build_messages(text, output_language=out_lang, product=product_dict)
    try:
        engine = llm or make_llm_backend(resolved, settings)
    except LLMError as exc:
        return via_template(f"{resolved}: {exc}")
    model_id = engine.model_id
    key = cache_key(
        version=ENHANCER_VERSION,
        path=engine.path_name,
        model=model_id,
        messages=messages,
        params=params.as_dict(),
    )
    store: EnhanceCache | None
    if cache is True:
        store = EnhanceCache.default()
    elif cache is False or cache is None:
        store = None
    else:
        store = cache
    llm_params = {**params.as_dict(), "cache_key": key}
    if store is not None and (hit := store.get(key)) and isinstance(hit.get("text"), str):
        return finish(
            hit["text"], engine.path_name, model=model_id, parameters=llm_params, cached=True
        )
    try:
        out = engine.generate(messages, params)
    except LLMError as exc:
        log.warning("prompt enhancement via %s failed: %s; using template", engine.path_name, exc)
        return via_template(f"{engine.path_name}: {exc}")
    if isinstance(engine, OpenAIBackend):
        llm_params["attempts"] = engine.attempts
    if store is not None:
        try:
            store.put(key, {"text": out, "model": model_id, "created": time.time()})
        except OSError as exc:
            notices.append(f"LLM cache not written: {type(exc).__name__}")
    return finish(out, engine.path_name, model=model_id, parameters=llm_params)
