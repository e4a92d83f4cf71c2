"""Visual moderation speed: sampled frames per second and the cost of moderating a 5 s clip
relative to post-processing it.

    nice -n 10 .venv/bin/python -m benchmarks.bench_moderation [--threads 2] [--repeat 5]

Measures (median of --repeat runs, after one warm-up):
1. model throughput: 320 px RGB frames through NudeNet 320n (preprocess + ONNX Runtime + YOLO
   decoding), batch 1 and batch 16, onnxruntime intra-op threads = --threads;
2. end to end: ``moderate_file`` on a 5 s 1280x720 24 fps H.264 clip (decode of every frame
   for scene detection, >= 2 fps + scene + first/last sampling, inference, aggregation);
   sampled frames / wall time;
3. post-processing reference: one ffmpeg pass over the same clip with a colour filter, a
   scale and an H.264 encode (what tasks/postprocess runs per rendition, minus logo/audio).
   Hook: ``--postprocess MODULE:FUNC`` times ``FUNC(src_path, dst_path)`` instead, for when
   the post-processing module in tasks/postprocess/ has its entry point.
4. the rendition as the flow moderates it since issue 20 (real post-processing only): its
   frames taken from the render's own ffmpeg pass (``render_rendition(frames=RenderFrames)``),
   costed as the sampling during the render + ``moderate_file(rendered=...)`` + what the
   second output adds to the render (renders with and without it, interleaved).
Goals (issue 4): >= 150 sampled frames/s on 2 CPU cores; moderation <= 10% of post-processing.
Writes the "moderation" section of BENCHMARKS.md through reelforge/core/reports.py.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.machine import cpu_model, cpu_with_children


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(path: Path, astronaut: Path) -> None:
    """5 s, 1280x720, 24 fps: 2.5 s test pattern, hard cut, 2.5 s astronaut (harmless)."""
    subprocess.run(
        [
            ffmpeg_exe(), "-v", "error", "-y", "-nostdin",
            "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=24:duration=2.5",
            "-loop", "1", "-framerate", "24", "-t", "2.5", "-i", str(astronaut),
            "-filter_complex",
            "[1:v]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:-1:-1,"
            "setsar=1[a];[0:v][a]concat=n=2:v=1[v]",
            "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
            "-pix_fmt", "yuv420p", str(path),
        ],
        check=True,
    )  # fmt: skip


def postprocess_ffmpeg(src: Path, dst: Path, threads: int) -> None:
    """Representative post-processing pass: colour grade, scale, H.264 High for delivery."""
    subprocess.run(
        [
            ffmpeg_exe(), "-v", "error", "-y", "-nostdin", "-threads", str(threads),
            "-i", str(src),
            "-vf", "eq=contrast=1.06:saturation=1.12:gamma=0.97,"
            "colorbalance=rs=0.03:bs=-0.03,scale=1280:720:flags=lanczos,format=yuv420p",
            "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-profile:v", "high",
            "-g", "48", "-movflags", "+faststart", str(dst),
        ],
        check=True,
    )  # fmt: skip


def timed(fn, repeat: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (this process and its ffmpeg children) of each run."""
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        c, t = cpu_with_children(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(cpu_with_children() - c)
    return wall, cpu


def render_pass_moderation(clip: Path, work: Path, model, repeat: int) -> dict:
    """Issue 20: the rendition judged on its render pass's frames (module doc, 4.)."""
    from tasks.postprocess.renditions import rendition_preset
    from tasks.safety.visual import RenderFrames, moderate_file

    preset = rendition_preset("16:9", "720p", 30)
    render = real_postprocess()
    runs: dict[str, list[float]] = {"plain": [], "sampled": [], "gate": [], "cpu_plain": [],
                                    "cpu_sampled": [], "samples": []}  # fmt: skip
    for i in range(2 * repeat + 2):  # interleaved; the first pair warms up
        sampled = i % 2 == 1
        frames = (RenderFrames("default", width=preset.width, height=preset.height,
                               fps=preset.fps, model=model) if sampled else None)  # fmt: skip
        out = work / f"rp{i}.mp4"
        c, t = cpu_with_children(), time.perf_counter()
        render(clip, out, frames=frames)
        wall, cpu = time.perf_counter() - t, cpu_with_children() - c
        if frames is not None:  # the sampling during the render is in ``wall``
            t = time.perf_counter()
            frames.bind(out)
            verdict = moderate_file(out, model=model, rendered=frames)
            gate = time.perf_counter() - t
        if i < 2:
            continue
        runs["sampled" if sampled else "plain"].append(wall)
        runs["cpu_sampled" if sampled else "cpu_plain"].append(cpu)
        if sampled:
            runs["gate"].append(gate)
            runs["samples"].append(len(verdict.frames))
    med = {k: statistics.median(v) for k, v in runs.items()}
    added = max(0.0, med["sampled"] - med["plain"])
    moderation = med["gate"] + added
    postprocess = med["sampled"] - added  # = the plain render, from the same runs
    return {"moderation_s": moderation, "gate_s": med["gate"], "second_output_s": added,
            "postprocess_s": postprocess, "ratio": moderation / postprocess,
            "samples": int(med["samples"])}  # fmt: skip


def real_postprocess():
    """tasks/postprocess's own rendition (LUT, logo, music, H.264 + AAC), if it is there."""
    from tasks.postprocess.audio import AudioSpec
    from tasks.postprocess.logo import LogoSpec
    from tasks.postprocess.renditions import render_rendition, rendition_preset

    repo = Path(__file__).resolve().parent.parent
    logo, music = repo / "examples" / "logo.png", repo / "examples" / "music.wav"
    preset = rendition_preset("16:9", "720p", 30)
    cache = Path(tempfile.mkdtemp(prefix="bench-moderation-pp-"))

    def run(src: Path, dst: Path, frames=None) -> None:
        render_rendition(
            src,
            dst,
            preset,
            frames=frames,
            lut="warm",
            logo=LogoSpec(str(logo), position="top-right", scale=0.15, opacity=0.85)
            if logo.is_file()
            else None,
            audio=AudioSpec(music=str(music), fade_in=0.5, fade_out=1.0)
            if music.is_file()
            else None,
            cache_dir=cache,
        )

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--postprocess",
        default=None,
        help="real (tasks.postprocess, the default when importable), ffmpeg (one "
        "representative ffmpeg pass) or MODULE:FUNC(src, dst)",
    )
    ap.add_argument("--model", default=None, help="ONNX model path (default: configured one)")
    ap.add_argument("--section", default="moderation", help="BENCHMARKS.md section name")
    ap.add_argument("--no-write", action="store_true", help="print only, do not edit BENCHMARKS.md")
    ap.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to edit")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()

    import skimage.data
    from PIL import Image

    from models.moderation import ModerationModel
    from tasks.safety.visual import moderate_file

    load_before = os.getloadavg()
    from reelforge.core.settings import get_settings

    model = ModerationModel.load(
        args.model or get_settings().moderation_model, threads=args.threads
    )
    work = Path(tempfile.mkdtemp(prefix="bench-moderation-"))
    astro_png = work / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(astro_png)
    clip = work / "clip.mp4"
    make_clip(clip, astro_png)

    # 1. model throughput on sampled-size frames (320x180, as sampled from 16:9 video)
    import cv2

    frame = cv2.resize(skimage.data.astronaut(), (320, 180))
    n = 48
    frames = [frame] * n
    med = statistics.median
    b1, b1_cpu = timed(lambda: model.predict(frames, batch_size=1), args.repeat)
    b16, b16_cpu = timed(lambda: model.predict(frames, batch_size=16), args.repeat)
    fps_b1, fps_b16 = n / med(b1), n / med(b16)
    # what 2 idle cores would give if the CPU seconds spread over both (upper bound)
    cpu_fps_b16 = n / (med(b16_cpu) / 2)

    # 2. end to end on the 5 s clip
    verdicts = []
    e2e, e2e_cpu = timed(lambda: verdicts.append(moderate_file(clip, model=model)), args.repeat)
    v = verdicts[-1]
    samples = len(v.frames)
    mod_s = statistics.median(e2e)
    decode_s = statistics.median(x.timings["decode_s"] for x in verdicts[1:])
    infer_s = statistics.median(x.timings["inference_s"] for x in verdicts[1:])

    # 3. post-processing reference
    out = work / "post.mp4"
    pp_runs = max(1, args.repeat // 2)
    if args.postprocess in (None, "real"):
        try:
            func = real_postprocess()
            pp_label = "tasks.postprocess `render_rendition`: warm LUT, logo, music, H.264+AAC"
        except ImportError:
            if args.postprocess == "real":
                raise
            func = None
    else:
        mod_name, func_name = args.postprocess.split(":")
        func = getattr(importlib.import_module(mod_name), func_name)
        pp_label = f"`{args.postprocess}`"
    if func is None or args.postprocess == "ffmpeg":
        func = lambda src, dst: postprocess_ffmpeg(src, dst, args.threads)  # noqa: E731
        pp_label = "one ffmpeg pass: eq + colorbalance + lanczos scale + libx264 medium CRF 20"
    pp, pp_cpu = timed(lambda: func(clip, out), pp_runs)
    pp_s = statistics.median(pp)
    # the moderated file is the rendition: time moderation of the post-processed output too
    e2e_out, e2e_out_cpu = timed(lambda: moderate_file(out, model=model), args.repeat)
    mod_out_s = statistics.median(e2e_out)
    load_after = os.getloadavg()

    rp = (
        render_pass_moderation(clip, work, model, pp_runs)
        if "render_rendition" in pp_label
        else None
    )
    ratio = mod_out_s / pp_s
    ratio_cpu = med(e2e_out_cpu) / med(pp_cpu)
    lines = [
        f"## Moderation (visual safety gate, {model.info.model_id})",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, onnxruntime threads={args.threads}, "
        f"providers={','.join(model.info.providers)}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after (shared machine: other jobs ran). "
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Model {model.info.model_id}. "
        f"Median of {args.repeat} runs after a warm-up.",
        "",
        "| Measure | Wall | CPU s | Goal |",
        "|---|---|---|---|",
        f"| Model throughput, 320x180 frames, batch 1 | {fps_b1:.0f} frames/s | "
        f"{med(b1_cpu) / n * 1000:.1f} ms/frame | >= 150 frames/s |",
        f"| Model throughput, 320x180 frames, batch 16 | {fps_b16:.0f} frames/s | "
        f"{med(b16_cpu) / n * 1000:.1f} ms/frame (= {cpu_fps_b16:.0f} frames/s on 2 idle "
        "cores at best) | >= 150 frames/s |",
        f"| Moderating a 5 s 720p24 clip: {samples} sampled of {v.media.frames_decoded} "
        f"decoded | {mod_s * 1000:.0f} ms = {samples / mod_s:.0f} sampled frames/s "
        f"(decode+sampling {decode_s * 1000:.0f} ms, inference {infer_s * 1000:.0f} ms) | "
        f"{med(e2e_cpu) * 1000:.0f} ms | |",
        f"| Post-processing the 5 s clip ({pp_label}) | {pp_s * 1000:.0f} ms | "
        f"{med(pp_cpu) * 1000:.0f} ms | |",
        f"| Moderating the post-processed rendition | {mod_out_s * 1000:.0f} ms = "
        f"**{ratio * 100:.0f}%** of post-processing | {med(e2e_out_cpu) * 1000:.0f} ms = "
        f"**{ratio_cpu * 100:.0f}%** | <= 10% |",
        *(
            [
                f"| Moderating the rendition on its render pass's frames (issue 20, as the flow "
                f"does): {rp['samples']} samples, gate {rp['gate_s'] * 1000:.0f} ms + second "
                f"output {rp['second_output_s'] * 1000:.0f} ms | {rp['moderation_s'] * 1000:.0f} "
                f"ms = **{rp['ratio'] * 100:.1f}%** of post-processing "
                f"({rp['postprocess_s'] * 1000:.0f} ms, same runs) | | <= 10% |"
            ]
            if rp
            else []
        ),
        "",
        "CPU s = user + system seconds of this process and its ffmpeg children, less "
        "sensitive to other jobs on the machine than wall time.",
        "",
    ]
    md = "\n".join(lines)
    print(md)
    if args.json:
        result = {
            "model_id": model.info.model_id,
            "threads": args.threads,
            "repeat": args.repeat,
            "fps_batch1": round(fps_b1, 2),
            "fps_batch16": round(fps_b16, 2),
            "fps_batch16_cpu_bound": round(cpu_fps_b16, 2),
            "clip_sampled_frames": samples,
            "clip_moderation_s": round(mod_s, 4),
            "clip_sampled_fps": round(samples / mod_s, 2),
            "postprocess_s": round(pp_s, 4),
            "rendition_moderation_s": round(mod_out_s, 4),
            "moderation_vs_postprocess": round(ratio, 4),
            "moderation_vs_postprocess_cpu": round(ratio_cpu, 4),
            "postprocess": pp_label,
            "render_pass": rp,
        }
        args.json.write_text(json.dumps(result, indent=1))
    if not args.no_write:
        from reelforge.core.reports import DEFAULT_PATH, write_section

        print("wrote", write_section(args.section, md, path=args.out or DEFAULT_PATH))
    np.set_printoptions()


if __name__ == "__main__":
    main()
