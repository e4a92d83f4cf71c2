"""The CLI contract: JSON on success and failure, exit codes, and `reelforge lineage`."""

from __future__ import annotations

import json
import uuid

from typer.testing import CliRunner

from db.lineage import record_activity
from db.session import session_scope
from reelforge.cli.app import app

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _committed_chain(stack):
    """A real chain, committed (the CLI opens its own session)."""
    import hashlib

    from db.lineage import ensure_tenant, get_or_create_asset
    from db.models import AssetKind

    with session_scope() as session:
        tenant = ensure_tenant(session, f"cli-{uuid.uuid4().hex[:8]}")

        def asset(kind: str):
            sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
            return get_or_create_asset(
                session,
                tenant_id=tenant.id,
                kind=AssetKind(kind),
                sha256=sha,
                size_bytes=1,
                uri=f"s3://b/{sha}",
                media_type="application/octet-stream",
            )[0]

        prompt, clip, video, lut = (
            asset("prompt"),
            asset("raw_clip"),
            asset("rendition"),
            asset("lut"),
        )
        record_activity(
            session,
            tenant_id=tenant.id,
            stage="generate",
            used=[(prompt, "prompt")],
            generated=[clip],
            model_version="tiny-test",
        )
        record_activity(
            session,
            tenant_id=tenant.id,
            stage="postprocess",
            used=[(clip, "input"), (lut, "lut")],
            generated=[video],
        )
        return {
            k: str(v.id) for k, v in dict(prompt=prompt, clip=clip, video=video, lut=lut).items()
        }


def test_lineage_json_lists_the_upstream_chain(stack):
    ids = _committed_chain(stack)
    result = _invoke("lineage", ids["video"], "--json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["ok"] is True and payload["direction"] == "upstream"
    depth = {n["asset_id"]: n["depth"] for n in payload["nodes"]}
    assert depth == {ids["video"]: 0, ids["clip"]: 1, ids["lut"]: 1, ids["prompt"]: 2}


def test_lineage_text_prints_a_tree(stack):
    ids = _committed_chain(stack)
    result = _invoke("lineage", ids["video"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert ids["video"] in lines[0] and "postprocess" in lines[0]
    clip_line = next(i for i, line in enumerate(lines) if ids["clip"] in line)
    prompt_line = next(i for i, line in enumerate(lines) if ids["prompt"] in line)
    assert prompt_line > clip_line  # the prompt hangs under the clip
    assert "tiny-test" in "".join(lines[clip_line:prompt_line])  # rich may wrap long labels


def test_lineage_downstream_answers_what_the_lut_touched(stack):
    ids = _committed_chain(stack)
    payload = json.loads(_invoke("lineage", ids["lut"], "--downstream", "--json").stdout)
    assert {n["asset_id"] for n in payload["nodes"]} == {ids["lut"], ids["video"]}


def test_bad_asset_id_is_exit_2_with_json_error():
    result = _invoke("lineage", "nope", "--json")
    assert result.exit_code == 2
    payload = json.loads(result.stdout)
    assert payload["ok"] is False and "UUID" in payload["error"]


def test_unknown_asset_is_exit_2(stack):
    result = _invoke("lineage", str(uuid.uuid4()))
    assert result.exit_code == 2
    assert "no asset" in result.stderr


def test_every_command_has_help():
    for command in ("up", "down", "status", "doctor", "lineage"):
        result = _invoke(command, "--help")
        assert result.exit_code == 0 and "--json" in result.stdout


def test_doctor_reports_healthy_stack_as_json(stack):
    result = _invoke("doctor", "--json")
    payload = json.loads(result.stdout)
    checks = {c["name"]: c["ok"] for c in payload["checks"]}
    assert checks["postgres"] and checks["s3"] and checks["prefect"] and checks["ffmpeg"]
