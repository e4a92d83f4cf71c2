"""Storyboard specs: the example is valid; each kind of bad input is refused with an error
naming the file, the line and the field, and `reelforge ad` exits 2 (no stack is needed);
a brief becomes 3 to 5 shots and an end card in its own language."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelforge.campaigns.storyboard import load_storyboard, storyboard_from_brief
from reelforge.cli.app import app
from reelforge.core.errors import InvalidInput

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
runner = CliRunner()

GOOD = """\
name: spring-ad
tenant: acme
renditions: ["9:16"]
brand:
  logo: logo.png
music: music.wav
shots:
  - prompt: a red circle moves from left to right
    duration: 3
    transition: fade
  - prompt: a blue square moves up
    duration: 4
end_card:
  headline: Aurora
  price: "-20%"
  cta: Shop now
  duration: 3
captions:
  - Summer starts now
  - Light as air
"""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    for name in ("logo.png", "music.wav"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path


def _write(directory: Path, text: str) -> Path:
    path = directory / "ad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_storyboard_is_valid_and_timed_as_written():
    ad = load_storyboard(EXAMPLES / "storyboard.yaml")
    assert ad.starts() == [0.0, 3.5, 7.0, 10.5, 14.0]
    assert ad.duration == 17.0 and ad.renditions[0].aspect == "9:16"
    assert ad.cues()[0]["text"] == "Summer starts now"
    plan = ad.plan()
    assert plan.starts() == ad.starts() and plan.shots[1].grade == "cool"
    assert plan.shots[0].grade == "warm"  # the brand's grade where a shot has none


def test_each_shot_has_its_own_generation_job(spec_dir: Path):
    ad = load_storyboard(_write(spec_dir, GOOD))
    jobs = ad.shot_jobs()
    assert [job.prompt for job in jobs] == [shot.prompt for shot in ad.shots]
    edited = load_storyboard(_write(spec_dir, GOOD.replace("a blue square", "a green square")))
    assert edited.shot_jobs()[0] == jobs[0] and edited.shot_jobs()[1] != jobs[1]


BAD = [
    # (replace, with, line, field, words in the message)
    ("    duration: 3\n    transition: fade", "    duration: 0\n    transition: fade", 9,
     "shots[0].duration", "greater than 0"),
    ("    duration: 4\n", "    duration: 55\n", 7, "shots", "at most 60"),
    ("transition: fade", "transition: spiral", 10, "shots[0].transition", "'fade'"),
    ("  cta: Shop now\n", "  cta: Shop now\n  logo: music.wav\n", 17, "end_card.logo",
     "must be a .png or .webp"),
    ("  - Light as air", "  - Light as air, built for every mile you run, every single day of it, rain or shine",
     20, "captions[1]", "too long"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "line", "field", "words"), BAD)
def test_bad_storyboards_name_file_line_and_field(spec_dir, old, new, line, field, words):
    assert old in GOOD
    path = _write(spec_dir, GOOD.replace(old, new))
    with pytest.raises(InvalidInput) as err:
        load_storyboard(path)
    problems = err.value.extra["problems"]
    assert problems[0]["field"] == field, problems
    assert problems[0]["line"] == line, problems
    assert words in problems[0]["message"], problems
    assert str(err.value).startswith(f"invalid storyboard: {path}:{line}: {field}:")


def test_a_logo_that_is_not_an_image_is_refused(spec_dir: Path):
    (spec_dir / "fake.png").write_text("not a picture", encoding="utf-8")
    text = GOOD.replace("  cta: Shop now\n", "  cta: Shop now\n  logo: fake.png\n")
    with pytest.raises(InvalidInput) as err:
        load_storyboard(_write(spec_dir, text))
    problem = err.value.extra["problems"][0]
    assert (problem["field"], problem["line"]) == ("end_card.logo", 17)
    assert "not a readable image" in problem["message"]


def test_the_cli_exits_2_with_json_and_makes_nothing(spec_dir: Path):
    path = _write(spec_dir, GOOD.replace("duration: 3\n    transition: fade", "duration: 0"))
    res = runner.invoke(app, ["ad", str(path), "--json"])
    assert res.exit_code == 2, res.stdout
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    assert payload["ok"] is False and payload["problems"][0]["field"] == "shots[0].duration"
    assert f"{path}:9: shots[0].duration" in payload["error"]


BRIEFS = {
    "en": "summer running shoes, -20%",
    "zh": "夏季跑鞋，八折优惠",
    "ja": "夏のランニングシューズ、20%オフ",
    "ko": "여름 러닝화 20% 할인",
}


@pytest.mark.parametrize("language", sorted(BRIEFS))
def test_a_brief_dry_run_prints_its_storyboard_in_the_briefs_language(language: str):
    res = runner.invoke(app, ["ad", "--brief", BRIEFS[language], "--dry-run", "--json"])
    assert res.exit_code == 0, res.stdout
    board = json.loads(res.stdout.strip().splitlines()[-1])
    assert board["language"] == language
    assert 3 <= len(board["shots"]) <= 5
    assert board["end_card"]["cta"] and board["end_card"]["duration"] > 0
    from tasks.enhance.language import detect_language

    for shot in board["shots"]:
        assert detect_language(shot["prompt"]).language == language, shot["prompt"]
    assert detect_language(board["end_card"]["cta"]).language == language


def test_a_brief_with_a_product_gets_a_fourth_shot_and_its_price(tmp_path: Path):
    ad, language = storyboard_from_brief(
        "summer running shoes, -20%", product={"name": "Aurora", "price": "€79"}
    )
    assert language == "en" and len(ad.shots) == 4
    assert ad.end_card.price == "€79" and ad.end_card.headline == "Aurora"
    assert len({shot.prompt for shot in ad.shots}) == 4  # four different shots
