"""`reelforge enhance`: JSON output, human output and exit code 2 on refused input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from reelforge.cli.enhance import register
from reelforge.core.settings import get_settings

runner = CliRunner()
app = typer.Typer()


@app.callback()
def _root() -> None:
    """Test root (forces sub-commands)."""


register(app)


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REELFORGE_HOME", str(tmp_path))
    monkeypatch.setenv("REELFORGE_GENERATOR", "tiny")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _json(*args: str) -> tuple[int, dict]:
    res = runner.invoke(app, ["enhance", *args, "--json"])
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stdout
    return res.exit_code, json.loads(lines[0])


def test_vocabulary_for_the_tiny_model() -> None:
    code, out = _json("a crimson ball drifting to the right")
    assert code == 0 and out["ok"] is True
    assert out["path"] == "vocabulary"
    assert out["enhanced_prompt"] == "a red circle moves from left to right"


def test_template_with_product_options(tmp_path: Path) -> None:
    pj = tmp_path / "p.json"
    pj.write_text(json.dumps({"name": "Aurora", "material": "oak"}))
    code, out = _json(
        "a cosy morning",
        "--template",
        "lifestyle",
        "--product-json",
        str(pj),
        "--colour",
        "sage green",
        "--category",
        "lamp",
    )
    assert code == 0 and out["path"] == "template" and out["template"] == "lifestyle"
    assert "Aurora, a sage green lamp made of oak" in out["enhanced_prompt"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["   "], "blank"),
        ([""], "empty"),
        (["x" * 10_000], "maximum is 2000"),
        (["🎉🎉"], "no words"),
        (["a mug", "--template", "nope"], "product_showcase"),
        (["a mug", "--product-json", "{not json"], "not valid JSON"),
        (["a mug", "--product-json", '{"weight": 3}'], "invalid product field weight"),
    ],
)
def test_refused_input_exits_2_with_one_json_object(args: list[str], fragment: str) -> None:
    code, out = _json(*args)
    assert code == 2
    assert out["ok"] is False and out["exit_code"] == 2
    assert fragment in out["error"]


def test_human_output_shows_prompt_and_fallback() -> None:
    res = runner.invoke(app, ["enhance", "a lovely mug"])
    assert res.exit_code == 0
    assert "a lovely mug" in res.stdout
    assert "path=original" in res.stdout and "fallback" in res.stdout
    bad = runner.invoke(app, ["enhance", "a mug", "--template", "nope"])
    assert bad.exit_code == 2
