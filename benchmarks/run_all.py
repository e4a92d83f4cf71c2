"""Run every benchmark the issues ask for and rewrite BENCHMARKS.md from this one run.

    python -m benchmarks [--quick] [--only NAME[,NAME]] [--skip NAME[,NAME]] [--out PATH]

Each benchmark runs in a subprocess of its own (no memory or threads carried from one to the
next), writes its section into a scratch copy and its key numbers as JSON; the new file is
then built from scratch (no section of an earlier run survives): a header with the machine,
the date, the git commit, the load average, the command and the wall time; a goal table
(one row per goal of the issues, filled from this run's JSON); the runs with their commands;
then each section. It is written atomically at the end. A benchmark that fails gets a
section saying so, its goal rows say "failed", and the command exits 1.

The benchmarks that need the local stack (PostgreSQL, S3, Prefect) get it from
``reelforge.ops.stack.up`` (idempotent, like `reelforge up`); services this run started are
stopped at the end. ``--quick`` uses smoke sizes: its numbers say nothing about the goals.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from reelforge.core.reports import DEFAULT_PATH, read_section, section_block, write_file

REPO = Path(__file__).resolve().parent.parent
# Placeholders in a benchmark's arguments, filled per run.
OUT, JSON, WORK = "{out}", "{json}", "{work}"


@dataclass(frozen=True)
class Bench:
    name: str  # for --only / --skip
    section: str  # its section in BENCHMARKS.md
    title: str  # heading of its section when it failed
    issue: int
    full: tuple[str, ...]  # commands ("module args"), run in order, each a subprocess
    quick: tuple[str, ...]
    needs_stack: bool = False
    estimate_s: int = 60  # full run on an idle 2-core machine (measured 2026-11-24)
    timeout_s: int = 3600


def _bench(command: str) -> str:
    """A benchmarks/ script: its section and numbers go to this run's scratch files."""
    return f"benchmarks.{command} --out {OUT} --json {JSON}"


INT8 = f"{WORK}/320n-int8.onnx"
QUANTIZE = f"models.quantize_moderation {INT8}"
BENCHES: tuple[Bench, ...] = (
    Bench("lineage", "lineage", "Lineage queries (issue 2)", 2,
          full=(_bench("bench_lineage --chains 166667 --samples 1000"),),
          quick=(_bench("bench_lineage --chains 2000 --samples 100"),),
          needs_stack=True, estimate_s=150),
    Bench("generation", "generation", "Generation (tiny model, CPU)", 3,
          full=(_bench("bench_generation --repeats 5"),),
          quick=(_bench("bench_generation --repeats 1"),),
          estimate_s=30),
    Bench("tiny-eval", "tiny-model-eval", "Tiny model: prompt following on held-out combinations",
          15,
          full=(_bench("bench_tiny_eval --seeds 2"),),
          quick=(_bench("bench_tiny_eval --seeds 1 --combos 1"),),
          estimate_s=30),
    Bench("gpu", "generation-gpu", "Generation on a GPU", 3,
          full=(_bench("bench_gpu --repeats 3"),),
          quick=(_bench("bench_gpu --repeats 1 --height 64 --width 64 --frames 17"),),
          estimate_s=10),
    Bench("gpu-a14b", "generation-gpu-a14b", "Wan2.2-T2V-A14B on a GPU (random weights)", 16,
          full=(_bench("bench_gpu --architecture a14b"),),
          quick=(_bench("bench_gpu --architecture a14b --tiny"),),
          estimate_s=30),
    Bench("moderation", "moderation", "Moderation (visual safety gate)", 4,
          full=(_bench("bench_moderation --repeat 5"),),
          quick=(_bench("bench_moderation --repeat 1"),),
          estimate_s=20),
    Bench("moderation-int8", "moderation-int8", "Moderation, INT8 model (visual safety gate)", 4,
          full=(QUANTIZE,
                _bench(f"bench_moderation --repeat 5 --model {INT8} --section moderation-int8")),
          quick=(QUANTIZE,
                 _bench(f"bench_moderation --repeat 1 --model {INT8} --section moderation-int8")),
          estimate_s=20),
    Bench("postprocess", "postprocess", "Post-processing", 5,
          full=(_bench("bench_postprocess --repeats 3 --variants 5"),),
          quick=(_bench("bench_postprocess --repeats 1 --variants 1"),),
          estimate_s=60),
    Bench("credentials", "credentials", "Content credentials (C2PA)", 19,
          full=(_bench("bench_credentials --repeats 5"),),
          quick=(_bench("bench_credentials --repeats 1"),),
          estimate_s=40),
    Bench("enhancement", "prompt-enhancement",
          "Prompt enhancement: free-form prompts on the tiny model", 6,
          full=(_bench("bench_enhancement --seeds 1"),),
          quick=(_bench("bench_enhancement --seeds 1 --limit 2"),),
          estimate_s=30),
    Bench("orchestration", "orchestration", "Orchestration (issues 7 and 20)", 7,
          full=(_bench("bench_orchestration --videos 3 --products 1000 --concurrency 16 "
                       "--worker-videos 5"),),
          quick=(_bench("bench_orchestration --videos 1 --products 20 --concurrency 4 "
                        "--worker-videos 0"),),
          needs_stack=True, estimate_s=240),
    Bench("api", "api-submissions", "HTTP API: job submissions", 8,
          full=(_bench("bench_api --requests 1000 --concurrency 4 --tenants 4 "
                       "--max-queued 200"),),
          quick=(_bench("bench_api --requests 50 --concurrency 4 --tenants 2 --max-queued 20"),),
          needs_stack=True, estimate_s=10),
    Bench("ads", "ads", "Storyboard ads", 18,
          full=(_bench("bench_ads --repeats 3 --e2e"),),
          quick=(_bench("bench_ads --repeats 1"),),
          needs_stack=True, estimate_s=70),
)  # fmt: skip
NAMES = tuple(b.name for b in BENCHES)


# --- goals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    bench: str
    issue: int
    what: str
    goal: str
    # the bench's JSON -> (measured, met): met is "yes", "no", "-" (reported, no goal) or
    # "not measured"
    measure: Callable[[dict], tuple[str, str]]


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _lineage(d: dict) -> tuple[str, str]:
    up = d["upstream"]
    return (
        f"p95 {up['p95_ms']:.2f} ms, p50 {up['p50_ms']:.2f} ms ({d['assets']:,} assets, "
        f"{d['samples']} videos)",
        _met(up["p95_ms"] < 5),
    )


def _batching(n: int) -> Callable[[dict], tuple[str, str]]:
    def measure(d: dict) -> tuple[str, str]:
        b = d["batching"][str(n)]
        return (
            f"{b['speedup']:.2f}x ({b['sequential_s']:.1f} s vs {b['batched_s']:.1f} s; expert "
            f"swaps {b['sequential_swaps']} sequential, {b['batched_swaps']} batched)",
            _met(b["speedup"] >= 1.5),
        )

    return measure


def _accuracy(attr: str, goal: float) -> Callable[[dict], tuple[str, str]]:
    def measure(d: dict) -> tuple[str, str]:
        r = d["splits"]["held_out"]
        return f"{_pct(r[attr])} of {r['n']} clips", _met(r[attr] >= goal)

    return measure


NO_GPU = ("not measured: no GPU was lent to this run", "not measured")


def _gpu_ratio(d: dict) -> tuple[str, str]:
    if not d.get("cuda"):
        return NO_GPU
    p = d["placements"]
    return (
        ", ".join(f"{k} {m['switch_ratio']:.2f}x" for k, m in p.items()),
        _met(all(m["switch_ratio"] <= 1.1 for m in p.values())),
    )


def _gpu_report(key: str, fmt: Callable[[float], str]) -> Callable[[dict], tuple[str, str]]:
    def measure(d: dict) -> tuple[str, str]:
        if not d.get("cuda"):
            return NO_GPU
        return ", ".join(f"{k} {fmt(m[key])}" for k, m in d["placements"].items()), "-"

    return measure


def _a14b_video(label: str) -> Callable[[dict], tuple[str, str]]:
    def measure(d: dict) -> tuple[str, str]:
        if not d.get("cuda"):
            return NO_GPU
        if label not in d["resolutions"]:
            return d["skipped"].get(f"resident, {label}", "not measured"), "not measured"
        m, pub = d["resolutions"][label], d["published"][label]
        return (
            f"{m['video_s']:.0f} s, peak {m['peak_memory_bytes'] / 1e9:.1f} GB, everything "
            f"resident on {d['name']} (published, H100 with offload: {pub['video_s']} s, "
            f"{pub['peak_gb']} GB)",
            "-",
        )

    return measure


def _a14b_switch(d: dict) -> tuple[str, str]:
    if not d.get("cuda"):
        return NO_GPU
    measured = [f"{k} {m['switch_ratio']:.2f}x" for k, m in d["modes"].items()]
    return ", ".join(measured + [f"{k}: {why}" for k, why in d["skipped"].items()]), "-"


def _moderation_fps(d: dict) -> tuple[str, str]:
    best = max(d["fps_batch1"], d["fps_batch16"])
    return (
        f"{best:.0f} frames/s (batch 1: {d['fps_batch1']:.0f}, batch 16: "
        f"{d['fps_batch16']:.0f}; whole 5 s clip: {d['clip_sampled_fps']:.0f} sampled frames/s)",
        _met(best >= 150),
    )


def _moderation_ratio(d: dict) -> tuple[str, str]:
    r = d["moderation_vs_postprocess"]
    return (
        f"{_pct(r)} ({d['rendition_moderation_s']:.2f} s of {d['postprocess_s']:.2f} s; CPU "
        f"time: {_pct(d['moderation_vs_postprocess_cpu'])})",
        _met(r <= 0.10),
    )


def _enhancement(d: dict) -> tuple[str, str]:
    rows = d["rows"]
    mapped = sum(r["mapping_ok"] for r in rows)
    if not rows or "results" not in rows[0]:
        return f"mapping right for {mapped}/{len(rows)}; generation not run", "-"

    def acc(key: str) -> str:
        out = []
        for cond in ("without", "with"):
            res = [x for r in rows for x in r["results"][cond]]
            ok = sum(
                (x["colour_ok"] and x["direction_ok"]) if key == "both" else x[key] for x in res
            )
            out.append(_pct(ok / len(res)))
        return " -> ".join(out)

    return (
        f"without -> with: both right {acc('both')}, colour {acc('colour_ok')}, direction "
        f"{acc('direction_ok')} ({len(rows)} prompts; mapping right for {mapped}/{len(rows)})",
        "-",
    )


def _orch_overhead(d: dict) -> tuple[str, str]:
    o = d.get("overhead")
    if not o:
        return "not measured: no tiny model", "not measured"
    return (
        f"{o['pct']:.1f}% ({o['overhead']:.2f} s of {o['total']:.2f} s, median of {o['videos']})",
        _met(o["pct"] <= 5),
    )


def _rendition_moderation(d: dict) -> tuple[str, str]:
    m = d.get("moderation")
    if not m:
        return "not measured: no tiny model", "not measured"
    return (
        f"{m['pct']:.1f}% ({m['moderation_s']:.3f} s of {m['postprocess_s']:.2f} s; the same "
        f"runs as the overhead)",
        _met(m["pct"] <= 10),
    )


def _orch_rate(d: dict) -> tuple[str, str]:
    c = d["dry_campaign"]
    return (
        f"{c['tasks_per_s']:.0f}/s ({c['products']:,} products, fan-out {c['fan_out']:.1f} s)",
        _met(c["tasks_per_s"] >= 20),
    )


def _orch_memory(d: dict) -> tuple[str, str]:
    c = d["dry_campaign"]
    return f"{c['peak_kib'] / 1024:.0f} MiB ({c['products']:,} products)", "-"


def _orch_workers(d: dict) -> tuple[str, str]:
    w = d.get("workers")
    if not w:
        return "not measured: worker campaigns skipped", "not measured"
    return (
        ", ".join(
            f"{n} worker{'s' * (n != '1')}: {v['per_hour']:.0f}/h ({v['videos']} videos)"
            for n, v in w.items()
        ),
        "-",
    )


def _api_p95(d: dict) -> tuple[str, str]:
    acc = d["p95_accepted_ms"]
    return (
        f"{d['p95_ms']:.1f} ms over {d['requests']} requests (accepted only: "
        f"{'-' if acc is None else f'{acc:.1f} ms'}; {d['requests_per_s']:.0f} requests/s)",
        _met(d["p95_ms"] < 50),
    )


def _api_errors(d: dict) -> tuple[str, str]:
    codes = ", ".join(f"{c}: {n}" for c, n in d["codes"].items())
    return f"{d['unexpected']} unexpected ({codes})", _met(d["unexpected"] == 0)


def _api_lost(d: dict) -> tuple[str, str]:
    ok = d["found"] == d["accepted"] == d["total_rows"]
    return f"{d['found']} of {d['accepted']} accepted jobs in the database", _met(ok)


GOALS: tuple[Goal, ...] = (
    Goal("lineage", 2, "upstream chain of a published video, 1M-asset graph", "p95 < 5 ms",
         _lineage),
    Goal("generation", 3, "seconds per video, tiny model on CPU", "reported",
         lambda d: (f"{d['seconds_per_video']:.2f} s", "-")),
    Goal("generation", 3, "our wrapper against calling `WanPipeline` directly", "<= 5% overhead",
         lambda d: (f"{d['overhead_pct']:+.1f}%", _met(d["overhead_pct"] <= 5))),
    Goal("generation", 3, "batched against sequential, 4 videos", ">= 1.5x", _batching(4)),
    Goal("generation", 3, "batched against sequential, 8 videos", ">= 1.5x", _batching(8)),
    Goal("tiny-eval", 15, "held-out combinations: colour right", ">= 95%",
         _accuracy("colour", 0.95)),
    Goal("tiny-eval", 15, "held-out combinations: shape right", ">= 90%",
         _accuracy("shape", 0.90)),
    Goal("tiny-eval", 15, "held-out combinations: direction right", ">= 95%",
         _accuracy("direction", 0.95)),
    Goal("gpu", 3, "GPU: normal denoising step time", "reported",
         _gpu_report("normal_step_s", lambda s: f"{s * 1000:.1f} ms")),
    Goal("gpu", 3, "GPU: expert-switch step against a normal step", "<= 1.1x", _gpu_ratio),
    Goal("gpu", 3, "GPU: peak memory", "reported",
         _gpu_report("peak_memory_bytes", lambda b: f"{b / 2**20:.0f} MiB")),
    Goal("gpu-a14b", 16, "A14B, 720p 81 frames: 40-step video (extrapolated)", "reported",
         _a14b_video("720p")),
    Goal("gpu-a14b", 16, "A14B, 480p 81 frames: 40-step video (extrapolated)", "reported",
         _a14b_video("480p")),
    Goal("gpu-a14b", 16, "A14B, 480p: expert-switch step against a normal step, per mode",
         "reported", _a14b_switch),
    Goal("moderation", 4, "sampled frames per second on 2 CPU cores (float model)",
         ">= 150 frames/s", _moderation_fps),
    Goal("moderation", 4, "moderating a 5 s clip against post-processing it (float model)",
         "<= 10%", _moderation_ratio),
    Goal("moderation-int8", 4, "sampled frames per second on 2 CPU cores (INT8 model)",
         ">= 150 frames/s", _moderation_fps),
    Goal("moderation-int8", 4, "moderating a 5 s clip against post-processing it (INT8 model)",
         "<= 10%", _moderation_ratio),
    Goal("postprocess", 5, "5 s 720p rendition: ours against one hand-written ffmpeg command",
         "<= 1.1x", lambda d: (f"{d['ours_vs_hand']:.2f}x ({d['ours_s']:.2f} s vs "
                               f"{d['hand_s']:.2f} s)", _met(d["ours_vs_hand"] <= 1.1))),
    Goal("postprocess", 5, "5 s 720p rendition: ours against moviepy only", ">= 3x faster",
         lambda d: (f"{d['moviepy_vs_ours']:.1f}x ({d['moviepy_s']:.2f} s vs "
                    f"{d['ours_s']:.2f} s)", _met(d["moviepy_vs_ours"] >= 3))),
    Goal("postprocess", 5, "per-user variant with the base cached", "<= 1.5 s",
         lambda d: (f"{d['variant_s']:.2f} s (max {d['variant_max_s']:.2f} s)",
                    _met(d["variant_s"] <= 1.5))),
    Goal("credentials", 19, "signing a 5 s 720p rendition against post-processing it",
         "<= 5%", lambda d: (f"{_pct(d['sign_vs_render'])} ({d['sign_s']:.3f} s of "
                             f"{d['render_s']:.2f} s; verifying {d['verify_s']:.3f} s)",
                             _met(d["sign_vs_render"] <= 0.05))),
    Goal("ads", 18, "15 s 9:16 720p ad from cached shots: ours against one hand-written "
         "ffmpeg command", "<= 1.2x",
         lambda d: (f"{d['ours_vs_hand']:.2f}x ({d['ours_s']:.2f} s vs {d['hand_s']:.2f} s)",
                    _met(d["ours_vs_hand"] <= 1.2))),
    Goal("ads", 18, "the whole ad on the small model, end to end", "reported",
         lambda d: (f"{d['e2e_s']:.1f} s ({d['generated']} shots generated; "
                    f"{d['e2e_cached_s']:.1f} s again from the cache)", "-")
         if "e2e_s" in d else ("not measured", "not measured")),
    Goal("enhancement", 6, "free-form prompt following without / with enhancement",
         "reported", _enhancement),
    Goal("orchestration", 7, "orchestration overhead per small-model video", "<= 5%",
         _orch_overhead),
    Goal("orchestration", 20, "orchestration overhead per small-model video (same run as the "
         "next row)", "<= 5%", _orch_overhead),
    Goal("orchestration", 20, "moderating the rendition against post-processing it, in the "
         "flow (frames from the render pass)", "<= 10%", _rendition_moderation),
    Goal("orchestration", 7, "1,000-product dry campaign: task submissions per second",
         ">= 20/s", _orch_rate),
    Goal("orchestration", 7, "1,000-product dry campaign: peak memory of the flow process",
         "reported", _orch_memory),
    Goal("orchestration", 7, "videos per hour end to end, 1 and 2 workers", "reported",
         _orch_workers),
    Goal("api", 8, "1,000 submissions: p95 latency of `POST /v1/videos`", "< 50 ms", _api_p95),
    Goal("api", 8, "errors other than the intended 429s", "none", _api_errors),
    Goal("api", 8, "nothing lost: every accepted job in the database", "all", _api_lost),
)  # fmt: skip


# --- running -------------------------------------------------------------------------------


@dataclass
class Result:
    bench: Bench
    status: str  # ok | failed | not run
    commands: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    data: dict | None = None
    section: str | None = None
    error: str = ""


def goal_rows(results: dict[str, Result]) -> list[tuple[str, str, str, str, str]]:
    """One (issue, what, goal, measured, met) per goal, from this run's results."""
    rows = []
    for g in GOALS:
        r = results.get(g.bench)
        if r is None or r.status == "not run":
            measured, met = "not run (left out with --only/--skip)", "not measured"
        elif r.data is None:
            measured, met = "failed (see its section)", "failed"
        else:
            try:
                measured, met = g.measure(r.data)
            except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
                measured, met = f"failed: no {exc} in its JSON", "failed"
            if r.status == "failed" and met not in ("not measured",):
                met = "failed"
        rows.append((f"#{g.issue}", g.what, g.goal, measured, met))
    return rows


def _argv(cmd: str, out: Path, js: Path, work: Path) -> list[str]:
    fill = {OUT: str(out), JSON: str(js)}
    return [fill.get(a, a.replace(WORK, str(work))) for a in shlex.split(cmd)]


def _display(argv: list[str], out: Path, js: Path, work: Path) -> str:
    """The command as shown in the report, scratch paths by name."""
    names = {str(out): "SECTION.md", str(js): "NUMBERS.json"}
    shown = shlex.join(names.get(a, a) for a in argv)
    return "python -m " + shown.replace(str(work), "$WORK")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def run_bench(bench: Bench, quick: bool, work: Path, log_dir: Path) -> Result:
    """Run one benchmark's commands, each in a subprocess of its own."""
    out, js = work / f"{bench.name}.md", work / f"{bench.name}.json"
    result = Result(bench, "ok")
    log = log_dir / f"{bench.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.perf_counter()
    with log.open("w") as lf:
        for cmd in bench.quick if quick else bench.full:
            argv = _argv(cmd, out, js, work)
            result.commands.append(_display(argv, out, js, work))
            lf.write(f"$ {result.commands[-1]}\n")
            lf.flush()
            left = bench.timeout_s - (time.perf_counter() - t0)
            proc = subprocess.Popen(
                [sys.executable, "-m", *argv],
                cwd=REPO,
                env=env,
                stdout=lf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=max(left, 1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                result.status, result.error = "failed", f"timed out after {bench.timeout_s} s"
                break
            finally:
                if proc.poll() is None:  # interrupted: leave nothing running
                    os.killpg(proc.pid, signal.SIGKILL)
            if rc != 0:
                result.status = "failed"
                result.error = f"`{result.commands[-1]}` exited with code {rc}"
                break
    result.wall_s = time.perf_counter() - t0
    if js.exists():
        try:
            result.data = json.loads(js.read_text())
        except json.JSONDecodeError:
            result.data = None
    if bench.name == "enhancement" and isinstance(result.data, list):
        result.data = {"rows": result.data}
    result.section = read_section(bench.section, out)
    if result.status == "ok" and (result.data is None or result.section is None):
        result.status = "failed"
        result.error = "it exited 0 but wrote no " + ("JSON" if result.data is None else "section")
    if result.status == "failed":
        note = (
            f"**This benchmark failed in this run**: {result.error} after "
            f"{result.wall_s:.0f} s. Last lines of its output:\n\n```text\n{_tail(log)}\n```\n"
        )
        result.section = (
            f"{result.section}\n\n{note}" if result.section else f"## {bench.title}\n\n{note}"
        )
    return result


# --- the report ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _git() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return sha + ("+dirty" if dirty else "")


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def compose(
    results: dict[str, Result],
    *,
    command: str,
    machine: str,
    started: datetime,
    wall_s: float,
    commit: str,
    load_start: str,
    load_end: str,
    quick: bool,
    stack_note: str,
) -> str:
    """The whole BENCHMARKS.md for one run."""
    lines = [
        "# Benchmarks",
        "",
        "Regenerated as a whole by `python -m benchmarks` (`benchmarks/run_all.py`): every number "
        "in this file comes from the run described here. Each section names the script that "
        "measures it; re-running one alone replaces only its section (the goal table then no "
        "longer matches).",
        "",
        f"- Command: `{command}`",
        f"- Machine: {machine}",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; total wall time {wall_s:.0f} s "
        f"({wall_s / 60:.1f} min)",
        f"- Commit: `{commit}`",
        f"- Load average (1 / 5 / 15 min): {load_start} at start, {load_end} at end",
        f"- Stack (PostgreSQL, S3, Prefect): {stack_note}",
    ]
    if quick:
        lines.append(
            "- **Quick (smoke) run**: small sizes and single repeats; these numbers check that "
            "every benchmark runs, they do not measure the goals."
        )
    lines += [
        "",
        "## Goals",
        "",
        "| issue | what | goal | measured in this run | met |",
        "|---|---|---|---|---|",
    ]
    for issue, what, goal, measured, met in goal_rows(results):
        met_cell = {"yes": "yes", "no": "**no**", "failed": "**failed**"}.get(met, met)
        lines.append(f"| {issue} | {_cell(what)} | {goal} | {_cell(measured)} | {met_cell} |")
    lines += [
        "",
        "## Runs",
        "",
        "| benchmark | command | wall s | result |",
        "|---|---|---:|---|",
    ]
    for r in results.values():
        cmds = "<br>".join(f"`{_cell(c)}`" for c in r.commands) or "-"
        status = r.status if r.status != "failed" else f"**failed**: {_cell(r.error)}"
        wall = f"{r.wall_s:.0f}" if r.status != "not run" else "-"
        lines.append(f"| {r.bench.name} | {cmds} | {wall} | {status} |")
    lines.append("")
    text = "\n".join(lines)
    for r in results.values():
        if r.section:
            text += "\n" + section_block(r.bench.section, r.section) + "\n"
    return text


# --- the stack ------------------------------------------------------------------------------


class Stack:
    """Bring the local stack up once; stop at the end only what this run started."""

    def __init__(self) -> None:
        self.settings = None
        self.before: set[str] = set()
        self.started = False
        self.note = "not needed"

    def up(self) -> None:
        from reelforge.core.orchestration import configure_prefect
        from reelforge.core.settings import get_settings
        from reelforge.ops import stack

        self.settings = get_settings()
        self.before = {n for n, s in stack.status(self.settings).items() if s.healthy}
        stack.up(self.settings, progress=lambda step: _say(f"stack: {step}"))
        configure_prefect(self.settings)  # the children inherit PREFECT_API_URL and friends
        self.started = True
        missing = sorted(set(stack.SERVICES) - self.before)
        self.note = (
            f"started by this run ({', '.join(missing)}), stopped at the end"
            if missing
            else "already running (left running)"
        )

    def down(self) -> None:
        if not self.started:
            return
        from reelforge.ops import stack

        stopped = stack.down(self.settings, keep=self.before)
        if stopped:
            _say(f"stack: stopped {', '.join(stopped)}")


def _say(msg: str) -> None:
    print(f"[benchmarks] {msg}", file=sys.stderr, flush=True)


def _names(value: str | None) -> list[str]:
    if not value:
        return []
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise SystemExit(f"unknown benchmark {', '.join(unknown)}: use one of {', '.join(NAMES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma-separated: {','.join(NAMES)}")
    ap.add_argument("--skip", help="comma-separated names to leave out")
    ap.add_argument("--quick", action="store_true", help="smoke sizes (numbers are not goals)")
    ap.add_argument("--out", type=Path, default=DEFAULT_PATH, help="default: BENCHMARKS.md")
    ap.add_argument("--logs", type=Path, default=None, help="keep each benchmark's output here")
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)
    try:
        only, skip = _names(args.only), _names(args.skip)
    except SystemExit as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for b in BENCHES:
            print(f"{b.name:16} issue {b.issue}  ~{b.estimate_s:>3} s  {b.title}")
        return 0
    selected = [b for b in BENCHES if (not only or b.name in only) and b.name not in skip]

    from benchmarks.machine import machine_line

    command = "python -m benchmarks" + (f" {shlex.join(argv)}" if argv else "")
    started, t0, load_start = datetime.now(UTC), time.perf_counter(), _load()
    work = Path(tempfile.mkdtemp(prefix="rf-benchmarks-"))
    log_dir = args.logs or work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    if not args.quick:
        total = sum(b.estimate_s for b in selected)
        _say(f"{len(selected)} benchmarks, about {total / 60:.0f} min on an idle 2-core machine")
    results = {b.name: Result(b, "not run") for b in BENCHES}
    stack = Stack()
    failed = False
    try:
        stack_error = ""
        if any(b.needs_stack for b in selected):
            try:
                stack.up()
            except Exception as exc:  # reported in the file; the other benchmarks go on
                stack_error = " ".join(str(exc).split())[:300] or type(exc).__name__
                stack.note = f"failed to start: {stack_error}"
        for i, b in enumerate(selected, 1):
            _say(f"[{i}/{len(selected)}] {b.name} ...")
            if b.needs_stack and stack_error:
                r = Result(b, "failed", error=f"the stack did not start: {stack_error}")
                r.section = f"## {b.title}\n\n**This benchmark failed in this run**: {r.error}.\n"
            else:
                r = run_bench(b, args.quick, work, log_dir)
            results[b.name] = r
            failed |= r.status == "failed"
            _say(f"[{i}/{len(selected)}] {b.name}: {r.status} ({r.wall_s:.0f} s) {r.error}")
    finally:
        stack.down()
    text = compose(
        results,
        command=command,
        machine=machine_line(),
        started=started,
        wall_s=time.perf_counter() - t0,
        commit=_git(),
        load_start=load_start,
        load_end=_load(),
        quick=args.quick,
        stack_note=stack.note,
    )
    write_file(text, args.out)
    _say(f"wrote {args.out}")
    if failed:
        _say(f"some benchmarks failed; their output is in {log_dir}")
    if args.logs is not None or not failed:
        shutil.rmtree(work, ignore_errors=True)  # --logs, when given, lies elsewhere
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
