"""The bad-input corpus: what a merchant, a script or an attacker may send, and what we answer.

Each case is data: the input (inline text, or a generator for binary files), how it is given
(a `reelforge` command line or an HTTP request), the expected exit code (CLI: 2 invalid input,
3 blocked by safety, see reelforge/core/errors.py) or HTTP status, and a fragment of the one-line
error, which names the problem and the fix. tests/reliability/test_bad_inputs.py runs them.

In command lines and files, ``@DIR@`` is the case's scratch folder and ``@TENANT@`` a fresh
tenant of its own (so that "nothing was written" can be checked per tenant).
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["prompt", "campaign", "csv", "logo", "music", "lut", "api"]
Content = str | bytes | Callable[[], bytes]


@dataclass(frozen=True)
class Case:
    id: str
    kind: Kind
    fragment: str  # a substring of the one-line error
    # CLI: argv after `reelforge` (--json is added) and the files it reads, by name.
    argv: tuple[str, ...] = ()
    files: dict[str, Content] = field(default_factory=dict)
    exit_code: int | None = None
    # The run gets as far as a flow (safety-blocked prompts): its prompt and verdict are kept
    # as evidence, but nothing is generated or published.
    flow: bool = False
    # API: method, path, a JSON body or raw bytes, and which credentials to send.
    method: str = "POST"
    path: str = ""
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: Literal["key", "none"] | str = "key"
    setup: Literal["campaign", "queue_full"] | None = None
    status: int | None = None

    @property
    def cli(self) -> bool:
        return self.kind != "api"


# --- binary inputs ------------------------------------------------------------------------


def _png(size: tuple[int, int] = (64, 64), mode: str = "RGBA", fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 160) if mode == "RGBA" else 0).save(buf, fmt)
    return buf.getvalue()


def _wav(samples: list[int] | None = None, rate: int = 8000) -> bytes:
    import math

    if samples is None:  # one second of an audible 440 Hz tone
        samples = [int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(rate)]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(s.to_bytes(2, "little", signed=True) for s in samples))
    return buf.getvalue()


def png_ok() -> bytes:
    return _png()


def png_truncated() -> bytes:
    data = _png()
    return data[: len(data) // 2]


def png_10000px() -> bytes:
    return _png((10000, 10000), mode="1")  # 12 kB on disk, 100 megapixels decoded


def png_4px() -> bytes:
    return _png((4, 4))


def jpeg_named_png() -> bytes:
    return _png(mode="RGB", fmt="JPEG")


def wav_ok() -> bytes:
    return _wav()


def wav_silent() -> bytes:
    return _wav([0] * 8000)


def wav_truncated() -> bytes:
    return _wav()[:30]


def cube_binary() -> bytes:
    return bytes(range(256)) * 4


def csv_latin1() -> bytes:
    return "sku,name,prompt\nMUG-1,Café mug,a red circle moves up\n".encode("latin-1")


def csv_10mb_line() -> bytes:
    return b"sku,name,prompt\nMUG-1,Ember mug," + b"x" * (10 * 1024 * 1024) + b"\n"


def users_10mb_line() -> bytes:
    return b"user_id,sku,first_name\nu-1,MUG-1," + b"A" * (10 * 1024 * 1024) + b"\n"


# --- text inputs --------------------------------------------------------------------------

GOOD_SPEC = """\
name: bad-input
tenant: @TENANT@
text: "{name} {price}"
products:
  - sku: MUG-1
    name: Ember mug
    prompt: a red circle moves from left to right
    price: "$18"
  - sku: LAMP-2
    name: Aurora lamp
    prompt: a blue triangle moves up
    price: "$49"
renditions: ["9:16"]
personalisation:
  text: "Hi {first_name}! {name}"
  user_fields: [first_name]
"""
CSV_SPEC = GOOD_SPEC.split("products:")[0] + "products:\n  csv: products.csv\n"
GOOD_USERS = "user_id,sku,first_name\nu-1,MUG-1,Ana\nu-2,LAMP-2,Kenji\n"
GOOD_PRODUCTS = "sku,name,prompt\nMUG-1,Ember mug,a red circle moves up\n"


def spec(old: str = "", new: str = "", *, append: str = "") -> str:
    """GOOD_SPEC with one edit (``old`` must occur) and/or lines appended."""
    if old:
        assert old in GOOD_SPEC, old
    return (GOOD_SPEC.replace(old, new, 1) if old else GOOD_SPEC) + append


def lut(size: int, rows: list[str] | None = None, head: str = "") -> str:
    rows = rows if rows is not None else ["0.5 0.5 0.5"] * size**3
    return f"{head}LUT_3D_SIZE {size}\n" + "\n".join(rows) + "\n"


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{', '.join(f'*{prev}' for _ in range(9))}]")
    return "\n".join(lines) + "\nname: *i\n"


GEN = ("generate", "a red circle moves from left to right", "--tenant", "@TENANT@")
VALIDATE = ("campaign", "validate", "@DIR@/campaign.yaml")
RUN = ("campaign", "run", "@DIR@/campaign.yaml")
PERSONALISE = ("personalise", "@DIR@/campaign.yaml", "@DIR@/users.csv")


def prompt(case_id: str, text: str, code: int, fragment: str, **kw: Any) -> Case:
    return Case(case_id, "prompt", fragment, ("generate", text, "--tenant", "@TENANT@"), exit_code=code, **kw)  # fmt: skip


def flag(case_id: str, kind: Kind, opt: str, name: str, content: Content, fragment: str) -> Case:
    """`reelforge generate` with a brand-kit file."""
    return Case(case_id, kind, fragment, (*GEN, opt, f"@DIR@/{name}"), {name: content}, exit_code=2)  # fmt: skip


def campaign(case_id: str, text: str, fragment: str, argv: tuple[str, ...] = VALIDATE, **files: Content) -> Case:  # fmt: skip
    return Case(case_id, "campaign", fragment, argv, {"campaign.yaml": text, **files}, exit_code=2)


def products(case_id: str, csv: Content, fragment: str) -> Case:
    return Case(case_id, "csv", fragment, VALIDATE, {"campaign.yaml": CSV_SPEC, "products.csv": csv}, exit_code=2)  # fmt: skip


def users(case_id: str, csv: Content, fragment: str) -> Case:
    return Case(case_id, "csv", fragment, PERSONALISE, {"campaign.yaml": GOOD_SPEC, "users.csv": csv}, exit_code=2)  # fmt: skip


NAN_ROW = ["nan 0.5 0.5"] + ["0.5 0.5 0.5"] * 7

# fmt: off
CLI_CASES: list[Case] = [
    # --- prompts (`reelforge generate`) -----------------------------------------------------
    prompt("prompt-empty", "", 2, "the prompt is empty: pass a short description"),
    prompt("prompt-whitespace", "  \t\n   ", 2, "the prompt is blank"),
    prompt("prompt-10000-chars", "a red ball " * 910, 2, "the maximum is 2000: shorten it"),
    prompt("prompt-control-chars-only", "\x00\x07\x1b\x7f", 2, "only whitespace or control characters"),
    prompt("prompt-emoji-only", "🎉🎁✨👍🏽", 2, "no words (only emoji"),
    prompt("prompt-punctuation-only", "!!! ... ???", 2, "describe the video in words"),
    prompt("prompt-rtl-override-only", "\u202e\u202d\u2066\u2069", 2, "the prompt is blank"),
    prompt("prompt-zero-width-only", "\u200b\u200c\ufeff", 2, "the prompt is blank"),
    prompt("prompt-blocked-leetspeak", "a p0rn video of a red mug", 3, "blocked", flow=True),
    prompt("prompt-blocked-rtl-hidden", "a red mug s\u202ee\u202cx on a table", 3, "blocked", flow=True),
    Case("prompt-unknown-template", "prompt", "unknown template 'nonsense': choose one of", (*GEN, "--template", "nonsense"), exit_code=2),
    Case("prompt-overlay-text-too-long", "prompt", "overlay text is 2000 characters; the limit is 1000", (*GEN, "--text", "x" * 2000), exit_code=2),
    Case("prompt-aspect-4-3", "prompt", "invalid aspect: Input should be '16:9', '9:16' or '1:1'", (*GEN, "--aspect", "4:3"), exit_code=2),
    Case("prompt-fps-60", "prompt", "invalid fps: Input should be 24 or 30", (*GEN, "--fps", "60"), exit_code=2),
    Case("prompt-bad-tenant", "prompt", "invalid tenant: String should match pattern", ("generate", "a red ball", "--tenant", "Acme Shop"), exit_code=2),
    Case("prompt-unknown-policy", "prompt", "unknown safety policy 'no-such-policy': use one of default", (*GEN, "--policy", "no-such-policy"), exit_code=2),
    Case("prompt-out-is-a-directory", "prompt", "is a directory: give a file name", (*GEN, "--out", "@DIR@"), exit_code=2),
    Case("prompt-enhance-empty", "prompt", "the prompt is empty", ("enhance", "", "--backend", "template"), exit_code=2),
    # --- logos ------------------------------------------------------------------------------
    flag("logo-truncated-png", "logo", "--logo", "logo.png", png_truncated, "is corrupt or truncated (OSError); re-export it"),
    flag("logo-zero-bytes", "logo", "--logo", "logo.png", b"", "logo file logo.png is empty; re-export it"),
    flag("logo-10000x10000", "logo", "--logo", "logo.png", png_10000px, "too many pixels to decode safely; the limit is 4096 px per side, resize it"),
    flag("logo-jpeg-named-png", "logo", "--logo", "logo.png", jpeg_named_png, "logo logo.png is JPEG; use a PNG"),
    flag("logo-text-named-png", "logo", "--logo", "logo.png", "<svg>not a png</svg>\n", "is not a readable image; use a PNG"),
    flag("logo-4x4", "logo", "--logo", "logo.png", png_4px, "is 4x4 px; use at least 8 px per side"),
    Case("logo-missing-file", "logo", "does not exist; check the path", (*GEN, "--logo", "@DIR@/nowhere.png"), exit_code=2),
    # --- music ------------------------------------------------------------------------------
    flag("music-zero-byte-mp3", "music", "--music", "music.mp3", b"", "music file music.mp3 is empty; pass a WAV, MP3, M4A or FLAC"),
    flag("music-wav-that-is-text", "music", "--music", "music.wav", "RIFF? no, just text\n" * 20, "is corrupt or not audio"),
    flag("music-silent-wav", "music", "--music", "music.wav", wav_silent, "is silent (peak -inf dBFS); pass a track with audible sound"),
    flag("music-truncated-wav", "music", "--music", "music.wav", wav_truncated, "re-export it as WAV/MP3/M4A/FLAC"),
    flag("music-png-named-mp3", "music", "--music", "music.mp3", png_ok, "is png_pipe; use WAV, MP3, M4A or FLAC"),
    Case("music-missing-file", "music", "does not exist; check the path", (*GEN, "--music", "@DIR@/nowhere.wav"), exit_code=2),
    # --- LUTs -------------------------------------------------------------------------------
    flag("lut-nan", "lut", "--lut", "grade.cube", lut(2, NAN_ROW), "grade.cube line 2: NaN or infinite value; every LUT entry must be a finite number"),
    flag("lut-infinity", "lut", "--lut", "grade.cube", lut(2, ["inf 0 0"] + ["0 0 0"] * 7), "NaN or infinite value"),
    flag("lut-too-few-rows", "lut", "--lut", "grade.cube", lut(3, ["0.5 0.5 0.5"] * 8), "wrong row count: LUT_3D_SIZE 3 needs 27 rows, found 8"),
    flag("lut-too-many-rows", "lut", "--lut", "grade.cube", lut(2, ["0.5 0.5 0.5"] * 9), "too many rows; LUT_3D_SIZE 2 needs exactly 8 rows"),
    flag("lut-size-1000", "lut", "--lut", "grade.cube", lut(1000, []), "LUT_3D_SIZE 1000 is out of range; use 2..129"),
    flag("lut-1d", "lut", "--lut", "grade.cube", "LUT_1D_SIZE 4\n0 0 0\n", "1D LUTs are not supported; export a 3D LUT"),
    flag("lut-two-numbers-a-row", "lut", "--lut", "grade.cube", lut(2, ["0.5 0.5"] * 8), "grade.cube line 2: expected 3 numbers, found 2"),
    flag("lut-keyword-after-rows", "lut", "--lut", "grade.cube", lut(2) + 'TITLE "late"\n', "keyword TITLE after the table rows; keywords go first"),
    flag("lut-domain-inverted", "lut", "--lut", "grade.cube", lut(2, head="DOMAIN_MIN 1 1 1\nDOMAIN_MAX 0 0 0\n"), "DOMAIN_MIN must be below DOMAIN_MAX"),
    flag("lut-binary", "lut", "--lut", "grade.cube", cube_binary, "is not text; expected an Adobe/IRIDAS .cube file"),
    Case("lut-unknown-preset", "lut", "unknown LUT 'sepia'; use one of neutral, warm, cool, product-pop", (*GEN, "--lut", "sepia"), exit_code=2),
    Case("lut-missing-file", "lut", "does not exist; pass a .cube file or a preset name", (*GEN, "--lut", "@DIR@/nowhere.cube"), exit_code=2),
    # --- campaign specs ---------------------------------------------------------------------
    campaign("spec-unknown-key", spec(append="colour_grade: warm\n"), ":17: colour_grade: unknown key (Extra inputs are not permitted): remove it or fix its spelling"),
    campaign("spec-negative-concurrency", spec(append="concurrency: -2\n"), ":17: concurrency: Input should be greater than or equal to 1"),
    campaign("spec-bad-cron", spec(append="schedule: {cron: '0 25 * * *'}\n"), "schedule.cron: invalid cron expression '0 25 * * *': use five fields"),
    campaign("spec-cron-six-fields", spec(append="schedule: {cron: '0 0 6 * * 1'}\n"), "invalid cron expression"),
    campaign("spec-unknown-timezone", spec(append="schedule: {cron: '0 6 * * 1', timezone: Mars/Olympus}\n"), "unknown time zone 'Mars/Olympus': use an IANA name"),
    campaign("spec-no-products", spec(GOOD_SPEC[GOOD_SPEC.index("products:"):GOOD_SPEC.index("renditions")], "products: []\n"), "products: List should have at least 1 item"),
    campaign("spec-duplicate-sku", spec("sku: LAMP-2", "sku: MUG-1"), ":9: products[1].sku: duplicate SKU 'MUG-1' (also products[0])"),
    campaign("spec-sku-path-traversal", spec("sku: LAMP-2", "sku: ../../etc/passwd"), "SKU '../../etc/passwd' is not allowed: use letters, digits"),
    campaign("spec-unknown-placeholder", spec('text: "{name} {price}"', 'text: "{name} {stock}"'), "text: unknown placeholder {stock}: use"),
    campaign("spec-emoji-only-product-prompt", spec("prompt: a blue triangle moves up", 'prompt: "🎉🎁"'), "products[1].prompt: prompt: the prompt has no words"),
    campaign("spec-seven-renditions", spec('renditions: ["9:16"]', 'renditions: ["9:16", "9:16", "16:9", "1:1", "1:1", "16:9", "9:16"]'), "renditions: List should have at most 6 items"),
    campaign("spec-rendition-fps-60", spec('renditions: ["9:16"]', "renditions: [{aspect: '9:16', fps: 60}]"), "renditions[0].fps: Input should be 24 or 30"),
    campaign("spec-negative-seed", spec(append="generation: {seed: -1}\n"), "generation.seed: Input should be greater than or equal to 0"),
    campaign("spec-zero-steps", spec(append="generation: {steps: 0}\n"), "generation.steps: Input should be greater than or equal to 1"),
    campaign("spec-duplicate-key", spec(append="name: again\n"), ":17: name: duplicate key"),
    campaign("spec-yaml-syntax", spec("renditions: [\"9:16\"]", "renditions: [\"9:16\""), "YAML:"),
    campaign("spec-not-a-mapping", "- just\n- a list\n", "a campaign spec is a YAML mapping"),
    campaign("spec-billion-laughs", _billion_laughs(), "YAML aliases (&anchor / *alias) are not supported: write the values out"),
    campaign("spec-python-object-tag", spec("name: bad-input", 'name: !!python/object/apply:os.system "echo pwned"'), ":1: name: YAML: cannot read the value tagged tag:yaml.org,2002:python/object/apply:os.system"),
    campaign("spec-bad-int-tag", spec(append="concurrency: !!int two\n"), ":17: concurrency: YAML: cannot read the value tagged tag:yaml.org,2002:int (invalid literal for int() with base 10: 'two'): write a plain value without a !!tag"),
    campaign("spec-deeply-nested", "name: " + "[" * 5000 + "]" * 5000 + "\n", "YAML nested too deeply (5000 levels of [ or {): a campaign spec is a few levels deep"),
    campaign("spec-deep-block-nesting", "".join(f"{' ' * i}k{i}:\n" for i in range(400)) + " " * 400 + "v\n", "nested too deeply"),
    campaign("spec-not-utf8", "name: caf\xe9\n".encode("latin-1"), "is not UTF-8 text (byte 9): save it as UTF-8"),
    campaign("spec-nul-in-text", spec('text: "{name} {price}"', 'text: "{name}\\0{price}"'), "text: text contains the control character U+0000: remove it"),
    campaign("spec-brand-logo-truncated", spec(append="brand: {logo: logo.png}\n"), "brand.logo: logo logo.png is corrupt or truncated", RUN, **{"logo.png": png_truncated}),
    campaign("spec-brand-music-is-text", spec(append="brand: {music: music.wav}\n"), "brand.music: music file music.wav is corrupt or not audio", RUN, **{"music.wav": "la la la\n"}),
    campaign("spec-brand-lut-nan", spec(append="brand: {lut: grade.cube}\n"), "brand.lut: grade.cube line 2: NaN or infinite value", RUN, **{"grade.cube": lut(2, NAN_ROW)}),
    campaign("spec-brand-lut-unknown-preset", spec(append="brand: {lut: sepia}\n"), "brand.lut: unknown LUT 'sepia': use one of"),
    campaign("spec-run-bad-cron", spec(append="schedule: {cron: 'every monday'}\n"), "schedule.cron: invalid cron expression", RUN),
    campaign("spec-deploy-without-schedule", spec(), "schedule: missing: add schedule:", ("campaign", "deploy", "@DIR@/campaign.yaml")),
    Case("spec-missing-file", "campaign", "cannot read campaign spec", ("campaign", "validate", "@DIR@/nowhere.yaml"), exit_code=2),
    # --- products CSVs (`campaign validate`) and users CSVs (`personalise`) -----------------
    products("products-bom-duplicate-sku", "\ufeffsku,name,prompt\nMUG-1,Ember mug,a red ball\nMUG-1,Again,a blue ball\n", "products.csv:3: sku: duplicate SKU 'MUG-1' (first on line 2)"),
    products("products-missing-column", "sku,title,prompt\nMUG-1,Ember mug,a red ball\n", "products.csv:1: name: missing column(s) name"),
    products("products-formula-injection", "sku,name,prompt\nMUG-1,\"=cmd|' /C calc'!A0\",a red ball\n", "products.csv:2: name: name starts with '=', which a spreadsheet runs as a formula: remove the leading '='"),
    products("products-formula-plus", "sku,name,prompt\nMUG-1,+HYPERLINK(\"http://x\"),a red ball\n", "which a spreadsheet runs as a formula"),
    products("products-10mb-line", csv_10mb_line, "products.csv:2: a cell is longer than 131072 characters"),
    products("products-latin1", csv_latin1, "products.csv: not UTF-8 text (byte 25): save the CSV as UTF-8"),
    products("products-nul-byte", "sku,name,prompt\nMUG-1,Em\x00ber,a red ball\n", "name: name contains the control character U+0000: remove it"),
    products("products-empty-file", "", "missing column(s) sku, name (header: empty)"),
    products("products-header-only", "sku,name,prompt\n", "products.csv: no products"),
    products("products-extra-cells", "sku,name,prompt\nMUG-1,Ember mug,a red ball,surprise\n", "products.csv:2: more cells than columns"),
    users("users-bom-duplicate-user", "\ufeff" + GOOD_USERS + "u-1,MUG-1,Ana again\n", "users.csv:4: user_id: duplicate request for u-1 and MUG-1 (line 2)"),
    users("users-missing-column", "sku,first_name\nMUG-1,Ana\n", "users.csv:1: user_id: missing column(s) user_id: use user_id, sku, first_name"),
    users("users-formula-injection", "user_id,sku,first_name\nu-1,MUG-1,=cmd|' /C calc'!A0\n", "users.csv:2: fields: first_name starts with '=', which a spreadsheet runs as a formula"),
    users("users-formula-tab-prefixed", "user_id,sku,first_name\nu-1,MUG-1,\"\t@SUM(1+9)*cmd|' /C calc'!A0\"\n", "which a spreadsheet runs as a formula: remove the leading '@'"),
    users("users-10mb-line", users_10mb_line, "users.csv:2: a cell is longer than 131072 characters"),
    users("users-unknown-sku", "user_id,sku,first_name\nu-1,SOCK-9,Ana\n", "users.csv:2: sku: unknown SKU 'SOCK-9' in campaign bad-input"),
    users("users-bad-user-id", "user_id,sku,first_name\n../../etc,MUG-1,Ana\n", "users.csv:2: user_id: String should match pattern"),
    users("users-unknown-column", "user_id,sku,first_name,email\nu-1,MUG-1,Ana,a@b.c\n", "unknown column(s) email: use user_id, sku, first_name"),
    users("users-field-too-long", "user_id,sku,first_name\nu-1,MUG-1," + "A" * 150 + "\n", "first_name is longer than 100 characters"),
    users("users-header-only", "user_id,sku,first_name\n", "users.csv: no users"),
    Case("users-missing-file", "csv", "cannot read", PERSONALISE, {"campaign.yaml": GOOD_SPEC}, exit_code=2),
]
# fmt: on

# --- API payloads -------------------------------------------------------------------------

VIDEO = {"prompt": "a red circle moves from left to right"}
CAMPAIGN = {
    "name": "bad-input",
    "products": [{"sku": "MUG-1", "name": "Ember mug", "prompt": "a red circle moves up"}],
    "renditions": [{"aspect": "9:16"}],
    "personalisation": {"text": "Hi {first_name}! {name}"},
}
USERS = {"campaign": "bad-input", "users": [{"user_id": "u-1", "sku": "MUG-1", "fields": {"first_name": "Ana"}}]}  # fmt: skip
FAKE_KEY = "rf_000000000000_" + "A" * 43


def video(case_id: str, status: int, fragment: str, body: Any = None, **kw: Any) -> Case:
    return Case(case_id, "api", fragment, path="/v1/videos", json=body, status=status, **kw)


def with_video(**changes: Any) -> dict[str, Any]:
    return {**VIDEO, **changes}


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _product(**changes: Any) -> dict[str, Any]:
    return {**CAMPAIGN, "products": [{**CAMPAIGN["products"][0], **changes}]}


def _padded(size: int) -> bytes:
    return b'{"prompt": "a red ball"' + b" " * size + b"}"


def _chunks(size: int):
    yield b'{"prompt": "a red ball"'
    for _ in range(size // 65536 + 1):
        yield b" " * 65536
    yield b"}"


# fmt: off
API_CASES: list[Case] = [
    video("api-no-credentials", 401, "missing or invalid API key: send Authorization: Bearer rf_", VIDEO, auth="none"),
    video("api-malformed-key", 401, "missing or invalid API key", VIDEO, auth="Bearer let-me-in"),
    video("api-unknown-key", 401, "missing or invalid API key", VIDEO, auth=f"Bearer {FAKE_KEY}"),
    video("api-basic-auth", 401, "missing or invalid API key", VIDEO, auth="Basic dXNlcjpwYXNz"),
    video("api-prompt-wrong-type", 422, "invalid prompt: Input should be a valid string", {"prompt": 42}),
    video("api-prompt-missing", 422, "invalid prompt: Field required", {"seed": 1}),
    video("api-unknown-field", 422, "unknown field colour_grade: remove it or fix its spelling", with_video(colour_grade="warm")),
    video("api-body-is-a-list", 422, "Input should be a valid dictionary", [VIDEO]),
    Case("api-invalid-json", "api", "the request body is not valid JSON", path="/v1/videos", content=b'{"prompt": "a red ball",}', headers={"Content-Type": "application/json"}, status=422),
    Case("api-oversize-body", "api", "request body is larger than 4194304 bytes: send less", path="/v1/videos", content=_padded(5 * 1024 * 1024), headers={"Content-Type": "application/json"}, status=413),
    video("api-prompt-10001-chars", 422, "invalid prompt: String should have at most 2000 characters", {"prompt": "x" * 10_001}),
    video("api-prompt-whitespace", 422, "prompt is empty", {"prompt": "   \t  "}),
    video("api-prompt-emoji-only", 422, "the prompt has no words", {"prompt": "🎉🎁✨"}),
    video("api-prompt-control-chars", 422, "prompt contains control or unprintable characters", {"prompt": "a red\x1b[31m ball"}),
    video("api-prompt-nul", 422, "prompt contains control or unprintable characters", {"prompt": "a red\u0000ball"}),
    video("api-fps-60", 422, "invalid fps: Input should be 24 or 30", with_video(fps=60)),
    video("api-negative-seed", 422, "invalid seed: Input should be greater than or equal to 0", with_video(seed=-1)),
    video("api-seed-as-string", 422, "invalid seed: Input should be a valid integer", with_video(seed="seven")),
    video("api-unknown-lut", 422, "unknown LUT 'sepia'; use one of neutral, warm, cool, product-pop", with_video(lut="sepia")),
    video("api-lut-path", 422, "invalid lut: String should match pattern", with_video(lut="../../etc/x.cube")),
    video("api-unknown-template", 422, "unknown template 'nonsense'", with_video(template="nonsense")),
    video("api-overlay-text-too-long", 422, "invalid text: String should have at most 200 characters", with_video(text="x" * 201)),
    Case("api-video-id-not-uuid", "api", "invalid video_id: Input should be a valid UUID", method="GET", path="/v1/videos/not-a-uuid", status=422),
    Case("api-list-limit-zero", "api", "invalid limit: Input should be greater than or equal to 1", method="GET", path="/v1/videos?limit=0", status=422),
    Case("api-campaign-no-products", "api", "invalid products: List should have at least 1 item", path="/v1/campaigns", json={**CAMPAIGN, "products": []}, status=422),
    Case("api-campaign-duplicate-sku", "api", "duplicate SKU 'MUG-1'", path="/v1/campaigns", json={**CAMPAIGN, "products": CAMPAIGN["products"] * 2}, status=422),
    Case("api-campaign-formula-name", "api", "name starts with '=', which a spreadsheet runs as a formula", path="/v1/campaigns", json=_product(name="=cmd|' /C calc'!A0"), status=422),
    Case("api-campaign-negative-concurrency", "api", "invalid concurrency: Input should be greater than or equal to 1", path="/v1/campaigns", json={**CAMPAIGN, "concurrency": -1}, status=422),
    Case("api-campaign-emoji-prompt", "api", "the prompt has no words", path="/v1/campaigns", json=_product(prompt="🎉🎁"), status=422),
    Case("api-personalise-unknown-campaign", "api", "no campaign with this id", path="/v1/personalisations", json={**USERS, "campaign": "never-made"}, status=404),
    Case("api-personalise-no-users", "api", "invalid users: List should have at least 1 item", path="/v1/personalisations", json={**USERS, "users": []}, status=422),
    Case("api-personalise-formula", "api", "first_name starts with '=', which a spreadsheet runs as a formula", path="/v1/personalisations", json={**USERS, "users": [{"user_id": "u-1", "sku": "MUG-1", "fields": {"first_name": "=cmd|' /C calc'!A0"}}]}, setup="campaign", status=422),
    Case("api-personalise-unknown-field", "api", "unknown field 'email'", path="/v1/personalisations", json={**USERS, "users": [{"user_id": "u-1", "sku": "MUG-1", "fields": {"email": "a@b.c"}}]}, setup="campaign", status=422),
    Case("api-personalise-unknown-sku", "api", "has no product 'SOCK-9'", path="/v1/personalisations", json={**USERS, "users": [{"user_id": "u-1", "sku": "SOCK-9"}]}, setup="campaign", status=422),
    Case("api-retry-unknown-run", "api", "no run with this id", path="/v1/runs/00000000-0000-4000-8000-000000000000/retry", status=404),
    video("api-queue-full", 429, "waiting jobs (limit 1): retry after", VIDEO, setup="queue_full"),
]
# fmt: on

# The streamed (chunked, no Content-Length) oversize body is built in the test: a generator
# cannot live in a frozen table that is iterated more than once.
CHUNKED_OVERSIZE = _chunks

CASES: list[Case] = CLI_CASES + API_CASES
