"""Input normalisation and validation for prompts (plain, Prefect-free).

Rules (documented in notes/README-enhance.md):

* Unicode NFC normalisation (NFKC would rewrite full-width CJK punctuation and brand names).
* Control characters (Unicode category ``Cc`` except tab/newline, plus ``Cf`` format characters
  such as zero-width spaces and bidi overrides) are **stripped**, with a notice.
* Tabs, newlines and runs of whitespace collapse to one space; leading/trailing space is trimmed.
* Refused with :class:`~reelforge.core.errors.InvalidInput` (exit code 2): empty or whitespace-only
  prompts, prompts longer than :data:`MAX_PROMPT_CHARS` characters (after normalisation), and
  prompts with no letters or digits at all (emoji only, punctuation only).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from reelforge.core.errors import InvalidInput

#: Longest prompt accepted, in characters after normalisation. Wan2.2's text encoder reads
#: 512 tokens; 2,000 characters is well above any useful prompt and far below abuse sizes.
MAX_PROMPT_CHARS = 2000

_KEEP_WS = {"\t", "\n", "\r"}
_WS_RUN = re.compile(r"\s+")


@dataclass(frozen=True)
class NormalizedPrompt:
    text: str
    notices: list[str] = field(default_factory=list)


def _is_meaningful(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in ("L", "N")


def normalize_prompt(raw: str | None, *, max_chars: int = MAX_PROMPT_CHARS) -> NormalizedPrompt:
    """Return the cleaned prompt and notices, or raise InvalidInput with a one-line message."""
    if raw is None or raw == "":
        raise InvalidInput("the prompt is empty: pass a short description of the video")
    if not isinstance(raw, str):
        raise InvalidInput(f"the prompt must be text, got {type(raw).__name__}")
    notices: list[str] = []
    text = unicodedata.normalize("NFC", raw)
    stripped = 0
    out: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in _KEEP_WS:
            out.append(" ")
        elif cat in ("Cc", "Cf") and ch != "\u200d":  # ZWJ kept: it joins emoji sequences
            stripped += 1
        else:
            out.append(ch)
    if stripped:
        notices.append(f"stripped {stripped} control/format character(s)")
    text = _WS_RUN.sub(" ", "".join(out)).strip()
    if not text:
        raise InvalidInput(
            "the prompt is blank (only whitespace or control characters): describe the video"
        )
    if len(text) > max_chars:
        raise InvalidInput(
            f"the prompt is {len(text)} characters long; the maximum is {max_chars}: shorten it"
        )
    if not any(_is_meaningful(ch) for ch in text):
        raise InvalidInput(
            "the prompt has no words (only emoji, symbols or punctuation): describe the video in words"
        )
    return NormalizedPrompt(text=text, notices=notices)
