"""The benchmark runner: goal table, whole-file rewrite, failures (benchmarks/run_all.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.run_all import BENCHES, GOALS, NAMES, Result, compose, goal_rows, main
from reelforge.core.reports import read_section, write_file

REPO = Path(__file__).resolve().parents[2]
BY_NAME = {b.name: b for b in BENCHES}


def _rows(results: dict[str, Result]) -> dict[str, tuple[str, str]]:
    return {what: (measured, met) for _, what, _, measured, met in goal_rows(results)}


def _postprocess(ours_vs_hand: float, moviepy_vs_ours: float, variant_s: float) -> dict:
    return {
        "ours_vs_hand": ours_vs_hand, "ours_s": 5.0, "hand_s": 5.0 / ours_vs_hand,
        "moviepy_vs_ours": moviepy_vs_ours, "moviepy_s": 5.0 * moviepy_vs_ours,
        "variant_s": variant_s, "variant_max_s": variant_s + 0.2,
    }  # fmt: skip


def test_goal_rows_judge_each_goal_from_the_bench_json():
    results = {
        "postprocess": Result(BY_NAME["postprocess"], "ok", data=_postprocess(1.05, 2.9, 1.6)),
        "api": Result(
            BY_NAME["api"],
            "ok",
            data={
                "requests": 1000,
                "p95_ms": 49.9,
                "p95_accepted_ms": 51.0,
                "requests_per_s": 90,
                "codes": {"202": 800, "429": 199, "500": 1},
                "unexpected": 1,
                "accepted": 800,
                "found": 800,
                "total_rows": 800,
            },
        ),
        "gpu": Result(BY_NAME["gpu"], "ok", data={"cuda": False, "torch": "2.13.0+cpu"}),
    }
    rows = _rows(results)
    hand = rows["5 s 720p rendition: ours against one hand-written ffmpeg command"]
    assert hand == ("1.05x (5.00 s vs 4.76 s)", "yes")
    assert rows["5 s 720p rendition: ours against moviepy only"][1] == "no"  # 2.9x < 3x
    assert rows["per-user variant with the base cached"] == ("1.60 s (max 1.80 s)", "no")
    assert rows["1,000 submissions: p95 latency of `POST /v1/videos`"][1] == "yes"
    assert rows["errors other than the intended 429s"] == (
        "1 unexpected (202: 800, 429: 199, 500: 1)",
        "no",
    )
    assert rows["nothing lost: every accepted job in the database"][1] == "yes"
    gpu = rows["GPU: expert-switch step against a normal step"]
    assert gpu == ("not measured: no GPU was lent to this run", "not measured")
    # benches that did not run leave their goals unmeasured, never "yes"
    assert rows["held-out combinations: colour right"][1] == "not measured"
    assert len(goal_rows(results)) == len(GOALS)


def test_enhancement_row_compares_without_and_with():
    def res(colour: bool, direction: bool) -> list[dict]:
        return [{"colour_ok": colour, "direction_ok": direction}]

    rows = [
        {"mapping_ok": True, "results": {"without": res(False, True), "with": res(True, True)}},
        {"mapping_ok": False, "results": {"without": res(False, False), "with": res(True, False)}},
    ]
    result = Result(BY_NAME["enhancement"], "ok", data={"rows": rows})
    measured, met = _rows({"enhancement": result})[
        "free-form prompt following without / with enhancement"
    ]
    assert measured == (
        "without -> with: both right 0.0% -> 50.0%, colour 0.0% -> 100.0%, direction "
        "50.0% -> 50.0% (2 prompts; mapping right for 1/2)"
    )
    assert met == "-"


def test_goal_rows_of_a_failed_bench_say_failed_even_with_partial_numbers():
    results = {
        "postprocess": Result(
            BY_NAME["postprocess"], "failed", data=_postprocess(1.0, 4.0, 1.0), error="boom"
        ),
        "lineage": Result(BY_NAME["lineage"], "failed", error="exited with code 1"),
        "generation": Result(BY_NAME["generation"], "ok", data={"seconds_per_video": 4.2}),
    }
    rows = _rows(results)
    # numbers it wrote are shown, but a failed run never counts as met
    assert rows["per-user variant with the base cached"] == ("1.00 s (max 1.20 s)", "failed")
    assert rows["upstream chain of a published video, 1M-asset graph"] == (
        "failed (see its section)",
        "failed",
    )
    # JSON without a goal's key: that row fails, the others of the bench still read
    assert rows["seconds per video, tiny model on CPU"] == ("4.20 s", "-")
    assert rows["our wrapper against calling `WanPipeline` directly"][1] == "failed"


def test_every_goal_belongs_to_a_bench_and_every_bench_has_goals():
    assert {g.bench for g in GOALS} == set(NAMES)
    assert {g.issue for g in GOALS} == {2, 3, 4, 5, 6, 7, 8, 15, 16, 18, 19, 20}


def test_issue_20_rows_read_overhead_and_moderation_from_one_orchestration_run():
    data = {
        "overhead": {"pct": 4.2, "overhead": 0.1, "total": 2.38, "videos": 3},
        "moderation": {"pct": 10.6, "moderation_s": 0.06, "postprocess_s": 0.57},
        "dry_campaign": {"tasks_per_s": 100, "products": 20, "fan_out": 0.2, "peak_kib": 2048},
    }
    rows = _rows({"orchestration": Result(BY_NAME["orchestration"], "ok", data=data)})
    overhead = rows["orchestration overhead per small-model video (same run as the next row)"]
    assert overhead == ("4.2% (0.10 s of 2.38 s, median of 3)", "yes")
    moderation = rows["moderating the rendition against post-processing it, in the flow (frames "
                      "from the render pass)"]  # fmt: skip
    assert moderation == ("10.6% (0.060 s of 0.57 s; the same runs as the overhead)", "no")
    no_model = _rows({"orchestration": Result(BY_NAME["orchestration"], "ok",
                                              data={"dry_campaign": data["dry_campaign"]})})  # fmt: skip
    assert (
        no_model["orchestration overhead per small-model video (same run as the next row)"][1]
        == "not measured"
    )


def test_compose_builds_the_file_from_this_run_only():
    ok = Result(BY_NAME["generation"], "ok", commands=["python -m x"], wall_s=3.0)
    ok.section = "## Generation\n\nnumbers"
    failed = Result(BY_NAME["api"], "failed", commands=["python -m y"], error="exit 1")
    failed.section = "## HTTP API\n\nfailed"
    results = {b.name: Result(b, "not run") for b in BENCHES}
    results |= {"generation": ok, "api": failed}
    text = compose(
        results, command="python -m benchmarks --only generation,api", machine="M",
        started=datetime(2026, 1, 2, 3, 4, tzinfo=UTC), wall_s=90, commit="abc1234+dirty",
        load_start="1.0 / 1.0 / 1.0", load_end="2.0 / 2.0 / 2.0", quick=False,
        stack_note="already running",
    )  # fmt: skip
    assert text.startswith("# Benchmarks\n")
    assert "- Command: `python -m benchmarks --only generation,api`" in text
    assert "2026-01-02 03:04 UTC; total wall time 90 s" in text
    assert "`abc1234+dirty`" in text and "Quick" not in text
    assert "| api | `python -m y` | 0 | **failed**: exit 1 |" in text
    assert "| lineage | - | - | not run |" in text
    assert text.index("section:generation -->") < text.index("section:api-submissions -->")
    assert "section:lineage" not in text


def test_write_file_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("old\n")
    inode = path.stat().st_ino
    write_file("new\n", path)
    assert path.read_text() == "new\n"
    assert path.stat().st_ino != inode  # a new file renamed over the old, not rewritten
    assert not path.with_name(path.name + ".tmp").exists()


def test_unknown_benchmark_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "B.md"
    assert main(["--only", "lineage,nope", "--out", str(out)]) == 2
    assert "unknown benchmark nope" in capsys.readouterr().err
    assert not out.exists()


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_quick_lineage_run_against_the_stack(stack, tmp_path):
    from reelforge.ops import stack as local_stack

    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# stale\n\n<!-- section:postprocess -->\nold\n<!-- /section:postprocess -->\n")
    done = _run(["--quick", "--only", "lineage", "--out", str(out)])
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# Benchmarks\n") and "stale" not in text
    assert read_section("postprocess", out) is None  # built from scratch
    assert "- Stack (PostgreSQL, S3, Prefect): already running (left running)" in text
    lineage = read_section("lineage", out)
    assert "Graph: 12,272 assets" in lineage and "--chains 2000 --samples 100" in lineage
    row = next(line for line in text.splitlines() if line.startswith("| #2 |"))
    assert "12,272 assets, 100 videos" in row and row.endswith(("| yes |", "| **no** |"))
    assert "| lineage | `python -m benchmarks.bench_lineage --chains 2000" in text
    # the runner did not start the stack, so it left it running
    assert all(s.healthy for s in local_stack.status(stack).values())


def test_failed_bench_is_reported_and_exits_nonzero(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    missing = tmp_path / "missing.onnx"
    done = _run(
        ["--quick", "--only", "moderation", "--out", str(out), "--logs", str(tmp_path / "logs")],
        env={"REELFORGE_MODERATION_MODEL": str(missing)},
    )
    assert done.returncode == 1
    assert "moderation: failed" in done.stderr
    assert "moderation model not found" in (tmp_path / "logs" / "moderation.log").read_text()
    text = out.read_text()  # written although a benchmark failed
    section = read_section("moderation", out)
    assert "**This benchmark failed in this run**" in section
    assert f"moderation model not found: {missing}" in section
    rows = [line for line in text.splitlines() if line.startswith("| #4 |")]
    assert len(rows) == 4
    assert sum(r.endswith("| failed (see its section) | **failed** |") for r in rows) == 2
    assert sum(r.endswith("| not measured |") for r in rows) == 2  # INT8: not selected
