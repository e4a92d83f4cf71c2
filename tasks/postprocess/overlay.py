"""Text overlays (a name, a price, a call to action) with CJK support and no filter injection.

Safety: user text never enters the filter graph. It is written to a file and drawn with
``drawtext=textfile=...:expansion=none`` (so ``%{...}`` is not expanded either); the only things
inside the graph are our own temp-file path and the font path, both escaped with
`escape_filter_value`. Quotes, colons, backslashes, brackets, semicolons and newlines in the
text are therefore drawn literally.

Behaviour (documented and tested):

* Control characters other than newlines are removed; text longer than 1000 characters is
  refused; empty text is refused.
* The font is the first installed font that covers every character (a CJK font from the
  ``fonts-wqy-zenhei`` or ``fonts-noto-cjk`` Debian package first). Characters no installed font
  covers (e.g. emoji) are dropped and listed in ``TextLayout.dropped`` rather than drawn as boxes.
* Wrapping: greedy, by words for Latin/Hangul text and by character for Chinese/Japanese, using
  the font's own advance widths (PIL, same FreeType font file as ffmpeg's drawtext). The font
  shrinks (to no less than 1/60 of the frame height) until the text fits its box inside the
  safe zone; if it still does not fit, the last line ends with an ellipsis.
"""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reelforge.core.errors import InvalidInput, ReelForgeError

from .ffmpeg import escape_filter_value

MAX_TEXT_CHARS = 1000

CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
LATIN_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
POSITIONS = ("bottom", "top", "center")


def _fc_list(pattern: str) -> list[str]:
    try:
        out = subprocess.run(
            ["fc-list", pattern, "file"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted({ln.split(":")[0].strip() for ln in out.splitlines() if ln.strip()})


@lru_cache(maxsize=1)
def installed_fonts() -> tuple[str, ...]:
    """CJK-capable fonts first, then Latin fallbacks; only files that exist."""
    found: list[str] = [p for p in CJK_FONT_CANDIDATES if os.path.isfile(p)]
    for pat in (":lang=zh", ":lang=ja", ":lang=ko"):
        found += [p for p in _fc_list(pat) if p not in found]
    found += [p for p in LATIN_FONT_CANDIDATES if os.path.isfile(p) and p not in found]
    return tuple(found)


def find_cjk_font() -> str:
    for p in installed_fonts():
        if font_covers(p, "中文日本語한국어"):
            return p
    raise ReelForgeError(
        "no CJK-capable font is installed; run: apt-get install -y fonts-wqy-zenhei"
    )


@lru_cache(maxsize=32)
def _pil_font(path: str, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size=size, index=0)


@lru_cache(maxsize=8)
def _notdef_mask(path: str) -> bytes:
    f = _pil_font(path, 32)
    return bytes(f.getmask("\U0010fffd"))


@lru_cache(maxsize=4096)
def _has_glyph(path: str, ch: str) -> bool:
    if ch.isspace():
        return True
    f = _pil_font(path, 32)
    mask = f.getmask(ch)
    if mask.size[0] == 0:
        return unicodedata.category(ch) in ("Mn", "Me", "Cf")
    return bytes(mask) != _notdef_mask(path)


def font_covers(path: str, text: str) -> bool:
    return all(_has_glyph(path, ch) for ch in set(text))


def sanitize_text(text: str) -> str:
    if not isinstance(text, str):
        raise InvalidInput("overlay text must be a string")
    t = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    t = "".join(ch for ch in t if ch == "\n" or ch == "\t" or unicodedata.category(ch)[0] != "C")
    t = t.replace("\t", " ").strip()
    if not t:
        raise InvalidInput("overlay text is empty; pass some text or leave --text out")
    if len(t) > MAX_TEXT_CHARS:
        raise InvalidInput(f"overlay text is {len(t)} characters; the limit is {MAX_TEXT_CHARS}")
    return t


def choose_font(text: str, font: str | None = None) -> tuple[str, str, list[str]]:
    """(font path, text without uncovered characters, dropped characters)."""
    if font:
        if not os.path.isfile(font):
            raise InvalidInput(f"font file {font} does not exist")
        candidates: tuple[str, ...] = (font,)
    else:
        candidates = installed_fonts()
        if not candidates:
            raise ReelForgeError("no font is installed; run: apt-get install -y fonts-wqy-zenhei")
    for p in candidates:
        if font_covers(p, text):
            return p, text, []
    best = candidates[0] if font else find_cjk_font()
    dropped = sorted({ch for ch in text if not _has_glyph(best, ch)})
    kept = "".join(ch for ch in text if _has_glyph(best, ch)).strip()
    if not kept:
        raise InvalidInput("overlay text has no characters any installed font can draw")
    return best, kept, dropped


_CJK_RANGES = (
    (0x2E80, 0x9FFF),  # CJK radicals, kana, CJK unified
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),  # full-width forms
    (0x20000, 0x2FA1F),
)


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return any(a <= o <= b for a, b in _CJK_RANGES)


_TOKEN = re.compile(r"\s+|[^\s]", re.S)


def _tokens(paragraph: str) -> list[str]:
    """Words (Latin/Hangul runs) and single CJK characters; spaces kept as separate tokens."""
    out: list[str] = []
    word = ""
    for ch in paragraph:
        if ch.isspace():
            if word:
                out.append(word)
                word = ""
            out.append(" ")
        elif _is_cjk(ch):
            if word:
                out.append(word)
                word = ""
            out.append(ch)
        else:
            word += ch
    if word:
        out.append(word)
    return out


def wrap_text(text: str, font_path: str, font_size: int, max_width: int) -> list[str]:
    """Greedy wrap with the font's real advances; never returns a line wider than max_width
    unless a single character is wider than it."""
    width = _pil_font(font_path, font_size).getlength
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for tok in _tokens(para):
            if tok == " ":
                if line:
                    line += " "
                continue
            if width(line + tok) <= max_width:
                line += tok
                continue
            if line.strip():
                lines.append(line.rstrip())
                line = ""
            if width(tok) <= max_width:
                line = tok
                continue
            for ch in tok:  # a token wider than the line: break it by characters
                if not line or width(line + ch) <= max_width:
                    line += ch
                else:
                    lines.append(line)
                    line = ch
        lines.append(line.rstrip())
    return lines


@dataclass(frozen=True)
class TextSpec:
    text: str
    position: str = "bottom"
    font_size: int | None = None  # px; default: 1/18 of the frame height (16:9), 1/28 (9:16)
    color: str = "white"
    box: bool = True
    box_color: str = "black@0.55"
    font: str | None = None
    start: float | None = None
    end: float | None = None


@dataclass(frozen=True)
class TextLayout:
    text: str  # wrapped text exactly as drawn (lines joined by \n)
    lines: int
    font: str
    font_size: int
    x: int  # box left
    y: int  # first line top
    box_width: int
    dropped: list[str] = field(default_factory=list)


_COLOR = re.compile(r"^(#?[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?|[A-Za-z]{3,20})(@(0(\.\d+)?|1(\.0+)?))?$")


def layout_text(spec: TextSpec, width: int, height: int) -> TextLayout:
    from .logo import safe_zone

    if spec.position not in POSITIONS:
        raise InvalidInput(
            f"unknown text position {spec.position!r}; use one of {', '.join(POSITIONS)}"
        )
    for c in (spec.color, spec.box_color):
        if not _COLOR.match(c):
            raise InvalidInput(f"colour {c!r} is not a colour name or #RRGGBB[@alpha]")
    text = sanitize_text(spec.text)
    font, text, dropped = choose_font(text, spec.font)
    left, top, right, bottom = safe_zone(width, height)
    box_w = width - left - right
    box_h = int((height - top - bottom) * (0.45 if spec.position != "center" else 0.8))
    size = spec.font_size or max(12, round(height / (18 if width > height else 28)))
    min_size = max(10, round(height / 60))
    size = max(size, min_size)
    while True:
        lines = wrap_text(text, font, size, box_w)
        line_h = round(size * 1.25)
        if len(lines) * line_h <= box_h or size <= min_size:
            break
        size = max(min_size, int(size * 0.9))
    max_lines = max(1, box_h // line_h)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        f = _pil_font(font, size)
        while last and f.getlength(last + "…") > box_w:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    block_h = len(lines) * line_h
    if spec.position == "top":
        y = top
    elif spec.position == "bottom":
        y = height - bottom - block_h
    else:
        y = (height - block_h) // 2
    return TextLayout(
        text="\n".join(lines),
        lines=len(lines),
        font=font,
        font_size=size,
        x=left,
        y=int(y),
        box_width=box_w,
        dropped=dropped,
    )


def drawtext_filter(spec: TextSpec, layout: TextLayout, textfile: str | os.PathLike[str]) -> str:
    """One ``drawtext`` filter (no labels). Writes nothing; `write_textfile` writes the file."""
    line_spacing = round(layout.font_size * 0.25)
    opts = [
        f"textfile={escape_filter_value(str(textfile))}",
        "expansion=none",
        f"fontfile={escape_filter_value(layout.font)}",
        f"fontsize={layout.font_size}",
        f"fontcolor={spec.color}",
        f"line_spacing={line_spacing}",
        "text_align=C",
        "x=(w-text_w)/2",
        f"y={layout.y}",
    ]
    if spec.box:
        opts += [
            "box=1",
            f"boxcolor={spec.box_color}",
            f"boxborderw={max(4, layout.font_size // 4)}",
        ]
    if spec.start is not None or spec.end is not None:
        a = spec.start or 0.0
        b = spec.end if spec.end is not None else 1e9
        opts.append(f"enable=between(t\\,{a:.3f}\\,{b:.3f})")
    return "drawtext=" + ":".join(opts)


def write_textfile(layout: TextLayout, directory: str | os.PathLike[str]) -> Path:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    p = d / "overlay.txt"
    p.write_text(layout.text, encoding="utf-8")  # no trailing newline: it would draw an empty line
    return p


# --- the AI disclosure label --------------------------------------------------------------------

# The visible "AI-generated" label (EU AI Act Art. 50), per language of the job's prompt.
AI_LABELS = {"en": "AI-generated", "zh": "AI生成", "ja": "AI生成", "ko": "AI 생성"}


@dataclass(frozen=True)
class AiLabel:
    text: str
    language: str


def ai_label_for(language: str) -> AiLabel:
    """The label in ``language`` (en, zh, ja, ko); English for any other."""
    language = language if language in AI_LABELS else "en"
    return AiLabel(AI_LABELS[language], language)


def label_filter(
    label: AiLabel, width: int, height: int, corner: str, directory: str | os.PathLike[str]
) -> tuple[str, dict[str, object]]:
    """One small boxed ``drawtext`` in a top corner of the safe zone (``top-left`` or
    ``top-right``), and what to record about it. The text goes through a file like overlays."""
    from .logo import safe_zone

    left, top, right, _ = safe_zone(width, height)
    font, text, _ = choose_font(label.text)
    size = max(12, round(min(width, height) / 32))
    border = max(3, size // 4)
    path = Path(directory) / "ai-label.txt"
    path.write_text(text, encoding="utf-8")
    x = f"{left + border}" if corner == "top-left" else f"w-{right + border}-text_w"
    opts = [
        f"textfile={escape_filter_value(str(path))}",
        "expansion=none",
        f"fontfile={escape_filter_value(font)}",
        f"fontsize={size}",
        "fontcolor=white",
        "box=1",
        "boxcolor=black@0.5",
        f"boxborderw={border}",
        f"x={x}",
        f"y={top + border}",
    ]
    drawn = {"text": text, "language": label.language, "corner": corner, "font_size": size}
    return "drawtext=" + ":".join(opts), drawn
