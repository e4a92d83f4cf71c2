"""The A14B GPU check (benchmarks/a14b.py through benchmarks/bench_gpu.py): its CPU mode with
tiny dimensions runs the same code as on a GPU, so it cannot rot; without a GPU it says so."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import a14b
from benchmarks.run_all import BENCHES, Result, goal_rows
from reelforge.core.reports import read_section

REPO = Path(__file__).resolve().parents[2]
BY_NAME = {b.name: b for b in BENCHES}


def _rows(data: dict) -> dict[str, tuple[str, str]]:
    results = {"gpu-a14b": Result(BY_NAME["gpu-a14b"], "ok", data=data)}
    return {what: (measured, met) for _, what, _, measured, met in goal_rows(results)}


def test_tiny_cpu_run_measures_every_row_and_writes_its_section(tmp_path):
    out, js = tmp_path / "BENCHMARKS.md", tmp_path / "a14b.json"
    out.write_text("# Benchmarks\n")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_gpu", "--architecture", "a14b", "--device",
         "cpu", "--tiny", "--out", str(out), "--json", str(js)],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads(js.read_text())
    assert res["tiny"] and not res["cuda"] and res["frames"] == a14b.TINY_FRAMES
    assert set(res["resolutions"]) == {"480p", "720p"} and res["skipped"] == {}
    for m in res["resolutions"].values():
        steps = [m[k] for k in ("high_step_s", "pre_switch_step_s", "switch_step_s",
                                "low_step_s", "decode_s")]  # fmt: skip
        assert all(s > 0 for s in steps)
        # the extrapolation is the recipe's 26 + 14 steps, the switch's extra and the decode
        assert m["video_s"] == pytest.approx(
            26 * m["high_step_s"] + 14 * m["low_step_s"] + m["pre_switch_step_s"]
            - m["high_step_s"] + m["switch_step_s"] - m["low_step_s"] + m["decode_s"],
            abs=0.01,
        )  # fmt: skip
    assert list(res["modes"]) == ["cpu"]  # the GPU residency modes need CUDA
    # the sizes are the real A14B's, whatever the run's dimensions
    assert res["params"]["transformer"] == res["params"]["transformer_2"] == 14_288_753_728
    assert round(res["params"]["text_encoder"] / 1e9, 2) == 5.68
    section = read_section(a14b.SECTION, out)
    assert "tiny dimensions on cpu: a smoke run of the code path, no A14B numbers" in section
    assert "| 720p (80x48) |" in section and "| cpu |" in section
    assert "Published by Wan (Wan2.2 README" in section and "not measured here" in section
    assert "| high-noise expert (`transformer`) | 14.29 B | 28.6 GB |" in section


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is lent: it measures instead")
def test_without_a_gpu_the_section_says_so_with_the_computed_sizes():
    args = argparse.Namespace(device=None, tiny=False, budget_s=400)
    res = a14b.run(args)
    assert res["cuda"] is False and "modes" not in res
    section = a14b.markdown(res)
    assert "No GPU was lent to this session: not measured" in section
    assert "| UMT5-XXL encoder | 5.68 B | 11.4 GB |" in section
    assert "| resident | 68.8 GB |" in section and "| fp8 | 40.2 GB |" in section
    rows = _rows(res)
    assert rows["A14B, 720p 81 frames: 40-step video (extrapolated)"] == (
        "not measured: no GPU was lent to this run",
        "not measured",
    )


def test_recipe_split_and_timed_run_layout():
    # Wan2.2's 40 steps with flow shift 12: 26 on the high-noise expert, 14 on the low-noise
    assert a14b.expert_split() == (26, 14)
    # the timed runs: steps 0-2 high-noise, the switch at step 3 of 5
    assert a14b.expert_split(a14b.TIMED_STEPS, a14b.TIMED_SHIFT) == (3, 2)


def test_residency_follows_the_parameter_counts():
    gb = a14b.residency_gb({"transformer": 14e9, "transformer_2": 14e9, "text_encoder": 6e9,
                            "vae": 0})  # fmt: skip
    assert gb["resident"] == pytest.approx(68.0)
    assert gb["prefetch"] == pytest.approx(56.0)
    assert gb["model_offload"] == gb["prefetch, no room for both"] == pytest.approx(28.0)
    assert gb["fp8"] == pytest.approx(40.0)
    # UMT5's 256384 x 4096 embedding outweighs two 0.35 B blocks
    assert gb["group_offload"] == pytest.approx(2 * 256384 * 4096 / 1e9)


def test_goal_rows_from_a_gpu_run():
    mode = {"switch_ratio": 1.04}
    data = {
        "cuda": True,
        "name": "NVIDIA H200",
        "published": a14b.PUBLISHED,
        "resolutions": {"480p": {"video_s": 250.4, "peak_memory_bytes": 75_000_000_000}},
        "modes": {"resident": mode, "prefetch": {"switch_ratio": 1.31}},
        "skipped": {"resident, 720p": "CUDA out of memory", "model_offload": "left out: ..."},
    }
    rows = _rows(data)
    assert rows["A14B, 480p 81 frames: 40-step video (extrapolated)"] == (
        "250 s, peak 75.0 GB, everything resident on NVIDIA H200 (published, H100 with "
        "offload: 326.9 s, 41.3 GB)",
        "-",
    )
    assert rows["A14B, 720p 81 frames: 40-step video (extrapolated)"] == (
        "CUDA out of memory",
        "not measured",
    )
    switch = rows["A14B, 480p: expert-switch step against a normal step, per mode"]
    assert switch[0].startswith("resident 1.04x, prefetch 1.31x, resident, 720p: CUDA out")
