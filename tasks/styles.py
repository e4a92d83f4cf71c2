"""A tenant's brand styles: register a LoRA file under a name, list, remove, and find the one
a job names.

Registering checks the file against the configured model (``models.styles``), stores it in
the private bucket and records it as a ``style_lora`` asset (activity ``style``) together with
the name, in one transaction. Removing a name keeps the asset: videos made with the style
still show it in their lineage.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert

from db.models import Asset, AssetKind, Style, Tenant
from db.session import session_scope
from models.styles import check_style_lora
from reelforge.core.checkpoints import check_checkpoint, configured_checkpoint
from reelforge.core.errors import InvalidInput
from reelforge.core.settings import get_settings
from tasks.record import AssetRef, Output, context_for, record_stage

STYLE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class StyleInfo(BaseModel):
    name: str
    asset_id: str
    sha256: str
    uri: str
    rank: int
    modules: int


def _info(name: str, ref: AssetRef) -> StyleInfo:
    return StyleInfo(
        name=name,
        asset_id=str(ref.id),
        sha256=ref.sha256,
        uri=ref.uri,
        rank=int(ref.media.get("rank", 0)),
        modules=int(ref.media.get("modules", 0)),
    )


def register_style(tenant: str, name: str, path: Path) -> StyleInfo:
    """Check ``path`` against the configured model and register it as ``name`` (a name
    registered again points at the new file)."""
    if not STYLE_NAME.match(name):
        raise InvalidInput(
            f"style name {name!r}: use lowercase letters, digits and '-' (at most 64)"
        )
    settings = get_settings()
    checkpoint = check_checkpoint(settings.generator, configured_checkpoint(settings))
    check = check_style_lora(path, checkpoint)
    ctx = context_for(tenant)

    def name_it(session, rows: list[Asset]) -> None:
        row = insert(Style).values(tenant_id=ctx.tenant_id, name=name, asset_id=rows[0].id)
        session.execute(
            row.on_conflict_do_update(
                index_elements=[Style.tenant_id, Style.name], set_={"asset_id": rows[0].id}
            )
        )

    (ref,) = record_stage(
        ctx,
        "style",
        outputs=[
            Output(
                path=path,
                kind=AssetKind.style_lora,
                media={"style": name, "rank": check.rank, "modules": check.modules},
                media_type="application/x-safetensors",
            )
        ],
        parameters={"name": name, "generator": settings.generator},
        then=name_it,
    )
    return _info(name, ref)


def list_styles(tenant: str) -> list[StyleInfo]:
    with session_scope() as session:
        rows = session.execute(
            select(Style.name, Asset)
            .join(Asset, Asset.id == Style.asset_id)
            .join(Tenant, Tenant.id == Style.tenant_id)
            .where(Tenant.slug == tenant)
            .order_by(Style.name)
        ).all()
        return [_info(name, AssetRef.of(asset)) for name, asset in rows]


def find_style(tenant: str, name: str) -> AssetRef:
    """The LoRA asset registered as ``name``; a one-line error naming the fix if none."""
    with session_scope() as session:
        asset = session.scalars(
            select(Asset)
            .join(Style, Style.asset_id == Asset.id)
            .join(Tenant, Tenant.id == Style.tenant_id)
            .where(Tenant.slug == tenant, Style.name == name)
        ).first()
        if asset is None:
            raise InvalidInput(
                f"tenant {tenant} has no style {name!r}; register it with "
                f"`reelforge style add {name} FILE.safetensors --tenant {tenant}`"
            )
        return AssetRef.of(asset)


def remove_style(tenant: str, name: str) -> StyleInfo:
    info = _info(name, find_style(tenant, name))
    with session_scope() as session:
        tenant_id = select(Tenant.id).where(Tenant.slug == tenant).scalar_subquery()
        session.execute(delete(Style).where(Style.tenant_id == tenant_id, Style.name == name))
    return info
