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
                failures = graph.failed_activities(session, [n.asset_id for n in nodes])
                choices = graph.decisions(session, [n.asset_id for n in nodes])
            if not nodes:
                raise InvalidInput(
                    f"no asset {root}: check the id (`reelforge generate --json` prints it)"
                )
            texts = _small_texts(nodes)
            return {
                "asset_id": str(root),
                "direction": "downstream" if downstream else "upstream",
                "nodes": [{**n.as_json(), "text": texts.get(n.asset_id)} for n in nodes],
                "failed_activities": [f.as_json() for f in failures],
                "decisions": [d.as_json() for d in choices],
            }

        run_command(body, json_output=json_output, debug=debug, render=_render_lineage)


TEXT_KINDS = ("prompt", "enhanced_prompt", "overlay_text")
TEXT_INLINE_BYTES = 400  # a prompt or overlay text: longer ones stay S3 URIs


def _small_texts(nodes: list[Any]) -> dict[uuid.UUID, str]:
    """The text of small text assets (prompts, overlay text), read from S3: what a person
    wants to see in a lineage, instead of a URI."""
    from minio.error import S3Error

    from reelforge.core.storage import ObjectStore

    small = [
        n
        for n in nodes
        if n.kind in TEXT_KINDS and n.size_bytes is not None and n.size_bytes <= TEXT_INLINE_BYTES
    ]
    if not small:
        return {}
    objects = ObjectStore()
    texts = {}
    for node in small:
        try:
            texts[node.asset_id] = objects.read_bytes(node.uri).decode("utf-8", "replace")
        except (S3Error, ValueError):  # gone, or a URI no bucket can have: show the URI
            continue
    return texts


def _shot_order(node: dict[str, Any]) -> tuple[int, int]:
    """An ad's shots (roles ``shot-0``, ``shot-1``, ...) in timeline order, after its other
    inputs, which keep their order (the sort is stable)."""
    role = node.get("role") or ""
    number = role.removeprefix("shot-")
    return (1, int(number)) if role.startswith("shot-") and number.isdigit() else (0, 0)


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
        text = f': "{escape(node["text"])}"' if node.get("text") is not None else ""
        return (
            f"{role}[bold]{node['kind']}[/bold] {node['asset_id']}{made_by}{model}{published}{text}"
        )

    root = by_id[payload["asset_id"]]
    tree = Tree(label(root))
    seen = {root["asset_id"]}

    def grow(branch: Tree, node_id: str) -> None:
        for child in sorted(children.get(node_id, []), key=_shot_order):
            sub = branch.add(label(child))
            if child["asset_id"] not in seen:  # a DAG: shared inputs are expanded once
                seen.add(child["asset_id"])
                grow(sub, child["asset_id"])

    grow(tree, root["asset_id"])
    console.print(tree, highlight=False)
    for d in payload.get("decisions") or []:
        note = f": {escape(d['note'])}" if d["note"] else ""
        console.print(
            f"[bold]review[/bold] {d['decision']} by {escape(d['agent'] or '-')} "
            f"{d['decided_at'][:19].replace('T', ' ')}{note}; chose {d['chosen']} of "
            f"{len(d['considered'])} considered takes: {', '.join(d['considered'])}",
            highlight=False,
        )
    failures = payload.get("failed_activities") or []
    if failures:
        console.print(f"[bold red]failed stage runs ({len(failures)})[/bold red]")
        for failure in failures:
            console.print(
                f"  {failure['started_at'][:19].replace('T', ' ')} [bold]{failure['stage']}[/bold]"
                f" run {failure['flow_run_id'] or '-'}: {escape(failure['error'] or 'failed')}",
                highlight=False,
            )
