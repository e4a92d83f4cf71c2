"""Verdict models and the exceptions of the safety gates.

Fail-closed design:
- the gate functions either return a verdict computed end to end or raise; an error is never
  turned into a verdict that says ``passed=True``;
- a verdict's ``passed`` is validated against its status and evidence (a passing visual verdict
  must name the model sha256 and have at least one sampled frame);
- ``bool(verdict)`` raises ``TypeError``: ``if verdict:`` would be true for any object, so the
  caller must write ``verdict.passed``;
- ``require_*`` functions return only passing verdicts and raise :class:`TextBlocked` /
  :class:`VisualBlocked` (``BlockedBySafety``, exit 3) or :class:`ModerationError` (exit 1)
  otherwise; both carry the verdict for quarantine and lineage;
- :meth:`VisualVerdict.failed_closed` builds the lineage record of an error (status "error").
Verdicts carry categories and rule ids, never the offending term.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from reelforge.core.errors import BlockedBySafety, ReelForgeError


class _Base(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Verdict(_Base):
    def __bool__(self) -> bool:
        raise TypeError("a verdict is not a boolean: test verdict.passed explicitly")


# --- text --------------------------------------------------------------------------------


class TextMatch(_Base):
    category: str
    rule_id: str
    how: Literal["word", "leet", "spacing", "substring"]


class TextVerdict(_Verdict):
    gate: Literal["text"] = "text"
    passed: bool
    field: str = Field(description="Which text: prompt, enhanced_prompt, overlay.N, ...")
    category: str | None = None
    rule_id: str | None = None
    matches: list[TextMatch] = Field(default_factory=list)
    term_list_version: str
    policy_name: str
    policy_version: str
    text_sha256: str
    checked_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _consistent(self) -> TextVerdict:
        if self.passed != (not self.matches):
            raise ValueError("passed must be true exactly when nothing matched")
        if not self.passed and (self.category is None or self.rule_id is None):
            raise ValueError("a blocked text verdict names its category and rule id")
        return self

    def message(self) -> str:
        """One line, safe for shared logs (no offending term)."""
        if self.passed:
            return f"{self.field}: passed the text safety gate (terms {self.term_list_version})"
        return (
            f"{self.field} blocked by the text safety gate: category {self.category}, "
            f"rule {self.rule_id} (terms {self.term_list_version}, policy {self.policy_version}): "
            f"rephrase the {self.field} without the flagged wording"
        )


# --- visual ------------------------------------------------------------------------------


class Detection(_Base):
    label: str
    score: float
    box: tuple[int, int, int, int] = Field(description="x, y, w, h in source pixels")


class FrameResult(_Base):
    timestamp: float | None = Field(description="Seconds from the start; None for images")
    reasons: list[Literal["first", "interval", "scene", "last", "thumbnail", "image"]]
    detections: list[Detection]


class Flag(_Base):
    """A class that crossed its policy threshold."""

    label: str
    category: str
    threshold: float
    max_score: float
    flagged_samples: int
    longest_run: int
    timestamps: list[float | None]


class MediaInfo(_Base):
    path: str
    kind: Literal["image", "video"]
    format: str
    width: int
    height: int
    duration_s: float | None = None
    fps: float | None = None
    frames_decoded: int = 0
    # "render pass": the frames came from the render's own ffmpeg pass (see RenderFrames)
    frames_from: Literal["decoded", "render pass"] = "decoded"
    sha256: str


class ModelRef(_Base):
    model_id: str
    sha256: str
    kind: str
    providers: list[str]
    license: str | None = None


class VisualVerdict(_Verdict):
    gate: Literal["visual"] = "visual"
    status: Literal["passed", "blocked", "error"]
    passed: bool
    category: str | None = None
    reason: str = Field(description="One line, safe for shared logs")
    flags: list[Flag] = Field(default_factory=list)
    media: MediaInfo | None = None
    model: ModelRef | None = None
    policy_name: str | None = None
    policy_version: str | None = None
    aggregation: str | None = None
    sampled_timestamps: list[float] = Field(default_factory=list)
    frames: list[FrameResult] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    error: str | None = None
    checked_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _consistent(self) -> VisualVerdict:
        if self.passed != (self.status == "passed"):
            raise ValueError("passed must be true exactly when status is 'passed'")
        if self.passed and (
            self.flags or self.model is None or self.media is None or not self.frames
        ):
            raise ValueError("a passing verdict needs a model, media, frames and no flags")
        if self.status == "blocked" and not self.flags:
            raise ValueError("a blocked verdict names the flags that blocked it")
        if self.status == "error" and not self.error:
            raise ValueError("an error verdict carries the error")
        return self

    @classmethod
    def failed_closed(
        cls, error: BaseException | str, *, path: str | None = None, policy: object = None
    ) -> VisualVerdict:
        """The lineage record of a moderation that could not finish: never passes."""
        msg = str(error).splitlines()[0] if str(error) else type(error).__name__
        if path is not None and str(path) not in msg:
            msg = f"{path}: {msg}"
        return cls(
            status="error",
            passed=False,
            category="moderation-error",
            reason=f"moderation failed, publication blocked: {msg}"[:300],
            error=f"{type(error).__name__}: {msg}"[:500]
            if isinstance(error, BaseException)
            else msg[:500],
            policy_name=getattr(policy, "name", None),
            policy_version=getattr(policy, "version_id", None),
        )


# --- exceptions ---------------------------------------------------------------------------


class ModerationError(ReelForgeError):
    """Moderation could not finish (model, decoding, policy): publication must be blocked."""

    def __init__(self, message: str, *, verdict: VisualVerdict | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict


class TextBlocked(BlockedBySafety):
    def __init__(self, verdict: TextVerdict, all_verdicts: list[TextVerdict]) -> None:
        super().__init__(verdict.message(), category=verdict.category or "unknown")
        self.verdict = verdict
        self.verdicts = all_verdicts
        self.extra = {"verdict": verdict.model_dump(mode="json")}


class VisualBlocked(BlockedBySafety):
    def __init__(self, verdict: VisualVerdict) -> None:
        super().__init__(verdict.reason, category=verdict.category or "unknown")
        self.verdict = verdict
        self.extra = {"verdict": verdict.model_dump(mode="json")}
