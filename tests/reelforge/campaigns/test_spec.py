"""Campaign specs: the example is valid; every kind of bad input is refused with an error that
names the file, the line and the field, and the CLI exits 2 (no stack is needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelforge.campaigns.load import load_spec, load_users_csv
from reelforge.campaigns.spec import PersonalisationRequest, personal_job
from reelforge.cli.app import app
from reelforge.core.errors import InvalidInput

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
runner = CliRunner()

GOOD = """\
name: summer
tenant: acme
text: "{name} {price}"
products:
  - sku: A-1
    name: Alpha
    prompt: a red circle moves right
    price: 12
  - sku: B-2
    name: Beta
    prompt: a blue square moves up
renditions: ["9:16", {aspect: "16:9", fps: 24}]
brand: {lut: warm}
schedule:
  cron: "30 7 * * 1-5"
  timezone: Asia/Tokyo
"""


def _write(tmp_path: Path, text: str, name: str = "campaign.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _problem(path: Path) -> tuple[str, list[dict]]:
    with pytest.raises(InvalidInput) as caught:
        load_spec(path)
    return str(caught.value), caught.value.extra["problems"]


def test_the_example_campaign_is_valid_and_plans_one_job_per_rendition():
    spec = load_spec(EXAMPLES / "campaign.yaml")
    assert spec.tenant == "example-shop" and len(spec.products) == 3
    jobs = spec.jobs(spec.products[0])
    assert [j.aspect for j in jobs] == ["9:16", "16:9"]
    assert jobs[0].logo == (EXAMPLES / "logo.png").resolve() and jobs[0].campaign == spec.name
    assert jobs[0].text == "Ember mug · $18" and jobs[0].product["price"] == "$18"
    assert spec.schedule.cron == "0 6 * * 1" and spec.schedule.timezone == "Europe/Berlin"


def test_inline_products_and_short_renditions(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    assert [r.label for r in spec.renditions] == ["9:16 720p 30fps", "16:9 720p 24fps"]
    assert spec.products[0].price == "12"  # numbers become text
    assert spec.jobs(spec.products[1])[0].text == "Beta"  # an empty field renders empty


@pytest.mark.parametrize(
    ("edit", "line", "field", "message"),
    [
        (("name: summer\n", ""), 1, "name", "Field required"),
        (("concurrency", ""), 17, "concurrency", "valid integer"),
        (
            ("tenant: acme\n", "tenant: acme\ntemplate: nonsense\n"),
            3,
            "template",
            "unknown template",
        ),
        (('cron: "30 7 * * 1-5"', 'cron: "61 * * * *"'), 15, "schedule.cron", "invalid cron"),
        (('cron: "30 7 * * 1-5"', 'cron: "every monday"'), 15, "schedule.cron", "invalid cron"),
        (("timezone: Asia/Tokyo", "timezone: Mars/Olympus"), 16, "schedule.timezone", "time zone"),
        (("sku: B-2", "sku: ../../etc/passwd"), 9, "products[1].sku", "not allowed"),
        (("sku: B-2", "sku: A-1"), 9, "products[1].sku", "duplicate SKU"),
        (("{name} {price}", "{name} {colour} {stock}"), 3, "text", "unknown placeholder {stock}"),
        (("brand: {lut: warm}", "brand: {lut: sepia}"), 13, "brand.lut", "unknown LUT"),
        (("brand: {lut: warm}", "brand: {logo: missing.png}"), 13, "brand.logo", "does not exist"),
        (("    price: 12\n", "    price: 12\n    stock: 4\n"), 9, "products[0].stock", "Extra"),
    ],
)
def test_bad_specs_name_file_line_and_field(tmp_path, edit, line, field, message):
    old, new = edit
    text = GOOD.replace(old, new) if old != "concurrency" else GOOD + 'concurrency: "two"\n'
    assert text != GOOD
    path = _write(tmp_path, text)
    error, problems = _problem(path)
    assert f"{path}:{line}: {field}: " in error, error
    assert message in error
    assert problems[0]["line"] == line and problems[0]["field"] == field


def test_yaml_syntax_errors_point_at_the_line(tmp_path):
    path = _write(tmp_path, "name: x\ntenant: [acme\nproducts: []\n")
    error, problems = _problem(path)
    assert error.startswith(f"invalid campaign spec: {path}:") and "YAML" in error
    assert problems[0]["line"] in (2, 3)


def _csv_spec(tmp_path: Path, csv_text: str) -> Path:
    (tmp_path / "products.csv").write_text(csv_text)
    return _write(tmp_path, GOOD.split("products:")[0] + "products:\n  csv: products.csv\n")


def test_products_from_csv(tmp_path):
    spec = load_spec(_csv_spec(tmp_path, "sku,name,prompt\nA-1,Alpha,a red circle moves up\n"))
    assert [p.sku for p in spec.products] == ["A-1"]


@pytest.mark.parametrize(
    ("csv_text", "line", "field", "message"),
    [
        ("sku,title,prompt\nA-1,Alpha,x\n", 1, "name", "missing column(s) name"),
        ("sku,name,prompt,stock\nA-1,Alpha,x,3\n", 1, "stock", "unknown column(s) stock"),
        ("sku,name,prompt\nA-1,Alpha,x\nB-2,Beta,y\nA-1,Again,z\n", 4, "sku", "duplicate SKU 'A-1' (first on line 2)"),
        ("sku,name,prompt\nA-1,Alpha,x\n../../etc/passwd,Evil,y\n", 3, "sku", "not allowed"),
        ("sku,name,prompt\nA-1,Alpha,x\nC 3,Spaces,y\n", 3, "sku", "not allowed"),
        ('sku,name,prompt\n"A-1","Alpha\nsecond line",x\nB-2,,y\n', 4, "name", "Field required"),
        ("sku,name\nA-1,Alpha\n", 2, "prompt", "no prompt"),
    ],
)  # fmt: skip
def test_bad_csvs_name_file_line_and_column(tmp_path, csv_text, line, field, message):
    path = _csv_spec(tmp_path, csv_text)
    error, problems = _problem(path)
    assert f"{tmp_path / 'products.csv'}:{line}: {field}: " in error, error
    assert message in error
    assert problems[0]["file"].endswith("products.csv")


def test_a_missing_csv_points_at_the_spec_line(tmp_path):
    path = _write(tmp_path, GOOD.split("products:")[0] + "products:\n  csv: nowhere.csv\n")
    error, _ = _problem(path)
    assert f"{path}:5: products.csv: file nowhere.csv does not exist" in error


def test_every_problem_is_reported(tmp_path):
    text = GOOD.replace('cron: "30 7 * * 1-5"', 'cron: "bad"').replace("sku: B-2", "sku: ../x")
    _, problems = _problem(_write(tmp_path, text))
    assert {p["field"] for p in problems} == {"schedule.cron", "products[1].sku"}


def test_cli_validate_exit_codes_and_json(tmp_path):
    ok = runner.invoke(app, ["campaign", "validate", str(EXAMPLES / "campaign.yaml"), "--json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.output)
    assert payload["videos"] == 6 and len(payload["next_runs"]) == 3
    bad = _write(tmp_path, GOOD.replace('cron: "30 7 * * 1-5"', 'cron: "61 * * * *"'))
    for command in ("validate", "run", "deploy"):
        result = runner.invoke(app, ["campaign", command, str(bad), "--json"])
        assert result.exit_code == 2, result.output
        failure = json.loads(result.output)
        assert failure["ok"] is False and f"{bad}:15: schedule.cron" in failure["error"]
        assert failure["problems"][0]["line"] == 15


def test_personalisation_requests_and_users_csv(tmp_path):
    shutil.copytree(EXAMPLES, tmp_path / "ex")
    spec = load_spec(tmp_path / "ex" / "campaign.yaml")
    requests = load_users_csv(tmp_path / "ex" / "users.csv", spec)
    assert [r.user_id for r in requests] == ["u-1001", "u-1002", "u-1003"]
    job = personal_job(spec, requests[0])
    assert (job.audience, job.aspect, job.text) == ("u-1001", "9:16", "Hi Ana! Ember mug · $18")
    with pytest.raises(InvalidInput, match="unknown field 'last_name'"):
        personal_job(
            spec,
            PersonalisationRequest(user_id="u", sku="MUG-RED-01", fields={"last_name": "X"}),
        )
    with pytest.raises(InvalidInput, match="no product 'NOPE'"):
        personal_job(spec, PersonalisationRequest(user_id="u", sku="NOPE"))
    users = tmp_path / "users.csv"
    users.write_text("user_id,sku,first_name\nu-1,MUG-RED-01,Ana\nu-2,NOPE,Bo\n")
    with pytest.raises(InvalidInput, match=f"{users}:3: sku: unknown SKU 'NOPE'"):
        load_users_csv(users, spec)
    users.write_text("user_id,sku,email\nu-1,MUG-RED-01,a@b.c\n")
    with pytest.raises(InvalidInput, match=f"{users}:1: email: unknown column"):
        load_users_csv(users, spec)


def test_generation_size_length_and_style_reach_the_jobs(tmp_path):
    text = GOOD + "generation: {preset: square-s, seconds: 3, style: 'ocean:0.7'}\n"
    spec = load_spec(_write(tmp_path, text))
    job = spec.jobs(spec.products[0])[0]
    assert (job.generation_preset, job.seconds) == ("square-s", 3.0)
    assert (job.style, job.style_strength) == ("ocean", 0.7)
    for bad in ("'Ocean Blue'", "'ocean:strong'", "'ocean:9'"):
        path = _write(tmp_path, GOOD + f"generation: {{style: {bad}}}\n", name="bad.yaml")
        error, problems = _problem(path)
        assert problems[0]["field"] == "generation.style", error
        assert "write a registered style as NAME or NAME:0.8" in error


def test_review_and_versions_in_a_spec(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD + "review: required\nversions: 3\n"))
    assert spec.review == "required" and spec.versions == 3 and spec.review_timeout is None
    for extra, message in (
        ("versions: 2\n", "versions need a review: add `review: required`"),
        ("review: required\nversions: 9\n", "at most 4 takes (REELFORGE_MAX_VERSIONS)"),
        ("review: maybe\n", "Input should be 'required'"),
    ):
        path = _write(tmp_path, GOOD + extra)
        error, problems = _problem(path)
        assert message in error, error
        assert problems[0]["field"] in ("versions", "review")
