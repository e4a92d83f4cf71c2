"""An ad's timeline in ONE ffmpeg invocation per rendition (plain, Prefect-free).

    shot clips --(fit, grade, slow/hold to length)--> xfade / cut --> end card
        --> captions (drawtext, safe zone) --> AI label --> H.264
    music (+ voice-over ducking) across the whole ad --> -14 LUFS, fade out --> AAC

Reused, not copied: each shot's fit, LUT grade, frame-rate conversion and scale are
``renditions._plan_video`` (the chain of a single rendition, with its own input and output
labels); the end card's and captions' text is ``overlay.layout_text``/``drawtext_filter`` (the
CJK-safe path, text from files, never from the graph); its logo ``logo.place_logo``/
``logo_graph``; the soundtrack ``audio.plan_audio`` (two-pass loudness, ducking, fades); the
encoder settings, the safety gate's frame output and the run ``renditions``' own.

A shot longer than its clip (the tiny model makes 2.1 s clips) is first slowed down, to at
most ``MAX_SLOW`` times, then holds its last frame for what is left: no loop, so no jump that
would read as a shot change. Timing: a transition is centred on the change, so the changes
land exactly where the storyboard puts them (``AdSpec.starts``).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reelforge.core.errors import InvalidInput
from reelforge.core.jobs import VideoJob
from reelforge.core.storage import sha256_file
from tasks.postprocess.audio import AudioSpec, audio_encode_args, plan_audio
from tasks.postprocess.ffmpeg import atomic_output, escape_filter_value, probe_video
from tasks.postprocess.logo import LogoSpec, logo_graph, place_logo, validate_logo
from tasks.postprocess.lut import resolve_lut
from tasks.postprocess.overlay import (
    AiLabel,
    TextSpec,
    drawtext_filter,
    label_filter,
    layout_text,
    write_textfile,
)
from tasks.postprocess.renditions import (
    FrameSink,
    RenditionPreset,
    RenditionResult,
    _frames_output,
    _plan_video,
    _result,
    _run,
    _split_frames,
    video_encode_args,
)

MAX_SLOW = 2.0
FADE_OUT = 1.5  # the music's fade at the end of the ad


@dataclass(frozen=True)
class Shot:
    duration: float  # seconds on the timeline
    grade: str | None = None  # LUT preset or .cube path
    transition: str = "cut"  # into the next segment
    transition_duration: float = 0.0


@dataclass(frozen=True)
class EndCard:
    duration: float
    background: str = "#111111"  # #RRGGBB or an image path
    logo: str | None = None
    headline: str | None = None
    price: str | None = None
    cta: str | None = None
    transition: str = "fade"  # from the last shot
    transition_duration: float = 0.5


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


class AdPlan(BaseModel):
    """What the assembly needs of a storyboard (``AdSpec.plan()``): the shots' timing and
    grade, the end card, the captions, and one job per rendition (tenant, rendition, brand
    kit, policy; for the brand stage, the AI label and the signature)."""

    name: str
    policy: str
    shots: list[Shot]
    end_card: EndCard
    cues: list[Cue] = []
    voice: str | None = None
    jobs: list[VideoJob]

    def starts(self) -> list[float]:
        """When each shot, and last the end card, starts."""
        out, t = [], 0.0
        for shot in self.shots:
            out.append(round(t, 6))
            t += shot.duration
        return [*out, round(t, 6)]

    def card_text(self) -> str:
        card = self.end_card
        return "\n".join(t for t in (card.headline, card.price, card.cta) if t)


def segment_lengths(shots: list[Shot], card: EndCard) -> list[float]:
    """Each segment's rendered length: its time on the timeline plus half of each transition
    it shares (a cut shares nothing)."""
    joins = [_join(s.transition, s.transition_duration) for s in shots[:-1]]
    joins.append(_join(card.transition, card.transition_duration))
    durations = [s.duration for s in shots] + [card.duration]
    return [
        d + (joins[i - 1] / 2 if i > 0 else 0.0) + (joins[i] / 2 if i < len(joins) else 0.0)
        for i, d in enumerate(durations)
    ]


def _join(transition: str, seconds: float) -> float:
    return 0.0 if transition == "cut" else seconds


def _shot_chain(
    i: int, clip: str, shot: Shot, length: float, preset: RenditionPreset, cache_dir: str
) -> tuple[str, dict[str, Any]]:
    info = probe_video(clip)
    slow = min(MAX_SLOW, length / info.duration) if length > info.duration else 1.0
    slowed = dataclasses.replace(info, fps=info.fps / slow, duration=info.duration * slow)
    lut = resolve_lut(shot.grade, cache_dir) if shot.grade else None
    plan = _plan_video(slowed, preset, lut, "crop", "auto", None, clip,
                       source=f"slow{i}", label=f"graded{i}")  # fmt: skip
    hold = max(0.0, length - slowed.duration)
    chain = (
        f"[{i}:v]setpts={slow:.6f}*(PTS-STARTPTS)[slow{i}];{plan.chain};"
        f"[graded{i}]tpad=stop_mode=clone:stop_duration={hold + 1:.4f},"
        f"trim=duration={length:.6f},setpts=PTS-STARTPTS,fps={preset.fps},setsar=1,"
        f"format=yuv420p[seg{i}]"
    )
    params = {"slow": round(slow, 4), "hold_s": round(hold, 4), "lut": lut.name if lut else None,
              **plan.params}  # fmt: skip
    return chain, params


def _text(spec: TextSpec, preset: RenditionPreset, directory: Path) -> tuple[str, dict]:
    directory.mkdir(parents=True, exist_ok=True)
    layout = layout_text(spec, preset.width, preset.height)
    return drawtext_filter(spec, layout, write_textfile(layout, directory)), {
        "lines": layout.lines, "font_size": layout.font_size, "dropped": layout.dropped,
    }  # fmt: skip


def _card_chain(
    card: EndCard, index: int, first_input: int, length: float, preset: RenditionPreset, tmp: Path
) -> tuple[list[list[str]], str, dict[str, Any]]:
    """The end card's inputs, graph (to ``[seg{index}]``) and parameters."""
    W, H, fps = preset.width, preset.height, preset.fps
    inputs: list[list[str]] = []
    if card.background.startswith("#"):
        colour = escape_filter_value("0x" + card.background[1:])
        parts = [f"color=c={colour}:s={W}x{H}:r={fps}:d={length:.6f},format=yuv420p[card0]"]
    else:
        inputs.append(["-loop", "1", "-t", f"{length:.6f}", "-i", card.background])
        parts = [
            f"[{first_input}:v]scale={W}:{H}:force_original_aspect_ratio=increase,crop={W}:{H},"
            f"fps={fps},format=yuv420p[card0]"
        ]
    last = "card0"
    params: dict[str, Any] = {"background": card.background if card.background.startswith("#")
                              else "image", "duration": card.duration}  # fmt: skip
    if card.logo:
        info = validate_logo(card.logo)
        inputs.append(["-loop", "1", "-t", f"{length:.6f}", "-i", card.logo])
        placement = place_logo(LogoSpec(card.logo, "top-center", 0.45), info, W, H)
        logo_index = first_input + len(inputs) - 1
        parts.append(logo_graph(logo_index, placement, 1.0, last, "card1"))
        last = "card1"
        params["logo"] = dataclasses.asdict(placement)
    texts = []
    headline = "\n".join(t for t in (card.headline, card.price) if t)
    if headline:
        size = round(H / (16 if W > H else 22))
        texts.append(("headline", TextSpec(headline, "center", size, box=False)))
    if card.cta:
        texts.append(("cta", TextSpec(card.cta, "bottom", box_color="#E63946@0.95")))
    for name, spec in texts:
        drawn, params[name] = _text(spec, preset, tmp / f"card-{name}")
        parts.append(f"[{last}]{drawn}[card-{name}]")
        last = f"card-{name}"
    parts.append(f"[{last}]trim=duration={length:.6f},setpts=PTS-STARTPTS,setsar=1[seg{index}]")
    return inputs, ";".join(parts), params


def render_ad(
    clips: list[str],
    shots: list[Shot],
    card: EndCard,
    cues: list[Cue],
    out: str | os.PathLike[str],
    preset: RenditionPreset,
    *,
    music: str | None = None,
    voice: str | None = None,
    label: AiLabel | None = None,
    cache_dir: str | os.PathLike[str],
    x264_preset: str = "veryfast",
    frames: FrameSink | None = None,
) -> RenditionResult:
    """The finished ad in one ffmpeg invocation (plus the cached loudness pass 1 with music);
    ``frames``: the safety gate's samples of the same pass (as for ``render_rendition``)."""
    t0 = time.perf_counter()
    if not shots or len(clips) != len(shots):
        raise InvalidInput(
            f"an ad needs a clip for each of its shots ({len(clips)} for {len(shots)})"
        )
    out = Path(out)
    cache_dir = str(cache_dir)
    lengths = segment_lengths(shots, card)
    total = round(sum(s.duration for s in shots) + card.duration, 6)
    inputs: list[list[str]] = [["-i", clip] for clip in clips]
    parts: list[str] = []
    shot_params = []
    for i, shot in enumerate(shots):
        chain, params = _shot_chain(i, clips[i], shot, lengths[i], preset, cache_dir)
        parts.append(chain)
        shot_params.append(params)
    n = len(shots)
    with tempfile.TemporaryDirectory(prefix="rf-ad-") as td:
        tmp = Path(td)
        card_inputs, card_graph, card_params = _card_chain(
            card, n, len(inputs), lengths[n], preset, tmp
        )
        inputs += card_inputs
        parts.append(card_graph)
        # the changes: shots, then the end card, each transition centred on its time
        joins = [(s.transition, s.transition_duration) for s in shots[:-1]]
        joins.append((card.transition, card.transition_duration))
        acc, change = "seg0", 0.0
        for k in range(1, n + 1):
            change += shots[k - 1].duration
            name, seconds = joins[k - 1]
            if name == "cut":
                parts.append(f"[{acc}][seg{k}]concat=n=2:v=1:a=0,fps={preset.fps}[join{k}]")
            else:
                offset = change - seconds / 2
                parts.append(f"[{acc}][seg{k}]xfade=transition={name}:duration={seconds:.4f}"
                             f":offset={offset:.6f}[join{k}]")  # fmt: skip
            acc = f"join{k}"
        drawn = []
        for j, cue in enumerate(cues):
            spec = TextSpec(cue.text, "bottom", start=cue.start, end=cue.end)
            text, _ = _text(spec, preset, tmp / f"cue-{j}")
            drawn.append(text)
        label_params = None
        if label is not None:
            label_chain, label_params = label_filter(label, preset.width, preset.height,
                                                     "top-right", tmp)  # fmt: skip
            drawn.append(label_chain)
        parts.append(f"[{acc}]{','.join(drawn) or 'null'}[vout]")
        plan = plan_audio(AudioSpec(music=music, voice=voice, fade_out=FADE_OUT), total, cache_dir)
        first_audio = len(inputs)
        inputs += plan.input_args()
        parts.append(plan.graph(first_audio, out_label="aout"))
        split, video = _split_frames("vout", frames)
        graph = ";".join([*parts, *([split] if split else [])])
        args = ["-v", "error"]
        for ia in inputs:
            args += ia
        out_args = [
            *video_encode_args(preset, x264_preset), *audio_encode_args(),
            "-t", f"{total:.6f}", "-map_metadata", "-1", "-fflags", "+bitexact",
            "-movflags", "+faststart", "-f", "mp4",
        ]  # fmt: skip
        with atomic_output(out) as part:
            cmd = [*args, "-filter_complex", graph, "-map", f"[{video}]", "-map", "[aout]",
                   *out_args, str(part), *(_frames_output(preset.fps, total) if frames else [])]  # fmt: skip
            dt = _run(cmd, frames, what=f"assemble ad {preset.name}", nice=None)
    params = {
        "preset": preset.name, "duration": total, "shots": shot_params, "end_card": card_params,
        "transitions": [{"transition": t, "seconds": s} for t, s in joins],
        "captions": len(cues), "ai_label": label_params, "lut": None,
        "audio": {"music": bool(plan.music), "voice": bool(plan.voice), "fade_out": FADE_OUT,
                  "target_lufs": plan.spec.target_lufs, "gain_db": plan.gain_db,
                  "limiter": plan.limiter},
    }  # fmt: skip
    inputs_sha = {f"shot{i}": sha256_file(clip) for i, clip in enumerate(clips)}
    return _result(out, preset, total, t0, dt, inputs_sha, params, cmd, None)
