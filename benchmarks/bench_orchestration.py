"""Orchestration costs on the real local stack (PostgreSQL, S3, Prefect server).

    python -m benchmarks.bench_orchestration [--videos 3] [--products 1000] [--worker-videos 6]

1. Overhead per video: ``video_flow`` in-process, total wall time minus the time spent inside
   the plain stage functions and the job's input checks (``tasks/preflight.py``, the same
   checks a stage would otherwise make), timed by wrapping them; the rest is Prefect
   (flow/task runs, cache keys, results to S3, artifacts), lineage context and the GPU slot.
   Goal <= 5%.
   In the same runs, moderation of the rendition against post-processing it (goal <= 10%,
   issue 20): the gate inside the post-process task (``judge_rendition``, with recording the
   verdicts) plus ``RenderFrames.bind`` plus what the render's second output and its sampling
   add to a render (interleaved renders of one clip with and without it), against the rest
   of the post-process task.
2. A 1,000-product dry campaign (each product planned, its cache key computed and looked up
   in the results bucket): task submissions per second (goal >= 20) and the peak memory
   (RSS) of the flow process, which runs in a child process of its own.
3. Videos per hour end to end with one and with two `reelforge worker --pool gpu` processes
   on this machine (a campaign with `--on-workers`).

Parts 1 and 3 need the generation model (models/tiny); they are skipped without it.
Run against a stack that `reelforge up` started (or the test stack's environment).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

from prefect import flow, task

from benchmarks.machine import cpu_seconds, machine_line
from reelforge.core.caching import StageCache
from reelforge.core.orchestration import RESULTS_BLOCK
from reelforge.core.reports import DEFAULT_PATH, write_section
from tasks.record import StageContext

REPO = Path(__file__).resolve().parent.parent

# Prompts (seed 7) whose 9:16 renditions pass the default policy with the tiny model; others
# are sometimes flagged by the moderation model (false positives on abstract shapes).
PROMPTS = ("a red circle moves from left to right", "a blue triangle moves up",
           "a purple square moves to the right", "a yellow triangle moves to the left",
           "a blue square moves down")  # fmt: skip
SEED = 7

# stage module -> its Prefect tasks, whose functions (``.fn``) are timed in part 1: the rest
# of a run's time is orchestration
STAGE_TASKS = {
    "tasks.inputs": ("record_inputs", "ingest_brand_kit"),
    "tasks.enhance.stage": ("enhance_prompt",),
    "tasks.safety.stage": ("check_texts", "moderate"),
    "tasks.generate.stage": ("generate",),
    "tasks.postprocess.stage": ("postprocess", "personalise"),
    "tasks.publish.stage": ("publish",),
}


def _has_model() -> bool:
    from reelforge.core.caching import model_version

    return not model_version().endswith("-missing")


# --- 1. overhead per video ---------------------------------------------------------------------


def _timed_slot(gpu_slot, spent: dict[str, float]):
    """``gpu_slot`` with the time spent taking and giving back the slot added to
    ``spent["gpu_slot"]`` (the time holding it is the generation's)."""

    @contextlib.contextmanager
    def timed_slot():
        t0 = time.perf_counter()
        slot = gpu_slot()
        name = slot.__enter__()
        spent["gpu_slot"] += time.perf_counter() - t0
        try:
            yield name
        except BaseException as exc:
            t1 = time.perf_counter()
            if not slot.__exit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            t1 = time.perf_counter()
            slot.__exit__(None, None, None)
        finally:
            spent["gpu_slot"] += time.perf_counter() - t1

    return timed_slot


def overhead(videos: int) -> dict:
    import importlib

    import tasks.generate.stage as generate_stage
    import tasks.postprocess.stage as postprocess_stage
    import tasks.preflight as preflight
    from reelforge.core.errors import BlockedBySafety
    from reelforge.core.jobs import VideoJob
    from reelforge.ops.run import run_video
    from tasks.safety.visual import RenderFrames

    spent: dict[str, float] = defaultdict(float)

    def timed(name, fn):
        @functools.wraps(fn)  # keeps __module__: the stage's cache key hashes its package
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t0

        return wrapper

    preflight.check_job = timed("check_job", preflight.check_job)  # run_video imports it late
    for module_name, names in STAGE_TASKS.items():
        module = importlib.import_module(module_name)
        for name in names:
            stage = getattr(module, name)
            stage.fn = timed(name, stage.fn)
    # moderation inside the post-process task: timed apart, not added to the stage work twice
    judge = timed("judge_rendition", postprocess_stage.judge_rendition)
    postprocess_stage.judge_rendition = judge
    # sampling during the render is in what the second output adds (second_output_cost)
    RenderFrames.bind = timed("render_pass_bind", RenderFrames.bind)
    # the GPU slot (a file lock) is taken inside the generate stage: timed
    # apart and counted as orchestration, not as generation
    generate_stage.gpu_slot = _timed_slot(generate_stage.gpu_slot, spent)

    examples = REPO / "examples"

    def job(prompt: str) -> VideoJob:
        return VideoJob(
            tenant=f"bench-{uuid.uuid4().hex[:10]}",  # a fresh tenant: nothing is cached
            prompt=prompt,
            seed=SEED,
            aspect="9:16",
            lut="warm",
            logo=examples / "logo.png",
            music=examples / "music.wav",
            text="Spring sale: 20% off",
        )

    prompts = iter(PROMPTS)  # distinct prompts: the generator's in-memory cache never hits
    rows = []
    for prompt in prompts:
        spent.clear()
        t0 = time.perf_counter()
        try:
            run_video(job(prompt))
        except BlockedBySafety:  # a false positive of the moderation model: not a sample
            continue
        total = time.perf_counter() - t0
        moderation = spent["judge_rendition"] + spent["render_pass_bind"]
        # both run inside postprocess.fn, the slot inside generate.fn
        work = sum(spent.values()) - moderation - 2 * spent["gpu_slot"]
        rows.append({"total": total, "work": work, "overhead": total - work,
                     "gpu_slot": spent["gpu_slot"],
                     "postprocess": spent["postprocess"] - moderation,
                     "moderation": moderation})  # fmt: skip
        if len(rows) == videos + 1:
            break
    rows = rows[1:]  # the first was the warm-up: model load, imports, connections
    if not rows:
        raise SystemExit("overhead: every video was blocked by the safety gate")
    keys = ("total", "work", "overhead", "gpu_slot", "postprocess", "moderation")
    med = {k: statistics.median(r[k] for r in rows) for k in keys}
    return {"runs": rows, "median": med, "pct": 100 * med["overhead"] / med["total"]}


@task(name="bench-noop", cache_policy=StageCache(stage="bench-noop"))
def _noop_stage(ctx: StageContext, index: int) -> int:
    return index


def _noop_flow(tasks: int):
    @flow(name=f"bench-noop-{tasks}", persist_result=True, result_storage=RESULTS_BLOCK)
    def noop_flow(tenant_id: uuid.UUID) -> int:
        ctx = StageContext(tenant="bench", tenant_id=tenant_id)
        return sum(_noop_stage(ctx, i) for i in range(tasks))

    return noop_flow


def prefect_run_costs(repeats: int, tasks: int = 8) -> dict:
    """What Prefect itself costs here, with nothing else in the run: flow runs made as the
    CLI makes them (``run_tagged``, our result storage), of 0 and of ``tasks`` no-op stages
    with the stages' cache policy; medians of interleaved runs after one warm-up of each."""
    from reelforge.core.orchestration import in_process, run_tagged

    flows = {n: _noop_flow(n) for n in (0, tasks)}
    seconds: dict[int, list[float]] = {0: [], tasks: []}
    with in_process(fresh=True):
        for attempt in range(repeats + 1):
            for n, noop_flow in flows.items():
                t0 = time.perf_counter()
                run_tagged(noop_flow, {"tenant_id": uuid.uuid4()}, ["bench"])
                if attempt:
                    seconds[n].append(time.perf_counter() - t0)
    run = statistics.median(seconds[0])
    per_task = (statistics.median(seconds[tasks]) - run) / tasks
    return {"flow_run_s": run, "task_run_s": per_task, "tasks": tasks, "repeats": repeats}


def second_output_cost(repeats: int) -> dict:
    """What the render's second output (the gate's frames) adds to a render: the same 5 s
    small-model-sized clip rendered as in part 1, with and without it, interleaved; medians
    of wall time, of ffmpeg's CPU time and of this process's (reading the frames, choosing
    the samples and inferring them, which starts during the render and is waited for)."""
    import resource

    import numpy as np

    from tasks.postprocess.audio import AudioSpec
    from tasks.postprocess.logo import LogoSpec
    from tasks.postprocess.overlay import TextSpec
    from tasks.postprocess.renditions import (
        frames_to_mp4,
        postprocess_cache_dir,
        render_rendition,
        rendition_preset,
    )
    from tasks.safety.visual import RenderFrames

    preset = rendition_preset("9:16", "720p", 30)
    wall: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    own_cpu: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        frames = np.full((80, 64, 64, 3), (30, 60, 90), np.uint8)
        for i in range(80):  # a square drifting right, 5 s at 16 fps like the tiny model's
            frames[i, 20:40, 10 + i // 3 : 30 + i // 3] = (230, 40, 40)
        clip = frames_to_mp4(frames, Path(tmp) / "clip.mp4")
        examples = REPO / "examples"
        for i in range(2 * repeats + 2):
            with_frames = bool(i % 2)
            sink = (RenderFrames("default", width=preset.width, height=preset.height,
                                 fps=preset.fps) if with_frames else None)  # fmt: skip
            c0, p0, t0 = (
                cpu_seconds(resource.RUSAGE_CHILDREN),
                cpu_seconds(resource.RUSAGE_SELF),
                time.perf_counter(),
            )
            render_rendition(
                clip, Path(tmp) / f"r{i}.mp4", preset, lut="warm",
                logo=LogoSpec(str(examples / "logo.png"), position="top-left"),
                audio=AudioSpec(music=str(examples / "music.wav")),
                text=TextSpec("Spring sale: 20% off"), cache_dir=postprocess_cache_dir(),
                frames=sink,
            )  # fmt: skip
            if sink is not None:  # its samples' inference, not the last frame's (the gate's)
                sink.detections(sink.selector.samples, sink.model, batch=1)
            if i >= 2:  # the first pair warms caches (LUT, loudness)
                wall[with_frames].append(time.perf_counter() - t0)
                cpu[with_frames].append(cpu_seconds(resource.RUSAGE_CHILDREN) - c0)
                own_cpu[with_frames].append(cpu_seconds(resource.RUSAGE_SELF) - p0)
    measures = (("wall", wall), ("cpu", cpu), ("own_cpu", own_cpu))
    med = {f"{k}_{w}": statistics.median(v[w]) for k, v in measures for w in (False, True)}
    return {
        "wall_without": med["wall_False"], "wall_with": med["wall_True"],
        "cpu_without": med["cpu_False"], "cpu_with": med["cpu_True"],
        "own_cpu_without": med["own_cpu_False"], "own_cpu_with": med["own_cpu_True"],
        "added_wall": max(0.0, med["wall_True"] - med["wall_False"]), "repeats": repeats,
    }  # fmt: skip


# --- 2. the 1,000-product dry campaign -----------------------------------------------------------

CHILD = r"""
import json, sys, time
from reelforge.campaigns.load import load_spec
from reelforge.core.orchestration import ready
ready()
spec = load_spec(sys.argv[1])
import flows.campaign as campaign
fan = {}
def timed_fan_out(*args, **kwargs):
    t0 = time.perf_counter()
    try:
        return fan_out(*args, **kwargs)
    finally:
        fan["seconds"] = time.perf_counter() - t0
fan_out, campaign.fan_out = campaign.fan_out, timed_fan_out
def hwm():  # this process's peak RSS (ru_maxrss would include the parent's, from fork)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
base = hwm()
from reelforge.ops.runs import run_campaign
t0 = time.perf_counter()
report = run_campaign(spec, dry_run=True)
wall = time.perf_counter() - t0
peak = hwm()
print(json.dumps({"wall": wall, "fan_out": fan["seconds"], "products": report.products,
                  "would_make": report.would_make, "cached": report.cached,
                  "base_kib": base, "peak_kib": peak}))
"""


def dry_campaign(products: int, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        csv = Path(tmp) / "products.csv"
        colours = ("red", "orange", "yellow", "green", "blue", "purple")
        shapes, moves = ("circle", "square", "triangle"), ("left", "right", "up", "down")
        lines = ["sku,name,prompt,price"]
        for i in range(products):
            prompt = f"a {colours[i % 6]} {shapes[i // 6 % 3]} moves {moves[i // 18 % 4]}"
            lines.append(f"SKU-{i:05d},Product {i},{prompt},${10 + i % 90}")
        csv.write_text("\n".join(lines) + "\n")
        spec = Path(tmp) / "campaign.yaml"
        spec.write_text(
            f"name: bench-{uuid.uuid4().hex[:8]}\ntenant: bench-dry\nproducts: {{csv: products.csv}}\n"
            f'renditions: ["9:16"]\nbrand: {{lut: warm}}\nconcurrency: {concurrency}\n'
        )
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(spec)],
            capture_output=True, text=True, cwd=REPO, timeout=3600,
        )  # fmt: skip
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
        if done.returncode != 0 or not lines:
            raise SystemExit(f"dry campaign failed: {done.stderr[-2000:]}")
        result = json.loads(lines[-1])
    result["tasks_per_s"] = result["products"] / result["fan_out"]
    return result


# --- 3. videos per hour with one and two workers ---------------------------------------------------


def videos_per_hour(videos: int, workers: int) -> dict:
    from reelforge.campaigns.load import load_spec
    from reelforge.core.settings import get_settings
    from reelforge.ops.runs import run_campaign
    from tests.flows.pools import delete_pools
    from tests.flows.workers import running_workers

    suffix = uuid.uuid4().hex[:8]
    os.environ["REELFORGE_GPU_POOL"] = f"bench-gpu-{suffix}"
    get_settings.cache_clear()
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        products = "".join(
            f"  - {{sku: V-{i}, name: Video {i}, prompt: {PROMPTS[i % len(PROMPTS)]}}}\n"
            for i in range(videos)
        )
        spec_path = Path(tmp) / "campaign.yaml"
        spec_path.write_text(
            f"name: perhour-{suffix}\ntenant: bench-{suffix}\nproducts:\n{products}"
            f'renditions: ["9:16"]\nbrand: {{lut: warm}}\ngeneration: {{seed: {SEED}}}\n'
            f"concurrency: {max(2, 2 * workers)}\n"
        )
        spec = load_spec(spec_path)
        try:
            with running_workers(workers, "gpu", Path(tmp), limit=1):
                t0 = time.perf_counter()
                report = run_campaign(spec, executor="pool")
                wall = time.perf_counter() - t0
        finally:
            delete_pools(get_settings().gpu_pool)
    return {"videos": report.videos, "wall": wall, "per_hour": 3600 * report.videos / wall}


# --- report ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3, help="timed videos for the overhead")
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--worker-videos", type=int, default=5, help="videos per worker campaign (0: skip part 3)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--note", default="", help="a line added under the machine line")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    from reelforge.core.caching import model_version
    from reelforge.core.orchestration import ready

    settings = ready()
    with_model = _has_model()
    result: dict = {"model_version": model_version(), "with_model": with_model}
    lines = [
        "## Orchestration (issues 7 and 20)",
        "",
        f"Machine: {machine_line()}; load average {os.getloadavg()[0]:.1f} at start (shared "
        f"machine). Stack: embedded PostgreSQL, SeaweedFS S3, Prefect 3.8.8 server on "
        f"PostgreSQL. Model: {model_version()}.",
    ]
    if args.note:
        lines += ["", args.note]
    lines += [
        "",
        f"Command: `python -m benchmarks.bench_orchestration --videos {args.videos} "
        f"--products {args.products} --concurrency {args.concurrency} "
        f"--worker-videos {args.worker_videos}`",
        "",
        "| measure | value | goal | |",
        "|---|---|---|---|",
    ]
    if with_model:
        o = overhead(args.videos)
        m = o["median"]
        result["overhead"] = {"pct": o["pct"], **m, "videos": len(o["runs"])}
        lines.append(
            f"| orchestration overhead per video (9:16 720p, LUT, logo, music, text; median of "
            f"{args.videos}) | {m['overhead']:.2f} s of {m['total']:.2f} s = **{o['pct']:.1f}%** "
            f"(stage work {m['work']:.2f} s; of the overhead, the GPU slot {m['gpu_slot']:.2f} s) "
            f"| <= 5% | {'met' if o['pct'] <= 5 else 'not met'} |"
        )
        costs = prefect_run_costs(5)
        prefect_alone = costs["flow_run_s"] + costs["tasks"] * costs["task_run_s"]
        result["prefect_costs"] = costs | {"pct_of_video": 100 * prefect_alone / m["total"]}
        lines.append(
            f"| what Prefect costs alone, in the same stack (no-op stages, our cache policy and "
            f"result storage; median of {costs['repeats']}) | a flow run "
            f"{costs['flow_run_s']:.3f} s, each task run +{costs['task_run_s']:.3f} s: "
            f"{prefect_alone:.3f} s for a video's {costs['tasks']} = **{100 * prefect_alone / m['total']:.1f}%** "
            "of the video above | - | |"
        )
        extra = second_output_cost(args.videos)
        # the second output's cost is moderation's, taken out of post-processing's
        gate = m["moderation"] + extra["added_wall"]
        pp = m["postprocess"] - extra["added_wall"]
        mod = {"pct": 100 * gate / pp, "moderation_s": gate, "postprocess_s": pp,
               "in_task_s": m["moderation"], "second_output": extra}  # fmt: skip
        result["moderation"] = mod
        lines.append(
            f"| moderating the rendition against post-processing it, in the same runs "
            f"(gate in the post-process task on the render pass's frames: "
            f"{m['moderation']:.3f} s; the render's second output: +{extra['added_wall']:.3f} s "
            f"wall, {extra['cpu_with'] - extra['cpu_without']:+.3f} s ffmpeg CPU over "
            f"{extra['cpu_without']:.2f} s and "
            f"{extra['own_cpu_with'] - extra['own_cpu_without']:+.3f} s CPU in this process, "
            f"the samples' inference included) | {gate:.3f} s of {pp:.2f} s = **{mod['pct']:.1f}%** "
            f"| <= 10% | {'met' if mod['pct'] <= 10 else 'not met'} |"
        )
    else:
        lines.append("| orchestration overhead per video | skipped: no model | <= 5% | |")
    d = dry_campaign(args.products, args.concurrency)
    result["dry_campaign"] = d
    lines.append(
        f"| {d['products']:,}-product dry campaign (plan, cache key, results-bucket lookup per "
        f"product; {args.concurrency} at once) | fan-out {d['fan_out']:.1f} s = "
        f"**{d['tasks_per_s']:.0f} task submissions/s** (whole run {d['wall']:.1f} s) "
        f"| >= 20/s | {'met' if d['tasks_per_s'] >= 20 else 'not met'} |"
    )
    lines.append(
        f"| peak memory of that flow process | {d['peak_kib'] / 1024:.0f} MiB (after imports "
        f"and connections: {d['base_kib'] / 1024:.0f} MiB) | - | |"
    )
    if with_model and args.worker_videos > 0:
        result["workers"] = {}
        for workers in (1, 2):
            v = videos_per_hour(args.worker_videos, workers)
            result["workers"][str(workers)] = v
            lines.append(
                f"| videos per hour, {workers} worker{'s' if workers > 1 else ''} (campaign of "
                f"{v['videos']} 9:16 videos `--on-workers`) | **{v['per_hour']:.0f}/h** "
                f"({v['wall']:.0f} s) | - | |"
            )
    else:
        why = "no model" if not with_model else "--worker-videos 0"
        lines.append(f"| videos per hour with 1 and 2 workers | skipped: {why} | - | |")
    lines += [
        "",
        "Overhead = wall time of `run_video` minus time inside the plain stage functions and "
        "the job's input checks (`tasks/preflight.py`): Prefect flow and task runs, cache keys, "
        "results persisted to S3, progress artifacts, lineage context and taking and giving "
        "back the GPU slot (a file lock, inside the generate stage, timed apart). Both workers "
        "run on the same 2 cores, so a second worker can only help while the first waits (I/O, "
        "the GPU slot is per machine).",
        "",
        "Since issue 20 a video is 8 Prefect task runs, not 10: the logo's gate runs in the "
        "text-safety task and the rendition's in the post-process task, on the frames of the "
        "render's own ffmpeg pass (docs/orchestration.md, docs/safety.md). Moderation = that "
        "gate (inference, the file checks, recording its verdicts) + binding the frames to the "
        "file + what the second output and its sampling add to a render (median of "
        "interleaved renders with and without it); post-processing = the rest of the task.",
    ]
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    path = write_section("orchestration", "\n".join(lines), path=args.out)
    print("\n".join(lines))
    print(f"written to {path} ({settings.prefect_api})")


if __name__ == "__main__":
    main()
