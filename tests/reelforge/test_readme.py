"""The README stays short and points at manuals that exist; the configuration manual documents
every setting exactly as the code defines it."""

from __future__ import annotations

import re
from pathlib import Path

from scripts.settings_table import settings_table

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
CONFIGURATION = REPO / "docs" / "configuration.md"
MAX_README_LINES = 250


def test_configuration_settings_table_matches_the_settings_model():
    assert settings_table() in CONFIGURATION.read_text(), (
        "docs/configuration.md's settings table is stale: "
        "paste `python -m scripts.settings_table` into it"
    )


def test_readme_test_command_is_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in README.read_text()
    assert "scripts/test.sh" in ci


def test_readme_is_short():
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move the detail to docs/"
    )


def test_readme_links_to_manuals_that_exist():
    linked = re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)", README.read_text())
    assert linked, "README.md links to no manual in docs/"
    missing = sorted({path for path in linked if not (REPO / path).is_file()})
    assert not missing, f"README.md links to manuals that do not exist: {missing}"
