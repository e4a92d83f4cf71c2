"""Storyboard ads: several shots, transitions, an end card and captions, from one spec.

A storyboard is a YAML file (or the same JSON through ``POST /v1/ads``), validated before
anything runs: every problem names the file, the line and the field
(``storyboard.yaml:14: shots[1].duration: ...``) and raises ``InvalidInput`` (exit code 2), so
nothing is generated or published. Shape (see ``examples/storyboard.yaml``)::

    name: summer-run                 # [a-z0-9-]
    tenant: acme
    renditions: ["9:16"]             # as for campaigns
    brand: {logo: logo.png, lut: warm}
    music: music.wav                 # across the whole ad (default: brand.music)
    voice_over: voice.wav            # optional; the music is ducked under it
    generation: {seed: 7, speed: fast}
    shots:
      - {prompt: "...", duration: 3.5, grade: cool, transition: fade}
      - {prompt: "...", duration: 4, transition: wipeleft, transition_duration: 0.4}
    end_card: {headline: "Aurora", price: "-20%", cta: "Shop now", background: "#1d3557",
               duration: 3}
    captions: ["one line per shot", "..."]    # or [{start: 0, end: 2.5, text: "..."}, ...]

Timing: shot ``i`` starts at the sum of the durations before it; a transition is centred on
the change (half of it inside each neighbour), so the ad is exactly the sum of the shots and
the end card, and each change is at the time the spec gives.

``storyboard_from_brief`` turns one line of copy into a storyboard (a hook, the product in
motion, a detail, and the end card) through the enhancer's templates, in the brief's language.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reelforge.campaigns.load import (
    Path_,
    Problem,
    _compose,
    _dotted,
    _line,
    _message,
    _parse_dotted,
    problems_error,
    read_yaml_text,
)
from reelforge.campaigns.spec import (
    SLUG,
    BrandSpec,
    GenerationSpec,
    RenditionSpec,
    _checked,
    _issue,
    _printable,
    _resolve,
    known_template,
)
from reelforge.core.errors import InvalidInput
from reelforge.core.jobs import VideoJob, parse_style
from tasks.assemble.timeline import AdPlan, Cue, EndCard, Shot

MIN_AD_SECONDS = 6.0
MAX_AD_SECONDS = 60.0
MIN_SHOT_SECONDS = 1.0
MAX_SHOTS = 12
# Reading speed a caption may ask for: characters per second (Latin; CJK characters count
# double), the common subtitling limit. A longer caption than its time allows cannot be read.
MAX_CAPTION_CPS = 20.0
MAX_CAPTION_CHARS = 84  # two lines of 42
# Platform limits of a rendition's aspect: (shortest, longest) seconds. 9:16 follows TikTok /
# Reels / Shorts in-feed ads (5-60 s); the ad's own range (6-60 s) is inside all of them.
PLATFORM_SECONDS = {"9:16": (5.0, 60.0), "1:1": (5.0, 60.0), "16:9": (5.0, 60.0)}

# ffmpeg's xfade transitions offered in specs, and "cut" (no transition).
Transition = Literal[
    "cut", "fade", "fadeblack", "fadewhite", "dissolve", "wipeleft", "wiperight", "wipeup",
    "wipedown", "slideleft", "slideright", "slideup", "slidedown", "circleopen", "circleclose",
    "smoothleft", "smoothright", "zoomin",
]  # fmt: skip
COLOUR = r"^#[0-9A-Fa-f]{6}$"


def _text_field(value: str | None, field: str) -> str | None:
    value = _printable(value, field)
    return value.strip() if value is not None else None


def caption_weight(text: str) -> float:
    """Characters a reader reads, CJK (wide) characters counting double."""
    return sum(2.0 if unicodedata.east_asian_width(ch) in "WF" else 1.0 for ch in text)


class ShotSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2000, description="What the shot shows.")
    duration: float = Field(gt=0, le=MAX_AD_SECONDS, description="Seconds on screen.")
    grade: str | None = Field(default=None, description="LUT preset or .cube for this shot.")
    transition: Transition = Field(default="cut", description="Into the next shot.")
    transition_duration: float = Field(default=0.5, ge=0.1, le=2.0)
    seed: int | None = Field(default=None, ge=0, lt=2**63)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        from tasks.enhance.normalize import normalize_prompt

        value = _text_field(value, "prompt") or ""
        try:
            normalize_prompt(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: float) -> float:
        if value < MIN_SHOT_SECONDS:
            raise ValueError(f"a shot of {value:g} s is too short: give it at least 1 s")
        return value

    @field_validator("grade")
    @classmethod
    def _grade(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return _brand_field("lut", value, info).lut


class EndCardSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    headline: str | None = Field(default=None, max_length=80)
    price: str | None = Field(default=None, max_length=40)
    cta: str | None = Field(default=None, max_length=40, description="Call to action.")
    logo: Path | None = Field(default=None, description="PNG/WebP (default: brand.logo).")
    background: str = Field(default="#111111", description="#RRGGBB, or an image file.")
    duration: float = Field(default=3.0, ge=1.5, le=10.0)
    transition: Transition = Field(default="fade", description="From the last shot.")
    transition_duration: float = Field(default=0.5, ge=0.1, le=2.0)

    @field_validator("headline", "price", "cta")
    @classmethod
    def _texts(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _text_field(value, info.field_name or "text") or None

    @field_validator("logo")
    @classmethod
    def _logo(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        return _brand_field("logo", value, info).logo

    @field_validator("background")
    @classmethod
    def _background(cls, value: str, info: ValidationInfo) -> str:
        if re.match(COLOUR, value):
            return value
        path = _resolve(Path(value), info)
        assert path is not None
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise ValueError(f"background {value!r} is neither #RRGGBB nor a PNG/JPEG/WebP image")
        _image(path, "background")
        return str(path)

    def texts(self) -> dict[str, str]:
        """The card's texts by field (headline, price, cta), those given."""
        return {k: v for k in ("headline", "price", "cta") if (v := getattr(self, k))}


def _brand_field(field: str, value: Any, info: ValidationInfo) -> BrandSpec:
    """``value`` checked as the brand kit's ``field`` (a logo decodes, a LUT parses)."""
    try:
        return BrandSpec.model_validate({field: value}, context=info.context)
    except ValidationError as exc:
        raise ValueError(_message(exc.errors()[0])) from None


def _image(path: Path, what: str) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{what} {path.name} is not a readable image ({exc})") from None


class CaptionCue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: float = Field(ge=0)
    end: float = Field(gt=0)
    text: str = Field(min_length=1, max_length=MAX_CAPTION_CHARS)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _text_field(value, "text") or ""


class AdSpec(BaseModel):
    """A validated storyboard."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SLUG, description="The ad's name (a-z, 0-9, '-').")
    tenant: str = Field(default="default", pattern=SLUG)
    template: str | None = Field(default=None, description="Enhancement preset for every shot.")
    shots: list[ShotSpec] = Field(min_length=1, max_length=MAX_SHOTS)
    end_card: EndCardSpec = Field(default_factory=EndCardSpec)
    captions: list[str | CaptionCue] = Field(default_factory=list)
    music: Path | None = Field(default=None, description="Across the whole ad.")
    voice_over: Path | None = Field(default=None, description="Ducks the music under it.")
    brand: BrandSpec = Field(default_factory=BrandSpec)
    renditions: list[RenditionSpec] = Field(
        default_factory=lambda: [RenditionSpec(aspect="9:16")], min_length=1, max_length=6
    )
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    policy: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

    @field_validator("music", "voice_over")
    @classmethod
    def _audio(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        value = _resolve(value, info)
        return _checked(value, music=value)

    @field_validator("captions", mode="before")
    @classmethod
    def _caption_items(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                _text_field(item, "caption") if isinstance(item, str) else item for item in value
            ]
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return known_template(value)

    @model_validator(mode="after")
    def _timing(self) -> AdSpec:
        total = self.duration
        if total > MAX_AD_SECONDS:
            raise _issue(
                "shots",
                f"the ad is {total:g} s (shots {sum(s.duration for s in self.shots):g} s + end "
                f"card {self.end_card.duration:g} s): at most {MAX_AD_SECONDS:g} s",
            )
        if total < MIN_AD_SECONDS:
            raise _issue("shots", f"the ad is {total:g} s: at least {MIN_AD_SECONDS:g} s")
        segments = [s.duration for s in self.shots] + [self.end_card.duration]
        for i, (into, length) in enumerate(self.transitions()):
            if into != "cut" and length > min(segments[i], segments[i + 1]) / 2:
                where = f"shots[{i}]" if i < len(self.shots) - 1 else "end_card"
                raise _issue(
                    f"{where}.transition_duration",
                    f"a {length:g} s transition is longer than half of the shots it joins "
                    f"({segments[i]:g} s and {segments[i + 1]:g} s)",
                )
        for r, rendition in enumerate(self.renditions):
            low, high = PLATFORM_SECONDS[rendition.aspect]
            if not low <= total <= high:
                raise _issue(
                    f"renditions[{r}]",
                    f"{rendition.aspect} ads run {low:g}-{high:g} s; this one is {total:g} s",
                )
        if self.voice_over is not None and self.music_file is None:
            raise _issue("voice_over", "a voice-over needs music to duck: give `music`")
        self._check_captions()
        return self

    def _check_captions(self) -> None:
        if not self.captions:
            return
        lines = [c for c in self.captions if isinstance(c, str)]
        if lines and len(lines) != len(self.captions):
            raise _issue("captions", "give one line per shot or a script of {start, end, text}")
        if lines and len(lines) != len(self.shots):
            raise _issue(
                "captions",
                f"{len(lines)} caption lines for {len(self.shots)} shots: give one per shot "
                "(an empty string for none)",
            )
        previous_end = 0.0
        for i, cue in enumerate(self.cues()):
            index = cue.get("index", i)
            if cue["end"] <= cue["start"]:
                raise _issue(f"captions[{index}].end", "a caption must end after it starts")
            if cue["end"] > self.duration + 1e-6:
                raise _issue(f"captions[{index}].end", f"ends after the ad ({self.duration:g} s)")
            if cue["start"] < previous_end - 1e-6:
                raise _issue(
                    f"captions[{index}].start", "overlaps the previous caption: cues run in order"
                )
            previous_end = cue["end"]
            seconds = cue["end"] - cue["start"]
            weight = caption_weight(cue["text"])
            if weight > MAX_CAPTION_CHARS or weight / seconds > MAX_CAPTION_CPS:
                raise _issue(
                    f"captions[{index}]",
                    f"{cue['text']!r} is too long for its {seconds:g} s: a reader gets "
                    f"{MAX_CAPTION_CPS:g} characters a second (CJK count double) and two lines "
                    f"of {MAX_CAPTION_CHARS // 2}; shorten it or lengthen the shot",
                )

    # --- timing ---------------------------------------------------------------------------

    @property
    def duration(self) -> float:
        return round(sum(s.duration for s in self.shots) + self.end_card.duration, 6)

    @property
    def music_file(self) -> Path | None:
        return self.music or self.brand.music

    def starts(self) -> list[float]:
        """When each shot (and, last, the end card) starts on the ad's timeline."""
        return AdPlan.starts(self)  # type: ignore[arg-type]  # same fields: shots[].duration

    def transitions(self) -> list[tuple[str, float]]:
        """(transition, seconds) at each change: between shots, then into the end card."""
        into = [(s.transition, s.transition_duration) for s in self.shots[:-1]]
        return [*into, (self.end_card.transition, self.end_card.transition_duration)]

    def cues(self) -> list[dict[str, Any]]:
        """The captions as timed cues (start, end, text, index in ``captions``): a line per
        shot spans its shot; empty lines are none."""
        if not self.captions:
            return []
        if isinstance(self.captions[0], str):
            starts = self.starts()
            return [
                {"start": starts[i], "end": starts[i + 1], "text": text, "index": i}
                for i, text in enumerate(self.captions)
                if isinstance(text, str) and text
            ]
        return [
            {"start": c.start, "end": c.end, "text": c.text, "index": i}
            for i, c in enumerate(self.captions)
            if isinstance(c, CaptionCue)
        ]

    # --- jobs -----------------------------------------------------------------------------

    def job(self, rendition: RenditionSpec | None = None) -> VideoJob:
        """The ad's own job: tenant, brand kit, policy and the rendition (for the brand
        stage, the end card and the signature; its prompt is the first shot's)."""
        rendition = rendition or self.renditions[0]
        return VideoJob(
            tenant=self.tenant,
            prompt=self.shots[0].prompt,
            aspect=rendition.aspect,
            quality=rendition.quality,
            fps=rendition.fps,
            lut=self.brand.lut,
            logo=self.end_card.logo or self.brand.logo,
            music=self.music_file,
            policy=self.policy,
        )

    def plan(self) -> AdPlan:
        """What the assembly stages need (they sit below this floor and take plain data)."""
        card = self.end_card
        return AdPlan(
            name=self.name,
            policy=self.policy,
            shots=[
                Shot(s.duration, s.grade or self.brand.lut, s.transition, s.transition_duration)
                for s in self.shots
            ],
            end_card=EndCard(
                card.duration,
                card.background,
                None,
                card.headline,
                card.price,
                card.cta,
                card.transition,
                card.transition_duration,
            ),
            cues=[Cue(c["start"], c["end"], c["text"]) for c in self.cues()],
            voice=str(self.voice_over) if self.voice_over else None,
            jobs=[self.job(rendition) for rendition in self.renditions],
        )

    def shot_jobs(self) -> list[VideoJob]:
        """One generation job per shot: its own prompt, seed and grade, so each has its own
        cache key (editing one shot regenerates only that shot)."""
        gen = self.generation
        return [
            VideoJob(
                tenant=self.tenant,
                prompt=shot.prompt,
                template=self.template,
                negative_prompt=gen.negative_prompt,
                seed=gen.seed if shot.seed is None else shot.seed,
                steps=gen.steps,
                speed=gen.speed,
                generation_preset=gen.preset,
                **parse_style(gen.style),
                aspect=self.renditions[0].aspect,
                lut=shot.grade or self.brand.lut,
                policy=self.policy,
            )
            for shot in self.shots
        ]


# --- loading -----------------------------------------------------------------------------------


def _problems(exc: ValidationError, shown: str, marks: dict[Path_, int]) -> list[Problem]:
    problems = []
    for err in exc.errors():
        ctx = err.get("ctx") or {}
        loc: Path_ = _parse_dotted(ctx["path"]) if "path" in ctx else tuple(err["loc"])
        # a caption line (str) or cue (CaptionCue): pydantic names the union member too
        loc = tuple(p for p in loc if p not in ("str", "CaptionCue"))
        problems.append(
            Problem(file=shown, line=_line(marks, loc), field=_dotted(loc), message=_message(err))
        )
    return problems


def _invalid(problems: list[Problem]) -> InvalidInput:
    error = problems_error(problems)
    return InvalidInput(str(error).replace("campaign spec", "storyboard", 1), extra=error.extra)


def parse_storyboard(
    data: Any, *, shown: str, base: Path, marks: dict[Path_, int] | None = None
) -> AdSpec:
    """Validate a storyboard given as data (the API's JSON); problems as in ``load_storyboard``."""
    if not isinstance(data, dict):
        raise _invalid([Problem(file=shown, line=1, field="", message="a storyboard is a mapping")])
    try:
        return AdSpec.model_validate(data, context={"base": base.resolve()})
    except ValidationError as exc:
        raise _invalid(_problems(exc, shown, marks or {})) from None


def load_storyboard(path: Path | str) -> AdSpec:
    """Read and validate a storyboard YAML file; ``InvalidInput`` (exit 2) lists every problem
    as ``file:line: field: message``."""
    path = Path(path)
    text = read_yaml_text(path, "storyboard")
    try:
        data, marks = _compose(text, str(path))
    except InvalidInput as exc:
        raise _invalid([Problem(**p) for p in exc.extra["problems"]]) from None
    return parse_storyboard(data, shown=str(path), base=path.parent, marks=marks)


# --- a storyboard from one line of copy ----------------------------------------------------------

# The shots of a brief, each a role and the enhancer template that writes its prompt.
# The shots of a brief: its role, the enhancer template that writes its prompt, its length,
# and whether the brief goes into the template (the same template without it reads the
# product alone, so two shots of one template differ).
BRIEF_SHOTS = (("hook", "lifestyle", 3.0, True), ("product", "product_showcase", 4.0, True),
               ("detail", "unboxing", 3.0, True))  # fmt: skip
BRIEF_EXTRA = ("in use", "product_showcase", 3.0, False)  # when the product has a name
CALLS_TO_ACTION = {
    "en": "Shop now",
    "zh": "立即购买",
    "ja": "今すぐチェック",
    "ko": "지금 구매하기",
}
DETAIL_LINES = {"en": "Every detail counts", "zh": "细节见真章", "ja": "細部までこだわり",
                "ko": "디테일까지 완벽하게"}  # fmt: skip


def storyboard_from_brief(
    brief: str,
    *,
    product: dict[str, Any] | None = None,
    tenant: str = "default",
    name: str = "brief-ad",
    renditions: list[str] | None = None,
    seed: int = 0,
) -> tuple[AdSpec, str]:
    """One line of copy -> (storyboard, language): a hook, the product in motion, a detail
    (and the product in use when it has a name), each prompt written by the enhancer's
    templates in the brief's language, then the end card with the brief, the price and a
    call to action in that language."""
    from tasks.enhance.language import detect_language
    from tasks.enhance.normalize import normalize_prompt
    from tasks.enhance.templates import Product, render_template

    brief = " ".join(normalize_prompt(brief).text.split())
    language = detect_language(brief).language
    language = language if language in CALLS_TO_ACTION else "en"
    try:
        item = Product.model_validate(product or {})
    except ValidationError as exc:
        raise InvalidInput(f"--product-json: {_message(exc.errors()[0])}") from None
    roles = list(BRIEF_SHOTS) + ([BRIEF_EXTRA] if item.name else [])
    lines = {"hook": brief, "product": item.name or brief, "detail": DETAIL_LINES[language],
             "in use": brief}  # fmt: skip
    shots = []
    for i, (_role, preset, seconds, with_brief) in enumerate(roles):
        copy = brief if with_brief else None
        rendered = render_template(preset, language=language, product=item, brief=copy)
        transition = "cut" if i == 0 else "fade"
        shots.append({"prompt": rendered.prompt, "duration": seconds, "transition": transition})
    captions = [_fit_caption(lines[role], seconds) for role, _, seconds, _ in roles]
    card = {"headline": (item.name or brief)[:80], "cta": CALLS_TO_ACTION[language]}
    price = item.price or (
        m.group(0) if (m := re.search(r"[-−]?\d+(?:[.,]\d+)?\s?%", brief)) else None
    )
    if price:
        card["price"] = price[:40]
    data = {
        "name": name,
        "tenant": tenant,
        "shots": shots,
        "end_card": card,
        "captions": captions,
        "renditions": renditions or ["9:16"],
        "generation": {"seed": seed},
    }
    return parse_storyboard(data, shown="--brief", base=Path.cwd()), language


def _fit_caption(text: str, seconds: float) -> str:
    """The caption cut (with an ellipsis) to what a reader gets through in ``seconds``."""
    limit = min(MAX_CAPTION_CHARS, MAX_CAPTION_CPS * seconds)
    if caption_weight(text) <= limit:
        return text
    out = ""
    for ch in text:
        if caption_weight(out + ch + "…") > limit:
            break
        out += ch
    return out.rstrip() + "…"
