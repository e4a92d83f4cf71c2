"""Property-based tests (hypothesis) of the parsers that meet untrusted input first: the prompt
normaliser (tasks/enhance/normalize.py) and the text gate's normalisation
(tasks/safety/text.py), the campaign spec and CSV parser (reelforge/campaigns/spec.py) and the
.cube LUT parser (tasks/postprocess/lut.py).

The common property: whatever comes in, the answer is a value or one line of ``InvalidInput``
(exit code 2), never another exception. Plus what each parser promises on top of that.
"""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reelforge.campaigns.load import load_products_csv, load_spec
from reelforge.campaigns.spec import CampaignSpec
from reelforge.core.errors import InvalidInput
from tasks.enhance.normalize import MAX_PROMPT_CHARS, normalize_prompt
from tasks.postprocess.lut import Lut3D, parse_cube_text
from tasks.safety.text import check_text
from tasks.safety.text import normalize as safety_normalize

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters nobody sees: zero-width, BOM, bidi overrides and isolates, NUL, ESC, DEL.
INVISIBLE = "\u200b\u200c\u2060\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\x00\x1b\x7f\x07"  # fmt: skip
invisible = st.text(alphabet=INVISIBLE, min_size=1, max_size=4)


def _refusal(exc: InvalidInput) -> str:
    message = str(exc)
    assert exc.exit_code == 2
    assert message and "\n" not in message and len(message) < 600, message
    return message


def _sprinkle(text: str, cuts: list[int], noise: list[str]) -> str:
    """Insert noise strings into text at the given (sorted, clipped) positions."""
    out, last = [], 0
    for cut, bit in zip(sorted(min(c, len(text)) for c in cuts), noise, strict=False):
        out += [text[last:cut], bit]
        last = cut
    return "".join([*out, text[last:]])


# --- prompt normaliser ----------------------------------------------------------------------


@FAST
@given(st.text(max_size=400))
def test_normalised_prompts_are_clean_and_normalising_again_changes_nothing(raw):
    try:
        out = normalize_prompt(raw)
    except InvalidInput as exc:
        _refusal(exc)
        return
    text = out.text
    assert text == text.strip() and "  " not in text and 0 < len(text) <= MAX_PROMPT_CHARS
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u200d" for ch in text), (
        "control and format characters are gone"
    )
    assert any(unicodedata.category(ch)[0] in "LN" for ch in text), "a prompt has words"
    assert text == unicodedata.normalize("NFC", text)
    again = normalize_prompt(text)
    assert again.text == text and again.notices == [], "normalising is idempotent"


@FAST
@given(
    st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "Zs", "P"]), max_size=80),
    st.lists(st.integers(0, 80), max_size=5),
    st.lists(invisible, min_size=5, max_size=5),
)
def test_invisible_characters_never_change_a_prompt(text, cuts, noise):
    """Zero-width and bidi characters are stripped: a prompt means the same with or without
    them (the same text, or the same kind of refusal)."""
    assume(text)  # "" is refused as empty, anything invisible as blank
    sprinkled = _sprinkle(text, cuts, noise)
    try:
        expected = normalize_prompt(text).text
    except InvalidInput as exc:
        with pytest.raises(InvalidInput) as info:
            normalize_prompt(sprinkled)
        # same reason (blank, too long, no words): the first words of the messages agree
        assert str(info.value).split()[:3] == str(exc).split()[:3] or "blank" in str(info.value)
        return
    assert normalize_prompt(sprinkled).text == expected


@FAST
@given(st.text(alphabet="aeiouAEIOUnc ", min_size=1, max_size=40))
def test_composed_and_decomposed_prompts_are_the_same_prompt(text):
    accented = "".join(ch + "\u0301" if ch in "aeiouAEIOU" else ch for ch in text)
    assume(accented.strip())
    composed = unicodedata.normalize("NFC", accented)
    assert normalize_prompt(accented).text == normalize_prompt(composed).text


# --- the text gate's normalisation -----------------------------------------------------------

BLOCKED = {"porn": "sexual", "nsfw": "sexual", "hentai": "sexual", "beheading": "violence", "suicide": "self-harm"}  # fmt: skip
SAFE_WORDS = ["red", "mug", "video", "of", "a", "bright", "summer", "lamp", "shows", "the"]
CONFUSABLE = {"o": "о", "a": "а", "e": "е", "p": "р", "c": "с"}  # Cyrillic look-alikes


@FAST
@given(st.text(max_size=200), st.lists(st.integers(0, 200), max_size=6), st.lists(invisible, min_size=6, max_size=6))  # fmt: skip
def test_safety_normalisation_ignores_invisible_characters(text, cuts, noise):
    assert safety_normalize(_sprinkle(text, cuts, noise)) == safety_normalize(text)


@FAST
@given(
    st.sampled_from(sorted(BLOCKED)),
    st.lists(st.sampled_from(SAFE_WORDS), max_size=4),
    st.lists(st.sampled_from(SAFE_WORDS), max_size=4),
    st.data(),
)
def test_blocked_terms_stay_blocked_however_they_are_disguised(term, before, after, data):
    """Case, full-width forms, accents, Cyrillic look-alikes and invisible characters inside
    the word do not get a blocked term past the gate."""
    disguised = []
    for ch in term:
        how = data.draw(st.sampled_from(["plain", "upper", "fullwidth", "accent", "lookalike"]))
        if how == "upper":
            ch = ch.upper()
        elif how == "fullwidth":
            ch = chr(ord(ch) - 0x21 + 0xFF01)
        elif how == "accent":
            ch = ch + "\u0301"
        elif how == "lookalike" and ch in CONFUSABLE and any(c not in CONFUSABLE for c in term):
            ch = CONFUSABLE[ch]  # mixed-script words only: a word must keep a Latin letter
        disguised.append(ch + data.draw(st.sampled_from(["", "\u200b", "\u202e", "\u00ad"])))
    prompt = " ".join([*before, "".join(disguised), *after])
    verdict = check_text(prompt)
    assert not verdict.passed, prompt
    assert verdict.category == BLOCKED[term]


# --- campaign spec parser --------------------------------------------------------------------

KEYS = ["name", "tenant", "template", "prompt", "text", "products", "renditions", "brand",
        "generation", "schedule", "concurrency", "policy", "personalisation", "sku", "cron",
        "timezone", "aspect", "fps", "quality", "seed", "steps", "csv", "logo", "lut"]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.sampled_from(["9:16", "0 6 * * 1", "UTC", "warm", "A-1", "a red ball", "{name}"])
)
yaml_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)


def _load(text: str | bytes, **files: str) -> CampaignSpec | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "campaign.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))  # fmt: skip
        for name, content in files.items():
            (Path(tmp) / name).write_text(content, encoding="utf-8", errors="surrogatepass")
        try:
            return load_spec(path)
        except InvalidInput as exc:
            message = _refusal(exc)
            assert message.startswith(("invalid campaign spec: ", "campaign spec ")), message
            for problem in exc.extra.get("problems", []):
                assert problem["file"] and (problem["line"] is None or problem["line"] >= 1)
            return None


@FAST
@given(st.text(max_size=300))
def test_any_text_is_a_spec_or_one_line_of_problems(text):
    _load(text)


@FAST
@given(st.binary(max_size=200))
def test_any_bytes_are_a_spec_or_one_line_of_problems(data):
    _load(data)


@SLOW
@given(st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=8))
def test_any_yaml_document_is_a_spec_or_one_line_of_problems(document):
    _load(yaml.safe_dump(document, allow_unicode=True))


LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
MIXED = LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
slugs = st.builds(str.__add__, st.sampled_from(LOWER), st.text(alphabet=LOWER + "-", max_size=20))
skus = st.builds(str.__add__, st.sampled_from(MIXED), st.text(alphabet=MIXED + "_-", max_size=15))
words = st.lists(st.sampled_from(SAFE_WORDS), min_size=1, max_size=6).map(" ".join)
renditions = st.lists(
    st.fixed_dictionaries(
        {
            "aspect": st.sampled_from(["16:9", "9:16", "1:1"]),
            "quality": st.sampled_from(["720p", "1080p"]),
            "fps": st.sampled_from([24, 30]),
        }
    ),
    min_size=1,
    max_size=6,
)


@st.composite
def valid_specs(draw) -> dict:
    product_skus = draw(st.lists(skus, min_size=1, max_size=6, unique=True))
    spec = {
        "name": draw(slugs),
        "tenant": draw(slugs),
        "products": [
            {"sku": sku, "name": draw(words), "prompt": draw(words)} for sku in product_skus
        ],
        "renditions": draw(renditions),
        "concurrency": draw(st.integers(1, 64)),
        "generation": {
            "seed": draw(st.integers(0, 2**63 - 1)),
            "speed": draw(st.sampled_from(["fast", "quality"])),
        },
    }
    if draw(st.booleans()):
        spec["schedule"] = {
            "cron": draw(
                st.sampled_from(["0 6 * * 1", "*/15 * * * *", "30 7 * * 1-5", "0 0 1 * *"])
            ),
            "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin", "Asia/Tokyo"])),
        }
    return spec


@SLOW
@given(valid_specs())
def test_valid_specs_load_and_survive_a_round_trip(document):
    spec = _load(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    assert spec is not None
    assert [p.sku for p in spec.products] == [p["sku"] for p in document["products"]]
    assert len(spec.jobs(spec.products[0])) == len(document["renditions"])
    again = _load(yaml.safe_dump(spec.model_dump(mode="json"), allow_unicode=True))
    assert again == spec


@SLOW
@given(valid_specs(), st.data())
def test_a_bad_sku_is_reported_at_its_own_line_and_field(document, data):
    index = data.draw(st.integers(0, len(document["products"]) - 1))
    bad = data.draw(st.sampled_from(["../x", "a b", "-lead", "x" * 65, "é", "a/b"]))
    document["products"][index]["sku"] = bad
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=10_000)
    lines = text.splitlines()
    expected_line = [i for i, line in enumerate(lines, 1) if line.lstrip("- ").startswith("sku:")][index]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "campaign.yaml"
        path.write_text(text)
        with pytest.raises(InvalidInput) as info:
            load_spec(path)
    first = info.value.extra["problems"][0]
    assert (first["field"], first["line"]) == (f"products[{index}].sku", expected_line), text
    assert "not allowed" in first["message"]


cells = st.text(max_size=40)


@FAST
@given(st.lists(st.lists(cells, min_size=1, max_size=5), max_size=6), st.booleans())
def test_any_products_csv_is_rows_or_one_line_of_problems(rows, header):
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    if header:
        writer.writerow(["sku", "name", "prompt"])
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "products.csv"
        path.write_text(buf.getvalue(), encoding="utf-8", errors="surrogatepass")
        try:
            parsed = load_products_csv(path, shown="products.csv")
        except InvalidInput as exc:
            assert _refusal(exc).startswith("invalid campaign spec: products.csv")
            return
    assert parsed and all(line >= 2 for line, _ in parsed)
    assert len({row["sku"] for _, row in parsed}) == len(parsed), "SKUs are unique"


# --- .cube LUT parser ---------------------------------------------------------------------


finite = st.floats(-1000, 1000, allow_nan=False, width=32)


@st.composite
def luts(draw) -> Lut3D:
    """Tables from a seeded generator (cheap to draw), with a few drawn values planted in
    them (edge cases hypothesis finds: -0.0, tiny, huge, many digits)."""
    size = draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.uniform(-2, 2, size**3 * 3)
    for value in draw(st.lists(finite, max_size=4)):
        values[int(rng.integers(values.size))] = value
    lo = draw(st.tuples(finite, finite, finite))
    span = draw(st.tuples(*[st.floats(0.01, 100)] * 3))
    return Lut3D(
        title=draw(st.text(max_size=20)),
        size=size,
        domain_min=lo,
        domain_max=tuple(a + b for a, b in zip(lo, span, strict=True)),
        table=np.asarray(values, dtype=np.float64).reshape(size, size, size, 3),
    )


@FAST
@given(luts())
def test_written_luts_parse_back_to_the_same_table(lut):
    text = lut.to_cube_text()
    back = parse_cube_text(text, name="x.cube")
    assert back.size == lut.size
    assert np.allclose(back.table, lut.table, atol=1e-6, rtol=0)
    assert np.allclose(back.domain_min, lut.domain_min, atol=1e-6)
    assert back.to_cube_text() == text, "writing a parsed LUT gives the same text"


@FAST
@given(st.text(max_size=400))
def test_any_text_is_a_lut_or_one_line_naming_the_file(text):
    try:
        lut = parse_cube_text(text, name="grade.cube")
    except InvalidInput as exc:
        assert _refusal(exc).startswith("grade.cube")
        return
    assert lut.table.shape == (lut.size,) * 3 + (3,) and np.isfinite(lut.table).all()


TOKENS = ["nan", "-inf", "1e309", "LUT_3D_SIZE 3", "LUT_1D_SIZE 2", 'TITLE "x"', "0.5 0.5",
          "DOMAIN_MIN 0 0 0", "DOMAIN_MAX 1 1", "a b c", "0.1 0.2 0.3 0.4", "", "# note"]  # fmt: skip


@SLOW
@given(luts(), st.lists(st.tuples(st.integers(0, 200), st.sampled_from(TOKENS)), max_size=4))
def test_mangled_luts_are_refused_at_their_line_or_still_valid(lut, edits):
    lines = lut.to_cube_text().splitlines()
    for at, token in edits:
        lines.insert(min(at, len(lines)), token)
    try:
        back = parse_cube_text("\n".join(lines), name="grade.cube")
    except InvalidInput as exc:
        assert _refusal(exc).startswith("grade.cube")
        return
    assert np.isfinite(back.table).all() and back.table.shape[0] == back.size


@FAST
@given(luts(), st.data())
def test_a_non_finite_entry_is_refused_at_its_line(lut, data):
    lines = lut.to_cube_text().splitlines()
    first_row = next(i for i, line in enumerate(lines) if line[0] in "-0123456789")
    row = data.draw(st.integers(first_row, len(lines) - 1))
    col = data.draw(st.integers(0, 2))
    parts = lines[row].split()
    parts[col] = data.draw(st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999"]))
    lines[row] = " ".join(parts)
    with pytest.raises(InvalidInput, match=rf"^grade\.cube line {row + 1}: NaN or infinite"):
        parse_cube_text("\n".join(lines), name="grade.cube")


@FAST
@given(luts(), st.integers(1, 7))
def test_missing_rows_are_counted(lut, missing):
    lines = lut.to_cube_text().splitlines()
    rows = lut.size**3
    with pytest.raises(InvalidInput, match=rf"needs {rows} rows, found {rows - missing}$"):
        parse_cube_text("\n".join(lines[:-missing]), name="grade.cube")
