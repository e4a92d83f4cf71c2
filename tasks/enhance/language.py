"""Script-based language detection for zh / en / ja / ko (no model, deterministic).

Rules, applied to letters only (digits, punctuation and emoji are ignored):

* any kana (hiragana/katakana) -> ``ja`` (Japanese mixes kanji with kana);
* else any hangul -> ``ko``;
* else any Han ideographs -> ``zh``;
* else Latin letters -> ``en``;
* anything else (Cyrillic, Arabic, ...) -> ``und`` (undetermined; enhancers then use English).

Mixed scripts: CJK wins over Latin, because CJK prompts routinely carry Latin brand or model
names ("iPhone 手机壳" is Chinese). If both kana and hangul occur, the script with more letters
wins. ``mixed`` is set and the scripts found are listed, so the caller can record a notice.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

SUPPORTED_LANGUAGES = ("en", "zh", "ja", "ko")


def _script(ch: str) -> str | None:
    cp = ord(ch)
    if 0x3040 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9D:
        return "kana"
    if (
        0xAC00 <= cp <= 0xD7AF
        or 0x1100 <= cp <= 0x11FF
        or 0x3130 <= cp <= 0x318F
        or 0xA960 <= cp <= 0xA97F
        or 0xD7B0 <= cp <= 0xD7FF
    ):
        return "hangul"
    if (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2FA1F
        or 0xF900 <= cp <= 0xFAFF
        or cp == 0x3005  # 々 iteration mark
    ):
        return "han"
    if not unicodedata.category(ch).startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    if name.startswith("LATIN") or name.startswith("FULLWIDTH LATIN"):
        return "latin"
    return "other"


@dataclass(frozen=True)
class LanguageInfo:
    language: str  # en | zh | ja | ko | und
    scripts: dict[str, int]  # letters per script
    mixed: bool

    @property
    def notice(self) -> str | None:
        if not self.mixed:
            return None
        found = "+".join(sorted(self.scripts))
        return f"mixed scripts ({found}); treated as {self.language}"


def detect_language(text: str) -> LanguageInfo:
    counts: dict[str, int] = {}
    for ch in text:
        s = _script(ch)
        if s is not None:
            counts[s] = counts.get(s, 0) + 1
    kana, hangul = counts.get("kana", 0), counts.get("hangul", 0)
    if kana and hangul:
        lang = "ja" if kana >= hangul else "ko"
    elif kana:
        lang = "ja"
    elif hangul:
        lang = "ko"
    elif counts.get("han"):
        lang = "zh"
    elif counts.get("latin"):
        lang = "en"
    else:
        lang = "und"
    # Kanji inside Japanese is not "mixed"; Latin inside CJK or kana+hangul is.
    families = {"cjk" if s in ("kana", "han") else s for s in counts}
    mixed = len(families) > 1
    return LanguageInfo(language=lang, scripts=dict(sorted(counts.items())), mixed=mixed)
