"""`reelforge moderate`: verdicts, detections and exit codes (0 passed, 3 blocked, 2 bad input)."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from reelforge.cli.moderate import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # keeps `moderate` a sub-command, as in the real CLI
        pass

    register(app)
    return app


def run(app: typer.Typer, *args: str):
    return CliRunner().invoke(app, ["moderate", *map(str, args)])


def test_passed_image_json(app, media) -> None:
    res = run(app, media["astronaut_png"], "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["ok"] is True and payload["status"] == "passed"
    det = payload["frames"][0]["detections"][0]
    assert det["label"] == "FACE_FEMALE" and len(det["box"]) == 4 and "score" in det


def test_blocked_video_exit_3_with_detections(app, media) -> None:
    res = run(app, media["astro"], "--policy", "test-faces", "--json")
    assert res.exit_code == 3, res.output
    payload = json.loads(res.stdout)  # exactly one JSON object
    assert payload["ok"] is False and payload["category"] == "face"
    frames = payload["verdict"]["frames"]
    assert frames[0]["timestamp"] == 0.0 and frames[0]["detections"][0]["label"] == "FACE_FEMALE"
    human = run(app, media["astro"], "--policy", "test-faces")
    assert human.exit_code == 3 and "FACE_FEMALE" in human.output and "BLOCKED" in human.output


@pytest.mark.parametrize("name", ["corrupt", "empty", "bomb", "notes"])
def test_bad_input_one_line_exit_2(app, media, name: str) -> None:
    res = run(app, media[name])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in res.output
    res_json = run(app, media[name], "--json")
    assert res_json.exit_code == 2
    assert json.loads(res_json.stdout)["exit_code"] == 2


def test_unknown_policy_exit_2(app, media) -> None:
    res = run(app, media["astronaut_png"], "--policy", "nope", "--json")
    assert res.exit_code == 2 and "unknown safety policy" in json.loads(res.stdout)["error"]
