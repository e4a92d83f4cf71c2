"""`reelforge videos`: a tenant's published videos, however they were made."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from reelforge.cli.common import DebugOption, JsonOption, console, run_command
from reelforge.core.errors import InvalidInput


def videos(
    tenant: str = typer.Option("default", help="Whose videos."),
    limit: int = typer.Option(20, "--limit", help="How many (newest first), 1 to 500."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """List published videos (newest first) with their presigned URLs and flow runs."""
    from sqlalchemy import select

    from db import lineage as graph
    from db.models import Tenant
    from db.session import session_scope
    from reelforge.core.storage import ObjectStore

    def body() -> dict[str, Any]:
        if not 1 <= limit <= 500:
            raise InvalidInput(f"--limit {limit} is out of range: use 1 to 500")
        with session_scope() as session:
            tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
            if tenant_id is None:
                raise InvalidInput(f"no tenant {tenant!r}: check --tenant (it made no videos)")
            found = graph.published_videos(session, tenant_id, limit=limit)
        objects = ObjectStore()
        rows = [
            {
                "asset_id": str(v.asset_id),
                "published_at": v.published_at.isoformat(),
                "size": f"{v.media.get('width')}x{v.media.get('height')}",
                "duration_s": v.media.get("duration"),
                "uri": v.published_uri,
                "url": objects.presign(v.published_uri),
                "sha256": v.sha256,
                "flow_run_id": str(v.flow_run_id) if v.flow_run_id else None,
                "campaign_id": str(v.campaign_id) if v.campaign_id else None,
            }
            for v in found
        ]
        return {"tenant": tenant, "videos": rows, "count": len(rows)}

    run_command(body, json_output=json_output, debug=debug, render=_render)


def _render(payload: dict[str, Any]) -> None:
    table = Table("asset", "published", "size", "seconds", "flow run")
    for video in payload["videos"]:
        duration = video["duration_s"]
        table.add_row(
            video["asset_id"],
            video["published_at"][:19].replace("T", " "),
            video["size"],
            f"{float(duration):.1f}" if duration is not None else "",
            video["flow_run_id"] or "",
        )
    console.print(table)
    console.print(f"{payload['count']} published videos of {payload['tenant']}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(videos)
