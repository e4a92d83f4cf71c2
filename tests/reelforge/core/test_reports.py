from __future__ import annotations

import threading

import pytest

from reelforge.core.reports import read_section, write_section


def test_write_replace_and_keep_other_sections(tmp_path):
    p = tmp_path / "BENCHMARKS.md"
    write_section("a", "## A\n\none", p)
    write_section("b", "## B\n\ntwo", p)
    write_section("a", "## A\n\nthree", p)
    text = p.read_text()
    assert text.startswith("# Benchmarks")
    assert read_section("a", p) == "## A\n\nthree"
    assert read_section("b", p) == "## B\n\ntwo"
    assert "one" not in text and text.count("section:a -->") == 2


def test_concurrent_writers_do_not_lose_sections(tmp_path):
    p = tmp_path / "B.md"
    ts = [threading.Thread(target=write_section, args=(f"s{i}", f"body {i}", p)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(read_section(f"s{i}", p) == f"body {i}" for i in range(8))


def test_bad_section_name(tmp_path):
    with pytest.raises(ValueError):
        write_section("no spaces", "x", tmp_path / "B.md")
