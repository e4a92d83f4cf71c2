"""The transformers backend on a tiny randomly initialised Qwen2 built by the test."""

from __future__ import annotations

import json
from pathlib import Path

from reelforge.core.settings import Settings
from tasks.enhance import enhance
from tasks.enhance.cache import EnhanceCache
from tasks.enhance.llm import LLMParams, TransformersBackend, build_messages


def _settings(tmp_path: Path, model_dir: Path | None) -> Settings:
    return Settings(
        home=tmp_path,
        generator="wan",
        enhance_backend="transformers",
        enhance_model_dir=model_dir,
        enhance_max_new_tokens=16,
        device="cpu",
    )


def test_tiny_model_generates_deterministically(tiny_lm_dir: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path, tiny_lm_dir)
    a = enhance("a red circle moves up", settings=settings, seed=3, cache=False)
    b = enhance("a red circle moves up", settings=settings, seed=3, cache=False)
    assert a.path == "llm-transformers", a.fallback_reason
    assert a.fallback_reason is None
    assert a.enhanced_prompt and a.enhanced_prompt == b.enhanced_prompt
    assert a.model.startswith(f"transformers:{tiny_lm_dir.name}@")
    assert a.parameters["max_new_tokens"] == 16 and a.parameters["seed"] == 3


def test_backend_uses_the_chat_template(tiny_lm_dir: Path) -> None:
    backend = TransformersBackend(tiny_lm_dir, device="cpu")
    msgs = build_messages("a blue square", output_language="en")
    out = backend.generate(msgs, LLMParams(max_new_tokens=16, seed=3))
    assert isinstance(out, str) and out.strip()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>assistant\n") and "a blue square" in rendered


def test_cache_hit_skips_generation(tiny_lm_dir: Path, tmp_path: Path) -> None:
    settings = _settings(tmp_path, tiny_lm_dir)
    cache = EnhanceCache(tmp_path / "c")
    first = enhance("a red circle", settings=settings, cache=cache)
    entry = next((tmp_path / "c").rglob("*.json"))
    data = json.loads(entry.read_text())
    data["text"] = "sentinel from cache"
    entry.write_text(json.dumps(data))
    again = enhance("a red circle", settings=settings, cache=cache)
    assert first.cached is False and again.cached is True
    assert again.enhanced_prompt == "sentinel from cache"


def test_missing_model_dir_falls_back_to_template(tmp_path: Path) -> None:
    res = enhance("a red mug", settings=_settings(tmp_path, tmp_path / "nope"), cache=False)
    assert res.path == "template" and res.template == "product_showcase"
    assert "does not exist" in res.fallback_reason


def test_unset_model_dir_falls_back(tmp_path: Path) -> None:
    res = enhance("a red mug", settings=_settings(tmp_path, None), cache=False)
    assert res.path == "template" and "ENHANCE_MODEL_DIR" in res.fallback_reason


def test_broken_checkpoint_falls_back(tmp_path: Path) -> None:
    bad = tmp_path / "broken"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "qwen2", "vocab_size": "many"')
    res = enhance("一个红色的杯子", settings=_settings(tmp_path, bad), cache=False)
    assert res.path == "template" and "cannot load" in res.fallback_reason
    assert res.output_language == "zh" and "。" in res.enhanced_prompt
