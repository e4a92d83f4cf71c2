"""Prompt enhancement: templates, LLM rewriting, vocabulary mapping for the tiny model.

Plain, Prefect-free code; ``stage.py`` is the stage (its ``@task`` does the work with these).
"""

from .enhancer import BACKENDS, ENHANCER_VERSION, EnhanceResult, enhance
from .language import LanguageInfo, detect_language
from .normalize import MAX_PROMPT_CHARS, normalize_prompt
from .templates import Product, available_presets, render_template
from .vocabulary import VocabularyMatch, canonical_caption, map_to_vocabulary

__all__ = [
    "BACKENDS",
    "ENHANCER_VERSION",
    "MAX_PROMPT_CHARS",
    "EnhanceResult",
    "LanguageInfo",
    "Product",
    "VocabularyMatch",
    "available_presets",
    "canonical_caption",
    "detect_language",
    "enhance",
    "map_to_vocabulary",
    "normalize_prompt",
    "render_template",
]
