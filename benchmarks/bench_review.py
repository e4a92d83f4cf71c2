"""Versions and review: 3 takes in one batch against 3 separate runs, and approval to published.

On the local stack (``reelforge up`` first) with the configured generator (the small model on
CPU here), for a new tenant (nothing cached):

* versions: one versions run of 3 takes (``generate --versions 3 --review``: the takes
  generated in one batch, then checked, previewed and scored) against 3 separate versions runs
  of one take each (the same pipeline, other seeds: three runs, three single generations).
  Each repeat runs both, one after the other, so each repeat gives one ratio (separate /
  batch) measured under the same load; the goal is read on the median of those ratios (the
  best of each side alone pairs two unrelated moments of a shared machine).
* generation alone: the resident service's ``generate_many`` of the 3 requests in one batch
  against 3 single generations (no result cache), in the same repeats.
* approval -> published: ``review approve`` of take 1 (the decision recorded, then the
  publishing run: post-process with its safety gate, C2PA signing, publish).

One warm-up run first loads the model and fills the process's caches, as a worker has them.
Run: python -m benchmarks.bench_review [--repeats 5] [--no-write]. Writes the ``review``
section of BENCHMARKS.md via reelforge/core/reports.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.machine import cpu_model
from reelforge.core.jobs import VideoJob
from reelforge.core.version import code_version
from reelforge.ops.reviews import approve, start_versions

PROMPT = "a red square moves from left to right"
TAKES = 3


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def generation_alone(seed: int) -> tuple[float, float]:
    """One batch of 3 requests against 3 single generations (seconds each, no cache)."""
    from models.generator import GenerationRequest
    from models.service import get_service

    service = get_service()
    batch = [GenerationRequest(prompt=PROMPT, seed=seed + k) for k in range(TAKES)]
    singles = [GenerationRequest(prompt=PROMPT, seed=seed + 50 + k) for k in range(TAKES)]
    together, _ = _timed(lambda: service.generate_many(batch, use_cache=False))
    apart, _ = _timed(lambda: [service.generate_many([r], use_cache=False) for r in singles])
    return together, apart


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to edit")
    args = ap.parse_args()

    tenant = f"bench-review-{uuid.uuid4().hex[:8]}"
    job = VideoJob(tenant=tenant, prompt=PROMPT)  # the CLI's defaults (speed: quality)
    start_versions(job.model_copy(update={"seed": 9000}), 1)  # warm-up: model, caches, Prefect
    batch_s, separate_s, gen_batch_s, gen_apart_s, approve_s = [], [], [], [], []
    review = None
    for r in range(args.repeats):
        seed = 1000 * (r + 1)
        t, review = _timed(lambda s=seed: start_versions(job.model_copy(update={"seed": s}), TAKES))
        batch_s.append(t)
        t, _ = _timed(lambda s=seed: [start_versions(job.model_copy(update={"seed": s + 100 + k}), 1)
                                      for k in range(TAKES)])  # fmt: skip
        separate_s.append(t)
        together, apart = generation_alone(seed + 500)
        gen_batch_s.append(together)
        gen_apart_s.append(apart)
        t, _ = _timed(lambda rv=review: approve(tenant, str(rv.review_id), 1, agent="benchmark"))
        approve_s.append(t)

    # One ratio per repeat (both sides measured back to back, under the same load); the goal
    # is read on their median. The best and median of each side are kept beside them.
    best, med = min, statistics.median
    runs_ratios = [s / b for s, b in zip(separate_s, batch_s, strict=True)]
    gen_ratios = [s / b for s, b in zip(gen_apart_s, gen_batch_s, strict=True)]
    res = {
        "repeats": args.repeats,
        "takes": TAKES,
        "runs_ratio": med(runs_ratios),
        "runs_ratios": runs_ratios,
        "generation_ratio": med(gen_ratios),
        "generation_ratios": gen_ratios,
        "best_runs_ratio": best(separate_s) / best(batch_s),
        "approval_to_published_s": med(approve_s),
        "best": {
            "batch_run_s": best(batch_s),
            "separate_runs_s": best(separate_s),
            "generation_batch_s": best(gen_batch_s),
            "generation_separate_s": best(gen_apart_s),
            "approval_to_published_s": best(approve_s),
        },
        "medians": {
            "batch_run_s": med(batch_s),
            "separate_runs_s": med(separate_s),
            "generation_batch_s": med(gen_batch_s),
            "generation_separate_s": med(gen_apart_s),
            "approval_to_published_s": med(approve_s),
        },
        "loadavg": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    print(json.dumps(res, indent=2))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    if args.no_write:
        return
    ok = "yes" if res["runs_ratio"] >= 2 else "no"
    m, b = res["medians"], res["best"]
    spread = ", ".join(f"{r:.2f}" for r in sorted(runs_ratios))
    md = f"""## Versions and review

`benchmarks/bench_review.py`: the small model on CPU, a new tenant (nothing cached), after one
warm-up run. {TAKES} takes of one prompt in one versions run (one batch, then visual safety,
preview and score per take) against {TAKES} separate versions runs of one take each (other
seeds, the same pipeline); the generation alone (the resident service: one batch of {TAKES}
against {TAKES} single generations); and approving take 1 until it is published (decision
recorded, post-processing with its safety gate and signing, publish). {args.repeats} repeats;
each runs every measurement back to back, so each gives its own ratio under one load. The
goal is read on the median of those ratios; the seconds are medians (best of
{args.repeats} in brackets).

| step | seconds | goal | met |
|---|---|---|---|
| {TAKES} takes in one versions run (one batch) | {m["batch_run_s"]:.1f} ({b["batch_run_s"]:.1f}) | | |
| {TAKES} separate runs of one take | {m["separate_runs_s"]:.1f} ({b["separate_runs_s"]:.1f}) | | |
| separate runs / batch run, median of the {args.repeats} repeats' ratios | **{res["runs_ratio"]:.2f}x** (each repeat: {spread}; best against best: {res["best_runs_ratio"]:.2f}x) | >= 2x | {ok} |
| generation alone: one batch of {TAKES} | {m["generation_batch_s"]:.2f} ({b["generation_batch_s"]:.2f}) | | |
| generation alone: {TAKES} single generations | {m["generation_separate_s"]:.2f} ({b["generation_separate_s"]:.2f}); median ratio {res["generation_ratio"]:.2f}x | | |
| approval -> published | {m["approval_to_published_s"]:.1f} ({b["approval_to_published_s"]:.1f}) | | |

Load average during the run: {res["loadavg"]}. Machine: {cpu_model()}, {os.cpu_count()} cores
(shared with other jobs). Date: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}. Code:
{code_version()}. Command: `python -m benchmarks.bench_review --repeats {args.repeats}`.
"""
    from reelforge.core.reports import DEFAULT_PATH, write_section

    print("wrote", write_section("review", md, path=args.out or DEFAULT_PATH))


if __name__ == "__main__":
    main()
