"""Cache keys: content hashes (not names or paths), stable across processes, and sensitive to
everything that changes an output."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from db.models import AssetKind
from reelforge.campaigns.load import load_spec
from reelforge.campaigns.plan import plan_products
from reelforge.core.caching import StageCache, canonical, digest
from reelforge.core.jobs import VideoJob
from tasks.record import AssetRef, StageContext

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _ctx(run: uuid.UUID | None = None) -> StageContext:
    return StageContext(tenant="t", tenant_id=uuid.UUID(int=1), flow_run_id=run or uuid.UUID(int=2))


def _ref(sha: str = "a" * 64) -> AssetRef:
    return AssetRef(id=uuid.UUID(int=3), kind=AssetKind.prompt, uri="s3://b/k", sha256=sha)


def test_files_are_hashed_by_content_not_by_path(tmp_path):
    one, two, other = tmp_path / "one.png", tmp_path / "two.png", tmp_path / "other.png"
    one.write_bytes(b"logo")
    two.write_bytes(b"logo")
    other.write_bytes(b"LOGO")
    assert digest(VideoJob(prompt="p", logo=one)) == digest(VideoJob(prompt="p", logo=two))
    assert digest(VideoJob(prompt="p", logo=one)) != digest(VideoJob(prompt="p", logo=other))


def test_models_dicts_and_enums_are_canonical():
    first = {"b": [1, 2], "a": {AssetKind.prompt: _ref()}}
    second = {"a": {AssetKind.prompt: _ref()}, "b": (1, 2)}
    assert digest(first) == digest(second)
    assert canonical(_ref())["sha256"] == "a" * 64
    with pytest.raises(TypeError, match="cannot derive a cache key"):
        canonical(object())


def test_digest_is_stable_across_processes():
    code = (
        "import uuid; from reelforge.core.caching import digest; from reelforge.core.jobs import VideoJob;"
        "print(digest(VideoJob(prompt='p', seed=3), {'x': uuid.UUID(int=5)}))"
    )
    here = digest(VideoJob(prompt="p", seed=3), {"x": uuid.UUID(int=5)})
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip() == here


def _key(policy: StageCache, **inputs) -> str:
    from tasks.publish import stage as publish_stage

    task_ctx = SimpleNamespace(task=SimpleNamespace(fn=publish_stage.publish.fn))
    return policy.compute_key(task_ctx, inputs, {})


def test_stage_keys_are_scoped_to_the_run_and_follow_the_inputs():
    policy = StageCache(stage="publish")
    run = uuid.uuid4()
    key = _key(policy, ctx=_ctx(run), ref=_ref())
    assert key == _key(policy, ctx=_ctx(run), ref=_ref())  # a retry of the run: a hit
    assert key.startswith("publish-")
    assert key != _key(policy, ctx=_ctx(uuid.uuid4()), ref=_ref())  # another run: its own
    assert key != _key(policy, ctx=_ctx(run), ref=_ref("b" * 64))  # other bytes: a miss
    assert key != _key(StageCache(stage="postprocess"), ctx=_ctx(run), ref=_ref())


def test_product_keys_change_only_when_a_product_changes(tmp_path):
    import shutil

    shutil.copytree(EXAMPLES, tmp_path / "ex")
    spec = load_spec(tmp_path / "ex" / "campaign.yaml")
    keys = [p.cache_key for p in plan_products(spec, "tiny-0123")]
    assert keys == [p.cache_key for p in plan_products(spec, "tiny-0123")]
    assert len(set(keys)) == 3
    assert keys != [p.cache_key for p in plan_products(spec, "tiny-4567")]  # a new model

    csv = tmp_path / "ex" / "products.csv"
    csv.write_text(csv.read_text().replace("$49", "$45"))  # one product's price changes
    changed = [p.cache_key for p in plan_products(load_spec(tmp_path / "ex" / "campaign.yaml"), "tiny-0123")]  # fmt: skip
    assert [a == b for a, b in zip(keys, changed, strict=True)] == [True, False, True]

    logo = tmp_path / "ex" / "logo.png"
    logo.write_bytes(logo.read_bytes() + b"\0")  # the brand's logo changes: every product
    relogo = [p.cache_key for p in plan_products(load_spec(tmp_path / "ex" / "campaign.yaml"), "tiny-0123")]  # fmt: skip
    assert not set(relogo) & set(changed)


def test_model_stages_key_on_the_generators_model_version(monkeypatch):
    from reelforge.core import caching

    policy = StageCache(stage="publish", with_model=True)
    monkeypatch.setattr(caching, "model_version", lambda: "tiny-0123")
    key = _key(policy, ctx=_ctx(), ref=_ref())
    assert key != _key(StageCache(stage="publish"), ctx=_ctx(), ref=_ref())
    monkeypatch.setattr(caching, "model_version", lambda: "tiny-4567")  # a new model
    assert key != _key(policy, ctx=_ctx(), ref=_ref())


def test_stage_cache_takes_its_stage_by_keyword():
    with pytest.raises(TypeError, match="by keyword"):
        StageCache("publish")
