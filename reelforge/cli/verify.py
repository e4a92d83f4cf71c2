"""`reelforge verify FILE`: a video's content credentials (C2PA), and its asset in lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from reelforge.cli.common import DebugOption, JsonOption, console, run_command
from reelforge.core.errors import InvalidInput


def register(app: typer.Typer) -> None:
    @app.command()
    def verify(
        file: Path = typer.Argument(..., help="The video (or image) to check."),
        json_output: bool = JsonOption,
        debug: bool = DebugOption,
    ) -> None:
        """Read a file's content credentials: validation, actions, ingredients, and the lineage
        asset with the same sha256. Exit 0: valid (an untrusted local CA included); 3: the
        file changed after signing; 2: no credentials or not a media file."""
        from reelforge.core.storage import sha256_file
        from tasks.postprocess.credentials import CredentialsInvalid, read_credentials

        def body() -> dict[str, Any]:
            if not file.is_file():
                raise InvalidInput(f"{file} is not a file")
            credentials = read_credentials(file)
            sha256 = sha256_file(file)
            payload = {
                "file": str(file),
                "sha256": sha256,
                **credentials.as_json(),
                "lineage_assets": _lineage_assets(sha256),
            }
            if not credentials.valid:
                raise CredentialsInvalid(
                    f"{file} fails C2PA validation ({', '.join(credentials.failures)}): it "
                    "changed after it was signed, or was signed wrongly",
                    extra=payload,
                )
            return payload

        run_command(body, json_output=json_output, debug=debug, render=_render)


def _lineage_assets(sha256: str) -> list[dict[str, Any]]:
    """The recorded assets whose bytes are exactly this file's (one per tenant at most)."""
    from sqlalchemy import select

    from db.models import Asset, Tenant
    from db.session import session_scope

    with session_scope() as session:
        rows = session.execute(
            select(Asset, Tenant.slug)
            .join(Tenant, Tenant.id == Asset.tenant_id)
            .where(Asset.sha256 == sha256)
        ).all()
        return [
            {
                "asset_id": str(asset.id),
                "tenant": slug,
                "kind": asset.kind.value,
                "uri": asset.uri,
                "published_uri": asset.published_uri,
            }
            for asset, slug in rows
        ]


def _render(payload: dict[str, Any]) -> None:
    untrusted = "signingCredential.untrusted" in payload["validation_status"]
    state = payload["validation_state"] + (" (signer not on a trust list)" if untrusted else "")
    console.print(f"[bold]credentials[/bold]: [green]{state}[/green]", highlight=False)
    console.print(f"[bold]claim generator[/bold]: {payload['claim_generator']}", highlight=False)
    console.print(f"[bold]signed by[/bold]: {payload['signer']}", highlight=False)
    for action in payload["actions"]:
        source = action.get("digitalSourceType", "").rsplit("/", 1)[-1]
        agent = (action.get("softwareAgent") or {}).get("name", "")
        extra = ", ".join(v for v in (source, agent) if v)
        console.print(f"  action {action['action']}" + (f" ({extra})" if extra else ""))
    for item in payload["ingredients"]:
        asset = f" asset {item['asset_id']}" if item.get("asset_id") else ""
        console.print(f"  ingredient {item['title']} [{item['format']}]{asset}", highlight=False)
    disclosure = payload["ai_disclosure"] or {}
    if disclosure:
        shown = "drawn" if disclosure.get("visible") else "not drawn (tenant policy)"
        console.print(f"[bold]AI label[/bold]: {disclosure.get('text')!r} {shown}")
    assets = payload["lineage_assets"]
    if not assets:
        console.print("[bold]lineage[/bold]: no recorded asset has this file's sha256")
    for asset in assets:
        published = f", published at {asset['published_uri']}" if asset["published_uri"] else ""
        console.print(
            f"[bold]lineage[/bold]: {asset['kind']} {asset['asset_id']} "
            f"(tenant {asset['tenant']}){published}",
            highlight=False,
        )
