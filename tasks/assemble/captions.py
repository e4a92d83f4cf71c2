"""An ad's captions as WebVTT and SRT files, written by pysubs2 (not by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pysubs2


def caption_events(cues: list[dict[str, Any]]) -> pysubs2.SSAFile:
    """The cues (``start``, ``end`` in seconds, ``text``) as a subtitle file in memory."""
    subs = pysubs2.SSAFile()
    for cue in cues:
        subs.append(
            pysubs2.SSAEvent(
                start=pysubs2.make_time(s=cue["start"]),
                end=pysubs2.make_time(s=cue["end"]),
                text=cue["text"].replace("\n", r"\N"),
            )
        )
    return subs


def write_captions(cues: list[dict[str, Any]], directory: Path, stem: str) -> dict[str, Path]:
    """``stem.vtt`` and ``stem.srt`` in ``directory``, by format name (vtt, srt)."""
    subs = caption_events(cues)
    out = {}
    for fmt in ("vtt", "srt"):
        path = directory / f"{stem}.{fmt}"
        subs.save(str(path), format_=fmt, encoding="utf-8")
        out[fmt] = path
    return out
