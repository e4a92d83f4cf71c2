"""LLM prompt rewriting: a local transformers model or an OpenAI-compatible endpoint.

Both backends take chat messages built by :func:`build_messages` (a Wan-style "film director"
system prompt that forbids new subjects) and return cleaned text or raise :class:`LLMError`.
The caller (enhancer.py) falls back to the template path on any LLM error.
API keys are sent in the Authorization header only; they never enter messages, errors,
logs or results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

MAX_OUTPUT_CHARS = 2000
LANGUAGE_NAMES = {"en": "English", "zh": "Simplified Chinese", "ja": "Japanese", "ko": "Korean"}

SYSTEM_PROMPT = """\
You are a film director writing the shot description for a text-to-video model.
Rewrite the user's request into one vivid, concrete video prompt.
Rules:
1. Keep every subject, product, colour, material, quantity and action the user gave. \
Do NOT add new subjects: no extra people, animals, products, brands, logos or on-screen text.
2. Describe, in this order: the subject and its appearance; its motion; the background; \
the lighting; the shot size; the camera move.
3. Choose lighting from: soft daylight, golden hour, studio softbox, rim light, \
high-key, low-key, neon, candlelight.
4. Choose the shot size from: extreme close-up, close-up, medium close-up, medium shot, \
wide shot. Choose the camera move from: static, slow dolly-in, dolly-out, pan left, \
pan right, tilt up, tilt down, orbit, crane up, crane down, handheld follow.
5. Keep text in quotes and product names exactly as given.
6. At most 120 words. Output only the prompt itself, with no title, notes or quotes.
7. Write the prompt in {language}.\
"""

SYSTEM_PROMPT_VERSION = "director-v1"


class LLMError(Exception):
    """The LLM backend failed; the message is one line and safe to record."""


@dataclass(frozen=True)
class LLMParams:
    max_new_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "system_prompt": SYSTEM_PROMPT_VERSION,
        }


def build_messages(
    prompt: str, *, output_language: str, product: dict[str, Any] | None = None
) -> list[dict[str, str]]:
    system = SYSTEM_PROMPT.format(language=LANGUAGE_NAMES.get(output_language, "English"))
    user = prompt
    facts = {k: v for k, v in (product or {}).items() if v}
    if facts:
        user += "\nProduct facts (use them, invent nothing else): " + "; ".join(
            f"{k}: {v}" for k, v in facts.items()
        )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


_THINK = re.compile(r"<think>.*?</think>", re.S)
_PREFIX = re.compile(r"^(?:enhanced |rewritten |video )?prompt\s*[:：]\s*", re.I)


def clean_output(text: str) -> str:
    """Strip reasoning blocks, labels and wrapping quotes; refuse empty or huge output."""
    text = _THINK.sub("", text or "").strip()
    text = _PREFIX.sub("", text).strip()
    if len(text) >= 2 and text[0] in "\"'“「" and text[-1] in "\"'”」":
        text = text[1:-1].strip()
    text = " ".join(text.split())
    if not any(ch.isalnum() for ch in text):
        raise LLMError("the model returned an empty prompt")
    if len(text) > MAX_OUTPUT_CHARS:
        raise LLMError(f"the model returned {len(text)} characters (max {MAX_OUTPUT_CHARS})")
    return text


# --- transformers -----------------------------------------------------------------------


def model_fingerprint(model_dir: Path) -> str:
    """Cheap identity of a model directory: config files' bytes and weight file names/sizes."""
    h = hashlib.sha256()
    for name in (
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ):
        p = model_dir / name
        if p.exists():
            h.update(name.encode() + b"\0" + p.read_bytes())
    for p in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.bin")):
        h.update(f"{p.name}:{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


_load_lock = threading.Lock()
_gen_lock = threading.Lock()


@lru_cache(maxsize=2)
def _load_transformers(model_dir: str, device: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    model.to(device)
    model.eval()
    return tokenizer, model


class TransformersBackend:
    """Text generation with a local causal LM (loaded once per process and device)."""

    path_name = "llm-transformers"

    def __init__(self, model_dir: Path, *, device: str = "auto") -> None:
        self.model_dir = Path(model_dir).expanduser()
        self.device = resolve_device(device)

    @property
    def model_id(self) -> str:
        fp = model_fingerprint(self.model_dir) if self.model_dir.is_dir() else "missing"
        return f"transformers:{self.model_dir.name}@{fp}"

    def _check_dir(self) -> None:
        if not self.model_dir.is_dir():
            raise LLMError(f"model directory {self.model_dir} does not exist")
        if not (self.model_dir / "config.json").exists():
            raise LLMError(f"model directory {self.model_dir} has no config.json")

    def generate(self, messages: list[dict[str, str]], params: LLMParams) -> str:
        self._check_dir()
        import torch

        try:
            with _load_lock:
                tokenizer, model = _load_transformers(str(self.model_dir.resolve()), self.device)
        except Exception as exc:  # a broken checkpoint must not break the pipeline
            raise LLMError(f"cannot load {self.model_dir.name}: {type(exc).__name__}") from exc
        try:
            if getattr(tokenizer, "chat_template", None):
                text = tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
            else:
                text = "\n\n".join(m["content"] for m in messages) + "\n\n"
            enc = tokenizer(text, return_tensors="pt").to(self.device)
            do_sample = params.temperature > 0
            kwargs: dict[str, Any] = {
                "max_new_tokens": params.max_new_tokens,
                "do_sample": do_sample,
                "pad_token_id": tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else tokenizer.eos_token_id,
            }
            if do_sample:
                kwargs.update(temperature=params.temperature, top_p=params.top_p)
            with _gen_lock, torch.inference_mode():
                torch.manual_seed(params.seed)  # global RNG: serialise generation
                out = model.generate(**enc, **kwargs)
            new_tokens = out[0, enc["input_ids"].shape[1] :]
            decoded = tokenizer.decode(new_tokens, skip_special_tokens=True)
        except LLMError:
            raise
        except Exception as exc:
            raise LLMError(
                f"generation failed: {type(exc).__name__}: {exc}".splitlines()[0]
            ) from exc
        return clean_output(decoded)


# --- OpenAI-compatible HTTP ----------------------------------------------------------------

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend:
    """POST {base_url}/chat/completions with timeouts and retries (exponential backoff)."""

    path_name = "llm-openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self.attempts = 0  # of the last generate() call, for the result's parameters

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def model_id(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    def _safe(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return " ".join(text.split())[:300]

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        delay = self.backoff_s * (2**attempt)
        if response is not None:
            ra = response.headers.get("retry-after", "")
            if ra.replace(".", "", 1).isdigit():
                delay = max(delay, float(ra))
        return min(delay, self.max_backoff_s)

    def generate(self, messages: list[dict[str, str]], params: LLMParams) -> str:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            "stream": False,
        }
        url = f"{self.base_url}/chat/completions"
        last = "no attempt made"
        self.attempts = 0
        with httpx.Client(timeout=httpx.Timeout(self.timeout_s), follow_redirects=False) as client:
            for attempt in range(self.retries + 1):
                self.attempts = attempt + 1
                response = None
                try:
                    response = client.post(url, headers=headers, json=body)
                except httpx.TimeoutException:
                    last = f"timed out after {self.timeout_s:g} s"
                except httpx.TransportError as exc:
                    last = f"cannot reach {self.base_url}: {type(exc).__name__}"
                else:
                    if response.status_code == 200:
                        return self._parse(response)
                    last = f"HTTP {response.status_code} from {self.base_url}"
                    if response.status_code not in _RETRY_STATUS:
                        raise LLMError(self._safe(last))
                if attempt < self.retries:
                    delay = self._delay(attempt, response)
                    log.info(
                        "LLM endpoint attempt %d failed (%s); retrying in %.2fs",
                        attempt + 1,
                        self._safe(last),
                        delay,
                    )
                    self._sleep(delay)
        raise LLMError(self._safe(f"{last} (after {self.attempts} attempt(s))"))

    def _parse(self, response: httpx.Response) -> str:
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"malformed response from {self.base_url}: {type(exc).__name__}"
            ) from exc
        if not isinstance(content, str):
            raise LLMError(f"malformed response from {self.base_url}: content is not text")
        return clean_output(content)


def cache_key(**parts: Any) -> str:
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
