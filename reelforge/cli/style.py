"""`reelforge style add|list|remove`: a tenant's brand styles (LoRA files for both experts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from reelforge.cli.common import DebugOption, JsonOption, console, run_command

style_app = typer.Typer(
    help="Brand styles: LoRA files applied to both experts (`generate --style NAME[:STRENGTH]`).",
    no_args_is_help=True,
)


@style_app.command("add")
def style_add(
    name: str = typer.Argument(..., help="The style's name: lowercase letters, digits, '-'."),
    file: Path = typer.Argument(..., help="The LoRA, .safetensors in diffusers' format."),
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Check FILE against the configured model and register it as TENANT's style NAME."""

    def body() -> dict[str, Any]:
        from tasks.styles import register_style

        return register_style(tenant, name, file).model_dump()

    def render(payload: dict[str, Any]) -> None:
        console.print(
            f"style [bold]{payload['name']}[/bold]: rank {payload['rank']}, "
            f"{payload['modules']} layers, asset {payload['asset_id']}",
            highlight=False,
            soft_wrap=True,
        )

    run_command(body, json_output=json_output, debug=debug, render=render)


@style_app.command("list")
def style_list(
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """TENANT's registered styles."""

    def body() -> dict[str, Any]:
        from tasks.styles import list_styles

        return {"styles": [s.model_dump() for s in list_styles(tenant)]}

    def render(payload: dict[str, Any]) -> None:
        for s in payload["styles"]:
            console.print(
                f"{s['name']}  rank {s['rank']}  {s['sha256'][:16]}  {s['asset_id']}",
                highlight=False,
            )
        if not payload["styles"]:
            console.print("no styles", highlight=False)

    run_command(body, json_output=json_output, debug=debug, render=render)


@style_app.command("remove")
def style_remove(
    name: str = typer.Argument(..., help="The style's name."),
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Remove TENANT's style NAME (videos made with it keep it in their lineage)."""

    def body() -> dict[str, Any]:
        from tasks.styles import remove_style

        return {"removed": remove_style(tenant, name).model_dump()}

    def render(payload: dict[str, Any]) -> None:
        console.print(f"removed style {payload['removed']['name']}", highlight=False)

    run_command(body, json_output=json_output, debug=debug, render=render)


def register(app: typer.Typer) -> None:
    app.add_typer(style_app, name="style")
