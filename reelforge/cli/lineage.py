"""`reelforge lineage`: where an asset came from, or what it touched."""

from __future__ import annotations

import uuid
from typing import Any

import typer
from rich.markup import escape
from rich.tree import Tree

from reelforge.cli.common import DebugOption, JsonOption, console, run_command
from reelforge.core.errors import InvalidInput


def register(app: typer.Typer) -> None:
    @app.command()
    def lineage(
        asset_id: str = typer.Argument(..., help="The asset to trace."),
        downstream: bool = typer.Option(
            False, "--downstream", help="Show what was derived from the asset instead."
        ),
        json_output: bool = JsonOption,
        debug: bool = DebugOption,
    ) -> None:
        """Where did this asset come from (or, with --downstream, what did it touch)?"""
        from db import lineage as graph
        from db.session import session_scope

        def body() -> dict[str, Any]:
            try:
                root = uuid.UUID(asset_id)
            except ValueError:
                raise InvalidInput(f"not an asset id: {asset_id!r} (expected a UUID)") from None
            with session_scope() as session:
                walk = graph.downstream if downstream else graph.upstream
                nodes = walk(session, root)
            if not nodes:
                raise InvalidInput(
                    f"no asset {root}: check the id (`reelforge generate --json` prints it)"
                )
            return {
                "asset_id": str(root),
                "direction": "downstream" if downstream else "upstream",
                "nodes": [n.as_json() for n in nodes],
            }

        run_command(body, json_output=json_output, debug=debug, render=_render_lineage)


def _render_lineage(payload: dict[str, Any]) -> None:
    nodes = payload["nodes"]
    by_id = {n["asset_id"]: n for n in nodes}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for node in nodes:
        children.setdefault(node["child_id"], []).append(node)

    def label(node: dict[str, Any]) -> str:
        made_by = f" <- {node['stage']}" if node["stage"] else ""
        model = escape(f" [{node['model_version']}]") if node["model_version"] else ""
        role = f"({node['role']}) " if node["role"] else ""
        published = " [green]published[/green]" if node["published_uri"] else ""
        return f"{role}[bold]{node['kind']}[/bold] {node['asset_id']}{made_by}{model}{published}"

    root = by_id[payload["asset_id"]]
    tree = Tree(label(root))
    seen = {root["asset_id"]}

    def grow(branch: Tree, node_id: str) -> None:
        for child in children.get(node_id, []):
            sub = branch.add(label(child))
            if child["asset_id"] not in seen:  # a DAG: shared inputs are expanded once
                seen.add(child["asset_id"])
                grow(sub, child["asset_id"])

    grow(tree, root["asset_id"])
    console.print(tree, highlight=False)
