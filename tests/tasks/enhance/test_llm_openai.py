"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reelforge.core.settings import Settings
from tasks.enhance import enhance
from tasks.enhance.cache import EnhanceCache
from tasks.enhance.llm import OpenAIBackend

API_KEY = "sk-test-SECRET-4c0ffee"
REWRITE = "Close-up. A red ceramic mug rotates slowly on a turntable. Soft daylight. Slow dolly-in."


class FakeLLM:
    """Scripted answers: each item is (status, body, delay_s); the last one repeats."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any, float]] = [(200, REWRITE, 0.0)]
        self.requests: list[dict[str, Any]] = []

    def next(self) -> tuple[int, Any, float]:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]


@pytest.fixture
def server() -> Iterator[tuple[str, FakeLLM]]:
    fake = FakeLLM()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            fake.requests.append(
                {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
            )
            status, content, delay = fake.next()
            if delay:
                time.sleep(delay)
            if status == 200 and isinstance(content, str):
                payload = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": content}}]}
                ).encode()
            elif isinstance(content, bytes):
                payload = content
            else:
                payload = json.dumps({"error": {"message": "nope"}}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", fake
    finally:
        httpd.shutdown()
        httpd.server_close()


def _settings(tmp_path: Path, url: str, **kw: Any) -> Settings:
    return Settings(
        home=tmp_path,
        generator="wan",
        enhance_backend="openai",
        enhance_openai_url=url,
        enhance_openai_model="qwen-test",
        enhance_api_key=API_KEY,
        enhance_timeout_s=kw.pop("timeout", 2.0),
        enhance_retries=kw.pop("retries", 2),
        **kw,
    )


def _backend(url: str, sleeps: list[float], **kw: Any) -> OpenAIBackend:
    return OpenAIBackend(
        url, model="qwen-test", api_key=API_KEY, backoff_s=0.01, sleep=sleeps.append, **kw
    )


def test_rewrite_through_endpoint(server, tmp_path: Path) -> None:
    url, fake = server
    res = enhance("a red mug", settings=_settings(tmp_path, url), cache=False)
    assert res.path == "llm-openai" and res.fallback_reason is None
    assert res.enhanced_prompt == REWRITE
    assert res.model == f"openai:qwen-test@{url}"
    req = fake.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["auth"] == f"Bearer {API_KEY}"
    system, user = req["body"]["messages"]
    assert "Do NOT add new subjects" in system["content"] and "English" in system["content"]
    assert user["content"] == "a red mug"
    assert req["body"]["model"] == "qwen-test" and req["body"]["seed"] == 0
    assert API_KEY not in res.model_dump_json()


def test_output_language_and_product_facts_reach_the_model(server, tmp_path: Path) -> None:
    url, fake = server
    enhance(
        "清晨的咖啡杯",
        product={"name": "晨光", "material": "陶瓷"},
        settings=_settings(tmp_path, url),
        cache=False,
    )
    system, user = fake.requests[0]["body"]["messages"]
    assert "Simplified Chinese" in system["content"]
    assert "name: 晨光" in user["content"] and "material: 陶瓷" in user["content"]


def test_retries_with_exponential_backoff_then_succeeds(server, tmp_path: Path) -> None:
    url, fake = server
    fake.script = [(500, None, 0.0), (503, None, 0.0), (200, REWRITE, 0.0)]
    sleeps: list[float] = []
    res = enhance(
        "a red mug", settings=_settings(tmp_path, url), llm=_backend(url, sleeps), cache=False
    )
    assert res.path == "llm-openai"
    assert res.parameters["attempts"] == 3
    assert sleeps == [0.01, 0.02]
    assert len(fake.requests) == 3


def test_persistent_5xx_falls_back_to_template(server, tmp_path: Path, caplog) -> None:
    caplog.set_level("DEBUG")
    url, fake = server
    fake.script = [(503, None, 0.0)]
    sleeps: list[float] = []
    res = enhance(
        "a red mug",
        template="lifestyle",
        backend="openai",
        settings=_settings(tmp_path, url),
        llm=_backend(url, sleeps, retries=2),
        cache=False,
    )
    assert res.path == "template" and res.template == "lifestyle"
    assert "HTTP 503" in res.fallback_reason and "3 attempt(s)" in res.fallback_reason
    assert res.requested_backend == "openai"
    assert len(fake.requests) == 3
    assert "retrying" in caplog.text and "using template" in caplog.text
    assert API_KEY not in caplog.text and API_KEY not in res.model_dump_json()


def test_client_error_is_not_retried(server, tmp_path: Path) -> None:
    url, fake = server
    fake.script = [(401, None, 0.0)]
    res = enhance("a red mug", settings=_settings(tmp_path, url), cache=False)
    assert res.path == "template" and "HTTP 401" in res.fallback_reason
    assert len(fake.requests) == 1
    assert API_KEY not in res.model_dump_json()


def test_timeout_falls_back(server, tmp_path: Path) -> None:
    url, fake = server
    fake.script = [(200, REWRITE, 1.0)]
    t0 = time.perf_counter()
    res = enhance(
        "a red mug", settings=_settings(tmp_path, url, timeout=0.2, retries=0), cache=False
    )
    assert time.perf_counter() - t0 < 1.0
    assert res.path == "template" and "timed out" in res.fallback_reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"{not json", "malformed"), ("   ", "empty prompt"), (b'{"choices": []}', "malformed")],
)
def test_bad_responses_fall_back(server, tmp_path: Path, content: Any, reason: str) -> None:
    url, fake = server
    fake.script = [(200, content, 0.0)]
    res = enhance("a red mug", settings=_settings(tmp_path, url), cache=False)
    assert res.path == "template" and reason in res.fallback_reason


def test_unreachable_endpoint_falls_back(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{port}/v1"
    res = enhance(
        "a red mug",
        settings=_settings(tmp_path, url),
        llm=_backend(url, sleeps, retries=1),
        cache=False,
    )
    assert res.path == "template" and "cannot reach" in res.fallback_reason
    assert sleeps == [0.01]


def test_llm_results_are_cached_per_prompt_model_params_seed(server, tmp_path: Path) -> None:
    url, fake = server
    settings = _settings(tmp_path, url)
    cache = EnhanceCache(tmp_path / "cache")
    first = enhance("a red mug", settings=settings, cache=cache)
    again = enhance("a red mug", settings=settings, cache=cache)
    assert (first.cached, again.cached) == (False, True)
    assert again.enhanced_prompt == first.enhanced_prompt
    assert len(fake.requests) == 1
    enhance("a red mug", settings=settings, cache=cache, seed=1)  # other seed: a miss
    enhance("a blue mug", settings=settings, cache=cache)  # other prompt: a miss
    enhance("a red mug", settings=_settings(tmp_path, url, enhance_temperature=0.2), cache=cache)
    assert len(fake.requests) == 4
    files = list((tmp_path / "cache").rglob("*.json"))
    assert len(files) == 4
    assert all(API_KEY not in f.read_text() for f in files)


def test_repr_hides_key() -> None:
    assert API_KEY not in repr(OpenAIBackend("http://x/v1", model="m", api_key=API_KEY))
