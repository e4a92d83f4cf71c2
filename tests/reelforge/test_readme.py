"""The README documents every setting exactly as the code defines it."""

from __future__ import annotations

from pathlib import Path

from scripts.settings_table import settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_matches_the_settings_model():
    assert settings_table() in README.read_text(), (
        "README's settings table is stale: paste `python -m scripts.settings_table` into it"
    )


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in README.read_text()
    assert "scripts/test.sh" in ci
