from __future__ import annotations

import numpy as np
import pytest

from reelforge.core.errors import InvalidInput
from tasks.postprocess.lut import (
    PRESETS,
    Lut3D,
    parse_cube,
    parse_cube_text,
    preset_lut,
    resolve_lut,
    write_cube,
)
from tasks.postprocess.renditions import render_rendition, rendition_preset

from .conftest import EXAMPLES, frame_at, make_clip


def _cube(size: int, rows: list[str], header: str = "") -> str:
    return f'TITLE "t"\n{header}LUT_3D_SIZE {size}\n' + "\n".join(rows) + "\n"


def _identity_rows(size: int) -> list[str]:
    v = np.linspace(0, 1, size)
    return [f"{r} {g} {b}" for b in v for g in v for r in v]


def test_parse_identity_red_fastest():
    lut = parse_cube_text(_cube(2, _identity_rows(2)))
    assert lut.size == 2 and lut.title == "t"
    # row 1 (second row) is r=1, g=0, b=0: red changes fastest
    assert lut.table.reshape(-1, 3)[1].tolist() == [1.0, 0.0, 0.0]
    assert lut.table[1, 0, 0].tolist() == [0.0, 0.0, 1.0]  # [b, g, r]


def test_domain_and_comments():
    text = "# comment\n" + _cube(
        2, _identity_rows(2), header="DOMAIN_MIN 0 0 0\nDOMAIN_MAX 2 2 2\n"
    )
    lut = parse_cube_text(text)
    assert lut.domain_max == (2.0, 2.0, 2.0)
    np.testing.assert_allclose(lut.apply(np.array([1.0, 1.0, 1.0])), [0.5, 0.5, 0.5], atol=1e-6)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (_cube(2, _identity_rows(2)[:-1]), "wrong row count: LUT_3D_SIZE 2 needs 8 rows, found 7"),
        (_cube(2, [*_identity_rows(2), "0 0 0"]), "line 11: too many rows"),
        (_cube(2, ["nan 0 0", *_identity_rows(2)[1:]]), "line 3: NaN or infinite"),
        (_cube(2, ["0 0 inf", *_identity_rows(2)[1:]]), "line 3: NaN or infinite"),
        (_cube(2, ["0 0", *_identity_rows(2)[1:]]), "line 3: expected 3 numbers, found 2"),
        (_cube(2, ["0 zero 0", *_identity_rows(2)[1:]]), "line 3: not a number"),
        (_cube(1, ["0 0 0"]), "LUT_3D_SIZE 1 is out of range"),
        (_cube(300, ["0 0 0"]), "LUT_3D_SIZE 300 is out of range"),
        ("LUT_1D_SIZE 4\n0 0 0\n", "1D LUTs are not supported"),
        ("0 0 0\n", "line 1: table row before LUT_3D_SIZE"),
        ('TITLE "x"\n', "no LUT_3D_SIZE"),
        (_cube(2, _identity_rows(2), header="FOO 1\n"), "line 2: unknown keyword 'FOO'"),
        (
            _cube(2, _identity_rows(2), header="DOMAIN_MIN 1 1 1\nDOMAIN_MAX 0 0 0\n"),
            "DOMAIN_MIN must be below",
        ),
    ],
)
def test_malformed_cube_one_line_error(text, needle):
    with pytest.raises(InvalidInput) as ei:
        parse_cube_text(text, name="bad.cube")
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg and msg.startswith("bad.cube")


def test_write_parse_roundtrip(tmp_path):
    lut = preset_lut("product-pop", size=9)
    p = write_cube(lut, tmp_path / "pp.cube")
    back = parse_cube(p)
    np.testing.assert_allclose(back.table, lut.table, atol=1e-6)
    assert back.sha256 == lut.sha256


def test_presets_are_sane_and_examples_match():
    n = preset_lut("neutral", 5)
    np.testing.assert_allclose(n.apply(np.array([0.2, 0.5, 0.8])), [0.2, 0.5, 0.8], atol=1e-6)
    warm = preset_lut("warm").apply(np.array([0.5, 0.5, 0.5]))
    cool = preset_lut("cool").apply(np.array([0.5, 0.5, 0.5]))
    assert warm[0] > warm[2] + 0.05 and cool[2] > cool[0] + 0.05
    pop = preset_lut("product-pop").apply(np.array([0.6, 0.4, 0.3]))
    assert pop[0] - pop[2] > 0.3  # more saturated than the input's 0.3 spread
    for name in PRESETS:  # examples/luts are what make_examples.py generates from these presets
        assert parse_cube(EXAMPLES / "luts" / f"{name}.cube").sha256 == preset_lut(name).sha256


def test_resolve_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(InvalidInput, match="unknown LUT 'sepia'"):
        resolve_lut("sepia", tmp_path)
    with pytest.raises(InvalidInput, match="does not exist"):
        resolve_lut(str(tmp_path / "nope.cube"), tmp_path)


def _swap_rb_lut(size: int = 17) -> Lut3D:
    v = np.linspace(0, 1, size)
    b, g, r = np.meshgrid(v, v, v, indexing="ij")
    return Lut3D("swap", size, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), np.stack([b, g, r], axis=-1))


def test_lut_effect_on_colour_patch_measured_from_output(tmp_path, cache_dir):
    """A flat (200, 100, 50) patch through an R<->B swap LUT whose file sits in a directory
    whose name is full of filter-graph syntax: the output patch must read (50, 100, 200)."""
    nasty = tmp_path / "it's a [lut]; dir, with: colons\\and back"
    cube = write_cube(_swap_rb_lut(), nasty / "swap.cube")
    clip = make_clip(tmp_path / "patch.mp4", seconds=1.0, bg=(200, 100, 50), fg=(200, 100, 50))
    r = render_rendition(clip, tmp_path / "o.mp4", rendition_preset("16:9", "720p", 24), lut=str(cube),
                         cache_dir=cache_dir)  # fmt: skip
    px = frame_at(tmp_path / "o.mp4", 0.5)[300:420, 560:720].reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(px, [50, 100, 200], atol=6)
    assert r.inputs["lut"] == parse_cube(cube).sha256

    warm_out = tmp_path / "w.mp4"
    grey = make_clip(tmp_path / "grey.mp4", seconds=1.0, bg=(128, 128, 128), fg=(128, 128, 128))
    render_rendition(
        grey, warm_out, rendition_preset("16:9", "720p", 24), lut="warm", cache_dir=cache_dir
    )
    got = frame_at(warm_out, 0.5)[300:420, 560:720].reshape(-1, 3).mean(axis=0)
    expect = preset_lut("warm").apply(np.array([128, 128, 128]) / 255.0) * 255
    np.testing.assert_allclose(got, expect, atol=6)
