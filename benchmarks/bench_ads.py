"""Storyboard ads: assembling a 15 s 9:16 720p ad from cached shots, against one hand-written
ffmpeg command doing the same edit; and, with ``--e2e``, the whole ad on the small model.

Assembly: four tiny-model clips (64x64, 17 frames at 8 fps, generated once before timing: the
"cached shots"), each 3 s on the timeline (cut, fade, wipe), then a 3 s end card (colour,
logo, two texts), four captions, the AI label and the example music at -14 LUFS. Ours is
``tasks.assemble.timeline.render_ad`` (one ffmpeg invocation, its loudness pass cached after
the first repeat, as in the flow); the hand-written command does the same edit typed by hand
(the same crops, grades, transitions, texts and encoder settings; the music with a fixed gain).
Medians of interleaved repeats. ``--e2e`` runs the example storyboard through the ad flow on the
local stack (new tenant: every shot generated), then again (every shot from the cache).

Run: python -m benchmarks.bench_ads [--repeats 3] [--e2e] [--no-write]
(``reelforge up`` first for --e2e). Writes the ``ads`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.machine import cpu_model
from reelforge.core.version import code_version
from tasks.assemble.timeline import Cue, EndCard, Shot, render_ad
from tasks.generate.generate import generate_clips
from tasks.postprocess.ffmpeg import ffmpeg_exe
from tasks.postprocess.logo import LogoSpec, place_logo, validate_logo
from tasks.postprocess.lut import resolve_lut
from tasks.postprocess.overlay import (
    TextSpec,
    ai_label_for,
    drawtext_filter,
    label_filter,
    layout_text,
    write_textfile,
)
from tasks.postprocess.renditions import rendition_preset, video_encode_args

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PROMPTS = ("a red circle moves from left to right", "a blue square moves up",
           "a green triangle moves down", "a yellow circle moves from right to left")  # fmt: skip
SHOTS = [Shot(3.0, "warm", "cut"), Shot(3.0, "cool", "fade", 0.4),
         Shot(3.0, "warm", "wipeleft", 0.4), Shot(3.0, "product-pop")]  # fmt: skip
CARD = EndCard(3.0, "#1d3557", str(EXAMPLES / "logo.png"), "Aurora Runners", "-20% · €79",
               "Shop now", "fade", 0.4)  # fmt: skip
CUES = [Cue(0, 3, "Summer starts now"), Cue(3, 6, "Light as air"),
        Cue(6, 9, "Built for every mile"), Cue(9, 12, "Run further this summer")]  # fmt: skip


def hand_written(clips: list[str], out: Path, work: Path, gain_db: float) -> None:
    """The same ad as one command typed by hand (no wrapper, no probing, fixed music gain)."""
    preset = rendition_preset("9:16", "720p", 30)
    luts = {n: resolve_lut(n, work / "cache").path for n in ("warm", "cool", "product-pop")}
    grades = ["warm", "cool", "warm", "product-pop"]
    lengths = [3.0, 3.4, 3.4, 3.2, 3.2]  # each shot plus half of each transition it shares
    parts = []
    for i, (grade, length) in enumerate(zip(grades, lengths, strict=False)):
        parts.append(
            f"[{i}:v]setpts={length / 2.125:.4f}*(PTS-STARTPTS),crop=36:64:14:0,"
            f"format=gbrpf32le,lut3d=file={luts[grade]}:interp=tetrahedral,"
            "minterpolate=fps=30:mi_mode=mci:mc_mode=obmc:me_mode=bidir:vsbmc=1,"
            "scale=720:1280:flags=lanczos,format=yuv420p,"
            f"tpad=stop_mode=clone:stop_duration=1,trim=duration={length},setpts=PTS-STARTPTS,"
            f"fps=30,setsar=1[s{i}]"
        )
    logo = validate_logo(CARD.logo)
    p = place_logo(LogoSpec(CARD.logo, "top-center", 0.45), logo, 720, 1280)
    texts = []
    for name, spec in (("headline", TextSpec("Aurora Runners\n-20% · €79", "center", 58, box=False)),
                       ("cta", TextSpec("Shop now", "bottom", box_color="#E63946@0.95"))):  # fmt: skip
        layout = layout_text(spec, 720, 1280)
        texts.append(drawtext_filter(spec, layout, write_textfile(layout, work / name)))
    parts.append(
        "color=c=0x1d3557:s=720x1280:r=30:d=3.2,format=yuv420p[c0];"
        f"[4:v]format=rgba,scale={p.width}:{p.height}[logo];"
        f"[c0][logo]overlay={p.x}:{p.y}[c1];[c1]{','.join(texts)},setsar=1[s4]"
    )
    parts.append(
        "[s0][s1]concat=n=2:v=1:a=0,fps=30[j1];"
        "[j1][s2]xfade=transition=fade:duration=0.4:offset=5.8[j2];"
        "[j2][s3]xfade=transition=wipeleft:duration=0.4:offset=8.8[j3];"
        "[j3][s4]xfade=transition=fade:duration=0.4:offset=11.8[j4]"
    )
    captions = []
    for j, cue in enumerate(CUES):
        spec = TextSpec(cue.text, "bottom", start=cue.start, end=cue.end)
        layout = layout_text(spec, 720, 1280)
        captions.append(drawtext_filter(spec, layout, write_textfile(layout, work / f"cue{j}")))
    label, _ = label_filter(ai_label_for("en"), 720, 1280, "top-right", work)
    parts.append(f"[j4]{','.join(captions)},{label}[vout]")
    parts.append(
        "[5:a]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,atrim=0:15,"
        f"afade=t=in:d=0.5,afade=t=out:st=13.5:d=1.5,volume={gain_db:.3f}dB,"
        "alimiter=limit=0.7499:attack=5:release=80:level=0:latency=1[aout]"
    )
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", *[a for c in clips for a in ("-i", c)],
         "-loop", "1", "-t", "3.2", "-i", CARD.logo, "-stream_loop", "-1",
         "-i", str(EXAMPLES / "music.wav"), "-filter_complex", ";".join(parts),
         "-map", "[vout]", "-map", "[aout]", *video_encode_args(preset),
         "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "-ac", "2", "-t", "15",
         "-movflags", "+faststart", str(out)],
        check=True,
    )  # fmt: skip


def assembly(repeats: int, work: Path) -> dict:
    results = generate_clips([{"prompt": p, "seed": 1} for p in PROMPTS], out_dir=work)
    clips = [str(r.path) for r in results]
    preset = rendition_preset("9:16", "720p", 30)
    music = str(EXAMPLES / "music.wav")

    def ours() -> dict:
        return render_ad(clips, SHOTS, CARD, CUES, work / "ours.mp4", preset, music=music,
                         label=ai_label_for("en"), cache_dir=work / "cache").params  # fmt: skip

    gain = ours()["audio"]["gain_db"]  # warms the loudness cache, as a re-render in the flow
    ours_s, hand_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        hand_written(clips, work / "hand.mp4", work, gain)
        t2 = time.perf_counter()
        ours_s.append(t1 - t0)
        hand_s.append(t2 - t1)
    o, h = statistics.median(ours_s), statistics.median(hand_s)
    return {"ours_s": o, "hand_s": h, "ours_vs_hand": o / h, "repeats": repeats}


def end_to_end(work: Path) -> dict:
    from reelforge.campaigns.storyboard import load_storyboard
    from reelforge.ops.run import run_here

    for name in ("storyboard.yaml", "logo.png", "music.wav"):
        shutil.copy(EXAMPLES / name, work / name)
    spec = work / "storyboard.yaml"
    tenant = f"bench-ads-{uuid.uuid4().hex[:8]}"
    spec.write_text(spec.read_text().replace("tenant: example-shop", f"tenant: {tenant}"))
    ad = load_storyboard(spec)
    t0 = time.perf_counter()
    first = run_here("ad", {"ad": ad}, tenant=ad.tenant)
    t1 = time.perf_counter()
    again = run_here("ad", {"ad": ad}, tenant=ad.tenant)
    t2 = time.perf_counter()
    return {"e2e_s": t1 - t0, "e2e_cached_s": t2 - t1, "shots": len(ad.shots),
            "generated": first.generated, "generated_again": again.generated,
            "duration_s": first.videos[0].duration}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--e2e", action="store_true", help="also the whole ad on the local stack")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to edit")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rf-bench-ads-"))
    try:
        res = assembly(args.repeats, work)
        if args.e2e:
            res |= end_to_end(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["loadavg"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    if args.no_write:
        return
    ok = "yes" if res["ours_vs_hand"] <= 1.2 else "no"
    e2e = (
        f"| whole ad on the small model, end to end ({res['shots']} shots generated) | "
        f"{res['e2e_s']:.1f} | | |\n| the same ad again (every shot from the cache) | "
        f"{res['e2e_cached_s']:.1f} | | |\n"
        if "e2e_s" in res
        else "| whole ad end to end | not run (pass --e2e with the stack up) | | |\n"
    )
    md = f"""## Storyboard ads

`benchmarks/bench_ads.py`: a 15 s 9:16 720p ad (four 3 s shots of the tiny model, cut, fade,
wipe, a 3 s end card with logo and texts, four captions, the AI label, music at -14 LUFS)
assembled from cached shots in one ffmpeg invocation, against one hand-written ffmpeg command
doing the same edit. Medians of {res["repeats"]} interleaved repeats.

| step | seconds | goal | met |
|---|---|---|---|
| assembly, ours (`render_ad`) | {res["ours_s"]:.2f} ({res["ours_vs_hand"]:.2f}x the hand-written command) | <= 1.2x | {ok} |
| assembly, hand-written ffmpeg command | {res["hand_s"]:.2f} | | |
{e2e}
Load average during the run: {res["loadavg"]}. Machine: {cpu_model()}, {os.cpu_count()} cores
(shared with other jobs). Date: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}. Code:
{code_version()}. Command: `python -m benchmarks.bench_ads --repeats {res["repeats"]}{" --e2e" if args.e2e else ""}`.
"""
    from reelforge.core.reports import DEFAULT_PATH, write_section

    print("wrote", write_section("ads", md, path=args.out or DEFAULT_PATH))


if __name__ == "__main__":
    main()
