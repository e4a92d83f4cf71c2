"""Generation benchmarks (not tests): tiny model on CPU.

* seconds per video (default settings: 64x64, the model's default frames, 16 steps, CFG on
  both experts), and per second of video against a baseline model measured in the same run
  (``--baseline-rev REV``: the tiny model as it was at that commit; issue 15's goal is at most
  2x the baseline's seconds per second of video);
* our wrapper's overhead against calling the very same ``WanPipeline`` object directly;
* batched against sequential throughput for 4 and 8 videos, with expert swaps counted;
* seconds per clip of each speed profile (quality, fast, turbo: steps and step cache).

Run: ``python -m benchmarks.bench_generation`` (writes the "generation" section of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from models.generator import GenerationRequest
from models.service import GeneratorService
from reelforge.core.checkpoints import TINY_DIR

PROMPTS = [
    "a red circle moves from left to right",
    "一个蓝色的正方形从上向下移动",
    "黄色い三角形が下から上へ移動する",
    "초록색 원이 오른쪽에서 왼쪽으로 이동한다",
    "a purple square moving to the left",
    "一个橙色的圆形向上移动",
    "緑の四角形が右へ動く",
    "파란 삼각형이 아래로 움직인다",
]


def _direct(pipe, r, spec):
    gen = torch.Generator("cpu").manual_seed(r.seed)
    return pipe(
        prompt=[r.prompt],
        negative_prompt=[r.negative_prompt],
        height=r.height,
        width=r.width,
        num_frames=r.frames,
        num_inference_steps=r.steps,
        guidance_scale=r.guidance_scale,
        guidance_scale_2=r.guidance_scale_2,
        generator=[gen],
        output_type="np",
        max_sequence_length=spec.max_sequence_length,
    ).frames


def per_second_of_video(svc, baseline: Path, repeats: int) -> dict:
    """Seconds of generation per second of video, the shipped model against ``baseline``,
    each at its own default length, interleaved so background load hits both alike."""
    frames = json.loads((baseline / "reelforge.json").read_text())["frames"]
    models = {"shipped": (TINY_DIR, None), "baseline": (baseline, frames)}
    times: dict[str, list[float]] = {k: [] for k in models}

    def clip(name: str):
        path, n = models[name]
        req = GenerationRequest(prompt=PROMPTS[0], seed=1, frames=n)
        return svc.generate_many([req], use_cache=False, checkpoint_dir=path)[0].metadata

    length = {name: (m.frames, m.fps, m.model_version) for name in models for m in [clip(name)]}
    for i in range(repeats):  # after the warm-up above loaded both
        for name in list(models)[:: 1 if i % 2 == 0 else -1]:
            t0 = time.perf_counter()
            clip(name)
            times[name].append(time.perf_counter() - t0)
    out = {}
    for name in models:
        frames_n, fps, version = length[name]
        seconds = (frames_n - 1) / fps
        per_clip = statistics.median(times[name])
        out[name] = {
            "model_version": version,
            "frames": frames_n,
            "video_s": seconds,
            "seconds_per_clip": round(per_clip, 3),
            "seconds_per_video_second": round(per_clip / seconds, 4),
        }
    out["ratio"] = round(
        out["shipped"]["seconds_per_video_second"] / out["baseline"]["seconds_per_video_second"], 2
    )
    return out


def baseline_model(rev: str, into: Path) -> Path:
    """The tiny model's files as they were at commit ``rev`` (from git, not the tree)."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", rev, "models/tiny"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "models" / "tiny"


def run(repeats: int = 5, threads: int = 2, baseline: Path | None = None) -> dict:
    torch.set_num_threads(threads)
    svc = GeneratorService(max_batch=8, result_cache=0)
    g = svc.generator(source="tiny", device="cpu")
    req = GenerationRequest(prompt=PROMPTS[0], seed=1)
    r = g.resolve(req)
    g.generate(req)  # warm-up
    _direct(g.pipe, r, g.spec)

    wrapper, direct = [], []
    for i in range(repeats):  # interleave so background load hits both alike
        for which in (0, 1) if i % 2 == 0 else (1, 0):
            t0 = time.perf_counter()
            if which == 0:
                g.generate(req)
                wrapper.append(time.perf_counter() - t0)
            else:
                _direct(g.pipe, r, g.spec)
                direct.append(time.perf_counter() - t0)
    w, d = statistics.median(wrapper), statistics.median(direct)
    # each repeat runs both back to back, so their ratio is read under one load; the goal is
    # read on the median of those ratios (the medians of each side pair unrelated moments)
    overhead = statistics.median(a / b for a, b in zip(wrapper, direct, strict=True)) - 1

    batching = {}
    for n in (4, 8):
        reqs = [GenerationRequest(prompt=PROMPTS[i % len(PROMPTS)], seed=i) for i in range(n)]
        seq_t, bat_t = [], []
        for _ in range(max(1, repeats // 2)):
            t0 = time.perf_counter()
            seq = svc.generate_many(reqs, batch=False, use_cache=False)
            seq_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            bat = svc.generate_many(reqs, batch=True, use_cache=False)
            bat_t.append(time.perf_counter() - t0)
        seq_swaps = sum(v.metadata.expert_swaps for v in seq)
        bat_swaps = sum(v.metadata.expert_swaps for v in bat if v.metadata.batch_index == 0)
        s, b = statistics.median(seq_t), statistics.median(bat_t)
        batching[n] = {
            "sequential_s": round(s, 3),
            "batched_s": round(b, 3),
            "sequential_videos_per_s": round(n / s, 3),
            "batched_videos_per_s": round(n / b, 3),
            "speedup": round(s / b, 2),
            "sequential_swaps": seq_swaps,
            "batched_swaps": bat_swaps,
        }
    speeds = ("quality", "fast", "turbo")
    profile_times: dict[str, list[float]] = {speed: [] for speed in speeds}
    profile_meta = {}
    for i in range(repeats):  # interleaved, rotating the order, like wrapper and direct above
        for speed in speeds[i % 3 :] + speeds[: i % 3]:
            t0 = time.perf_counter()
            profile_meta[speed] = g.generate(
                GenerationRequest(prompt=PROMPTS[0], seed=1, speed=speed)
            ).metadata
            profile_times[speed].append(time.perf_counter() - t0)
    profiles = {
        speed: {
            "steps": profile_meta[speed].steps,
            "step_cache": profile_meta[speed].step_cache,
            "seconds_per_clip": round(statistics.median(profile_times[speed]), 3),
        }
        for speed in speeds
    }
    m = g.generate(req).metadata
    per_second = per_second_of_video(svc, baseline, repeats) if baseline else None
    return {
        "per_second_of_video": per_second,
        "model_version": g.model_version,
        "steps": r.steps,
        "size": [r.height, r.width],
        "frames": r.frames,
        "seconds_per_video": round(w, 3),
        "timings_one_video": m.timings,
        "direct_pipeline_s": round(d, 3),
        "wrapper_s": round(w, 3),
        "overhead_pct": round(100 * overhead, 2),
        "batching": batching,
        "profiles": profiles,
        "peak_rss_mb": round(m.peak_memory_bytes / 2**20, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{threads} threads, load average at end {os.getloadavg()[0]:.1f}",
        "repeats": repeats,
    }


def markdown(res: dict) -> str:
    b4, b8 = res["batching"][4], res["batching"][8]
    return f"""## Generation (tiny model, CPU)

Reproduce: `python -m benchmarks.bench_generation --repeats {res["repeats"]}` ({res["machine"]}; medians of {res["repeats"]} runs;
the machine is shared, so absolute times move with other users' load).

Model `{res["model_version"]}`, {res["size"][0]}x{res["size"][1]}, {res["frames"]} frames, {res["steps"]} steps, CFG on both experts.

| metric | value |
|---|---|
| seconds per video (one request, wrapper) | {res["seconds_per_video"]:.3f} s |
| of which denoise / decode | {res["timings_one_video"]["denoise_s"]:.3f} s / {res["timings_one_video"]["decode_s"]:.3f} s |
| same `WanPipeline` called directly | {res["direct_pipeline_s"]:.3f} s |
| wrapper overhead, median of the per-repeat ratios (goal <= 5%) | {res["overhead_pct"]:+.1f}% |
| peak RSS of the process | {res["peak_rss_mb"]} MB |
{_per_second_rows(res["per_second_of_video"])}

| videos | sequential | batched | speedup (goal >= 1.5x) | expert swaps sequential / batched |
|---|---|---|---|---|
| 4 | {b4["sequential_s"]:.2f} s ({b4["sequential_videos_per_s"]:.2f} videos/s) | {b4["batched_s"]:.2f} s ({b4["batched_videos_per_s"]:.2f} videos/s) | {b4["speedup"]:.2f}x | {b4["sequential_swaps"]} / {b4["batched_swaps"]} |
| 8 | {b8["sequential_s"]:.2f} s ({b8["sequential_videos_per_s"]:.2f} videos/s) | {b8["batched_s"]:.2f} s ({b8["batched_videos_per_s"]:.2f} videos/s) | {b8["speedup"]:.2f}x | {b8["sequential_swaps"]} / {b8["batched_swaps"]} |

| speed profile | steps | step cache (FirstBlockCache threshold) | seconds per clip |
|---|---|---|---|
{_profile_rows(res["profiles"])}

GPU step time, expert-switch step time and peak GPU memory: `python -m benchmarks.bench_gpu`.
"""


def _per_second_rows(p: dict | None) -> str:
    if p is None:
        return ""
    s, b = p["shipped"], p["baseline"]
    return (
        f"| seconds per second of video: this model, {s['frames']} frames "
        f"(`{s['model_version']}`) | {s['seconds_per_video_second']:.3f} s "
        f"({s['seconds_per_clip']:.3f} s per clip) |\n"
        f"| the same for the baseline, {b['frames']} frames (`{b['model_version']}`), "
        f"same run | {b['seconds_per_video_second']:.3f} s ({b['seconds_per_clip']:.3f} s per "
        f"clip) |\n"
        f"| this model against the baseline (goal <= 2x) | {p['ratio']:.2f}x |"
    )


def _profile_rows(profiles: dict) -> str:
    return "\n".join(
        f"| {speed} | {p['steps']} | {p['step_cache'] if p['step_cache'] is not None else 'off'} "
        f"| {p['seconds_per_clip']:.3f} s |"
        for speed, p in profiles.items()
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to edit")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument(
        "--baseline-rev", default=None, help="commit whose tiny model is the per-second baseline"
    )
    a = ap.parse_args()
    if a.baseline_rev:
        with tempfile.TemporaryDirectory() as tmp:
            res = run(a.repeats, a.threads, baseline_model(a.baseline_rev, Path(tmp)))
    else:
        res = run(a.repeats, a.threads)
    print(json.dumps(res, indent=1))
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    if not a.no_write:
        from reelforge.core.reports import DEFAULT_PATH, write_section

        write_section("generation", markdown(res), path=a.out or DEFAULT_PATH)


if __name__ == "__main__":
    main()
