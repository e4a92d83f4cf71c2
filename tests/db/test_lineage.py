"""Recording the graph and walking it both ways."""

from __future__ import annotations

from db.lineage import (
    downstream,
    downstream_of_model,
    get_or_create_asset,
    record_activity,
    upstream,
)
from db.models import AssetKind


def _pipeline(db, tenant, make_asset, lut=None):
    prompt = make_asset("prompt")
    enhanced = make_asset("enhanced_prompt")
    checkpoint = make_asset("model_checkpoint")
    clip = make_asset("raw_clip")
    rendition = make_asset("rendition")
    lut = lut or make_asset("lut")
    record_activity(
        db, tenant_id=tenant.id, stage="enhance", used=[(prompt, "prompt")], generated=[enhanced]
    )
    record_activity(
        db,
        tenant_id=tenant.id,
        stage="generate",
        used=[(enhanced, "prompt"), (checkpoint, "model")],
        generated=[clip],
        model_version="tiny-1",
        parameters={"seed": 1},
    )
    record_activity(
        db,
        tenant_id=tenant.id,
        stage="postprocess",
        used=[(clip, "input"), (lut, "lut")],
        generated=[rendition],
    )
    return prompt, enhanced, checkpoint, clip, rendition, lut


def test_upstream_walks_back_to_the_prompt_with_stages_and_roles(db, tenant, make_asset):
    prompt, enhanced, checkpoint, clip, rendition, lut = _pipeline(db, tenant, make_asset)
    nodes = upstream(db, rendition.id)
    by_id = {n.asset_id: n for n in nodes}
    assert set(by_id) == {a.id for a in (prompt, enhanced, checkpoint, clip, rendition, lut)}
    assert by_id[rendition.id].depth == 0 and by_id[rendition.id].stage == "postprocess"
    assert by_id[clip.id].stage == "generate" and by_id[clip.id].model_version == "tiny-1"
    assert by_id[lut.id].role == "lut" and by_id[lut.id].child_id == rendition.id
    assert by_id[prompt.id].depth == 3 and by_id[prompt.id].child_id == enhanced.id


def test_downstream_finds_everything_a_lut_touched(db, tenant, make_asset):
    *_, rendition_a, lut = _pipeline(db, tenant, make_asset)
    *_, rendition_b, _ = _pipeline(db, tenant, make_asset, lut=lut)
    _pipeline(db, tenant, make_asset)  # another LUT: must not show up
    touched = {n.asset_id for n in downstream(db, lut.id) if n.depth > 0}
    assert touched == {rendition_a.id, rendition_b.id}


def test_downstream_of_a_model_version(db, tenant, make_asset):
    _, _, _, clip, rendition, _ = _pipeline(db, tenant, make_asset)
    found = {n.asset_id for n in downstream_of_model(db, tenant.id, "tiny-1")}
    assert found == {clip.id, rendition.id}
    assert downstream_of_model(db, tenant.id, "no-such-model") == []


def test_same_content_is_one_asset(db, tenant):
    kwargs = dict(
        tenant_id=tenant.id,
        kind=AssetKind.prompt,
        sha256="cd" * 32,
        size_bytes=3,
        uri="s3://b/k",
        media_type="text/plain",
    )
    first, created_first = get_or_create_asset(db, **kwargs)
    second, created_second = get_or_create_asset(db, **kwargs)
    assert first.id == second.id
    assert (created_first, created_second) == (True, False)


def test_unknown_asset_has_no_lineage(db):
    import uuid

    assert upstream(db, uuid.uuid4()) == []
