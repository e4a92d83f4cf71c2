"""`reelforge retry` of a failed video run prints the video, as `reelforge generate` does.
Needs the small model (models/tiny)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
REELFORGE = str(Path(sys.executable).parent / "reelforge")
GENERATE_KEYS = {"asset_id", "uri", "url", "thumbnail_url", "flow_run_id", "sha256", "size",
                 "duration_s", "enhanced_prompt", "generation_cached"}  # fmt: skip


@pytest.mark.skipif(
    not (REPO / "models" / "tiny" / "model_index.json").exists(), reason="needs the small model"
)
def test_retry_of_a_video_run_prints_what_generate_prints(stack):
    def cli(*args: str, **env: str) -> tuple[int, dict]:
        done = subprocess.run(
            [REELFORGE, *args, "--json"], capture_output=True, text=True,
            env={**os.environ, **env}, timeout=600, cwd=REPO,
        )  # fmt: skip
        return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])

    tenant = f"retry-{uuid.uuid4().hex[:8]}"
    failpoints = f"publish:1,retry-{uuid.uuid4().hex[:8]}:0"  # a fresh counter: fails once
    code, failed = cli("generate", "a red circle moves from left to right", "--tenant", tenant,
                       REELFORGE_FAILPOINTS=failpoints)  # fmt: skip
    assert code != 0 and "failpoint publish fired" in failed["error"]

    code, retried = cli("retry", failed["flow_run_id"])
    assert code == 0, retried
    assert set(retried) >= GENERATE_KEYS
    assert retried["flow_run_id"] == failed["flow_run_id"] and retried["state"] == "COMPLETED"
    assert f"/reelforge-published/{tenant}/" in retried["url"]
    code, videos = cli("videos", "--tenant", tenant)
    assert [v["asset_id"] for v in videos["videos"]] == [retried["asset_id"]]
