"""Generation on a GPU (issue 3): step time, expert-switch step time, peak GPU memory.

    python -m benchmarks.bench_gpu [--repeats 3] [--height 256 --width 256 --frames 33]
        [--device cuda] [--json PATH] [--out PATH] [--no-write]
    python -m benchmarks.bench_gpu --architecture a14b [--tiny] [--budget-s 400] ...

``--architecture a14b`` measures Wan2.2-T2V-A14B with random weights instead (issue 16, its
own section; see ``benchmarks/a14b.py``). Without it:

The tiny two-expert model on CUDA, in the two placements of ``models/wan_gpu.py``:
``resident`` (both experts stay on the GPU) and ``swap`` (only the active expert is on the
GPU; the low-noise expert is uploaded from pinned memory around the switch). Each denoising
step is timed from one ``scheduler.step`` to the next, after a CUDA synchronise; the
expert-switch step is the first step of the low-noise expert, a normal step the median of
the others (the first step, which includes the text encoder, left out).
Goal: switch step <= 1.1x a normal step. Peak memory: ``torch.cuda.max_memory_allocated``.

Without CUDA it writes a section saying so (no numbers); ``--device cpu`` runs the same
measurement on the CPU (smoke runs of this script only).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks import a14b

SECTION = "generation-gpu"
PROMPT = "a red circle moves from left to right"


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def measure(gen, req, repeats: int) -> dict:
    """Per-step wall times of ``repeats`` generations (after a warm-up) with ``gen``."""
    pipe = gen.pipe
    current: dict[str, str | None] = {"expert": None}
    for name in ("transformer", "transformer_2"):
        getattr(pipe, name).register_forward_pre_hook(
            lambda _m, _a, name=name: current.__setitem__("expert", name)
        )
    marks: list[tuple[float, str | None]] = []
    step = pipe.scheduler.step

    def timed_step(*args, **kwargs):
        out = step(*args, **kwargs)
        _sync(gen.device)
        marks.append((time.perf_counter(), current["expert"]))
        return out

    pipe.scheduler.step = timed_step
    gen.generate(req)  # warm-up: kernels, allocator, first upload
    switch, normal, totals, peaks = [], [], [], []
    for _ in range(repeats):
        marks.clear()
        t0 = time.perf_counter()
        video = gen.generate(req)
        totals.append(time.perf_counter() - t0)
        peaks.append(video.metadata.peak_memory_bytes)
        steps = [(b[0] - a[0], b[1]) for a, b in itertools.pairwise(marks)]
        first_low = next(
            (i for i, (_, e) in enumerate(steps) if e == "transformer_2"), None
        )  # index into steps (step 0 of the run is left out: it includes text encoding)
        if first_low is None:
            raise SystemExit("no low-noise step: the model has no expert switch at these steps")
        switch.append(steps[first_low][0])
        normal += [t for i, (t, _) in enumerate(steps) if i != first_low]
    n, s = statistics.median(normal), statistics.median(switch)
    return {
        "normal_step_s": round(n, 5),
        "switch_step_s": round(s, 5),
        "switch_ratio": round(s / n, 3),
        "video_s": round(statistics.median(totals), 4),
        "peak_memory_bytes": max(peaks),
        "peak_memory_kind": video.metadata.peak_memory_kind,
        "steps": video.metadata.steps,
        "expert_swaps": video.metadata.expert_swaps,
    }


def run(args) -> dict:
    import torch

    from models.generator import GenerationRequest, GpuOptions, WanGenerator

    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    if device is None:
        return {"cuda": False, "torch": torch.__version__}
    res: dict = {
        "cuda": device.startswith("cuda"),
        "device": device,
        "torch": torch.__version__,
        "name": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "size": [args.height, args.width],
        "frames": args.frames,
        "repeats": args.repeats,
        "placements": {},
    }
    req = GenerationRequest(
        prompt=PROMPT, seed=1, height=args.height, width=args.width, frames=args.frames
    )
    placements = {"resident": True, "swap": False} if res["cuda"] else {"cpu": None}
    for label, keep_both in placements.items():
        gen = WanGenerator.from_checkpoint(
            None, source="tiny", device=device, gpu=GpuOptions(keep_both_experts=keep_both)
        )
        m = measure(gen, req, args.repeats)
        m["mode"] = gen.placement.mode if gen.placement is not None else "cpu"
        res["placements"][label] = m
        res["model_version"] = gen.model_version
        del gen
        if res["cuda"]:
            torch.cuda.empty_cache()
    return res


def markdown(res: dict) -> str:
    if not res.get("placements"):
        return (
            "## Generation on a GPU\n\n"
            "No GPU was lent to this run (`torch.cuda.is_available()` is false, torch "
            f"{res['torch']}): GPU step time, expert-switch step time against a normal step "
            "(goal <= 1.1x) and peak GPU memory are not measured.\n"
        )
    lines = [
        "## Generation on a GPU",
        "",
        f"Reproduce: `python -m benchmarks.bench_gpu --repeats {res['repeats']} --height "
        f"{res['size'][0]} --width {res['size'][1]} --frames {res['frames']}` on "
        f"{res['name']} (torch {res['torch']}); model `{res.get('model_version')}`, medians "
        f"of {res['repeats']} runs after a warm-up.",
        "",
        "| placement | normal step | expert-switch step | switch / normal (goal <= 1.1x) "
        "| video | peak memory |",
        "|---|---|---|---|---|---|",
    ]
    for label, m in res["placements"].items():
        lines.append(
            f"| {label} ({m['mode']}, {m['steps']} steps) | {m['normal_step_s'] * 1000:.1f} ms | "
            f"{m['switch_step_s'] * 1000:.1f} ms | {m['switch_ratio']:.2f}x | "
            f"{m['video_s']:.2f} s | {m['peak_memory_bytes'] / 2**20:.0f} MiB "
            f"({m['peak_memory_kind']}) |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--frames", type=int, default=33)
    ap.add_argument("--device", default=None, help="default: cuda when there is one")
    ap.add_argument(
        "--architecture",
        choices=("tiny", "a14b"),
        default="tiny",
        help="tiny: the shipped tiny model; a14b: Wan2.2-T2V-A14B with random weights",
    )
    ap.add_argument("--tiny", action="store_true", help="a14b only: tiny dimensions (smoke)")
    ap.add_argument(
        "--budget-s", type=float, default=400, help="a14b only: leave out modes past this"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to edit")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    bench = a14b if args.architecture == "a14b" else sys.modules[__name__]
    res = bench.run(args)
    md, section = bench.markdown(res), bench.SECTION
    print(md)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    if not args.no_write:
        from reelforge.core.reports import DEFAULT_PATH, write_section

        write_section(section, md, path=args.out or DEFAULT_PATH)


if __name__ == "__main__":
    main()
