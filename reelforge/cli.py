"""The `reelforge` command. Stage engineers add commands through `reelforge/cli_<stage>.py`."""

from __future__ import annotations

import importlib
import uuid
from typing import Any

import typer
from rich.markup import escape
from rich.tree import Tree

from reelforge.cli_common import DebugOption, JsonOption, console, run_command
from reelforge.errors import InvalidInput, ServiceUnavailable
from reelforge.settings import get_settings

app = typer.Typer(
    name="reelforge",
    help="ReelForge: prompt in, published, safe, traceable marketing video out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each stage's commands live in its own module, which exposes register(app).
COMMAND_MODULES = (
    "reelforge.cli_generate",
    "reelforge.cli_enhance",
    "reelforge.cli_moderate",
    "reelforge.cli_model",
    "reelforge.cli_orchestrate",
    "reelforge.cli_api",
)


@app.command()
def up(json_output: bool = JsonOption, debug: bool = DebugOption) -> None:
    """Start the embedded local stack (PostgreSQL, S3, Prefect) and migrate. Safe to repeat."""
    from reelforge import stack

    def body() -> dict[str, Any]:
        settings = get_settings()
        with console.status("starting the local stack...") as spinner:
            stack.up(settings, progress=lambda name: spinner.update(f"starting {name}..."))
        return _status_payload(settings)

    run_command(body, json_output=json_output, debug=debug, render=_render_status)


@app.command()
def down(json_output: bool = JsonOption, debug: bool = DebugOption) -> None:
    """Stop the processes that `reelforge up` started (and nothing else)."""
    from reelforge import stack

    run_command(
        lambda: {"stopped": stack.down(get_settings())}, json_output=json_output, debug=debug
    )


@app.command()
def status(json_output: bool = JsonOption, debug: bool = DebugOption) -> None:
    """Health of PostgreSQL, S3 and Prefect (exit 1 if any is unhealthy)."""

    def body() -> dict[str, Any]:
        payload = _status_payload(get_settings())
        if not payload["healthy"]:
            bad = [name for name, s in payload["services"].items() if not s["healthy"]]
            _render_status(payload) if not json_output else None
            raise ServiceUnavailable(
                f"unhealthy: {', '.join(bad)}: run `reelforge up` or `reelforge doctor`"
            )
        return payload

    run_command(body, json_output=json_output, debug=debug, render=_render_status)


@app.command()
def doctor(
    repair: bool = typer.Option(
        False, "--repair", help="Fix what is safe: delete orphan objects, close stuck runs."
    ),
    delete_published: bool = typer.Option(
        False,
        "--delete-published",
        help="With --repair, also delete orphans in the published bucket.",
    ),
    delete_quarantined: bool = typer.Option(
        False,
        "--delete-quarantined",
        help="With --repair, also delete quarantined orphans (kept for review otherwise).",
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", help="Check only this tenant's objects (runs and slots: all)."
    ),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Check settings, binaries and connectivity, and say what to fix; find what crashes left."""
    from reelforge import repair as sweep
    from reelforge.doctor import run_checks

    def body() -> dict[str, Any]:
        checks = run_checks(get_settings())
        payload: dict[str, Any] = {"checks": [c.as_json() for c in checks]}
        if not json_output:
            for check in checks:
                mark = "[green]ok[/green]" if check.ok else "[red]FAIL[/red]"
                console.print(f"{mark} {check.name}: {check.detail}", highlight=False)
                if not check.ok and check.fix:
                    console.print(f"     fix: {check.fix}", highlight=False)
        failed = [c.name for c in checks if not c.ok]
        if failed:
            raise ServiceUnavailable(
                f"doctor found problems: {', '.join(failed)}", extra={"checks": payload["checks"]}
            )
        findings = sweep.scan(tenant=tenant)
        if repair:
            findings = sweep.repair(
                findings, delete_published=delete_published, delete_quarantined=delete_quarantined
            )
        payload["sweep"] = findings.as_json()
        if not json_output:
            _render_sweep(findings, repaired=repair)
        return payload

    run_command(body, json_output=json_output, debug=debug, render=lambda _: None)


def _render_sweep(findings, *, repaired: bool) -> None:
    rows = [
        ("orphan objects", findings.orphan_objects),
        ("dangling lineage rows", findings.dangling_assets),
        ("stuck activities", findings.stuck_activities),
        ("abandoned runs (process gone)", findings.abandoned_runs),
        ("leaked slots", [f"{n}: {k}" for n, k in findings.leaked_slots.items()]),
    ]
    for name, items in rows:
        mark = "[green]ok[/green]" if not items else "[yellow]found[/yellow]"
        console.print(f"{mark} {name}: {len(items)}", highlight=False)
        for item in items[:20]:
            console.print(f"     {item}", highlight=False)
    for line in findings.repaired:
        console.print(f"[green]repaired[/green] {line}", highlight=False)
    for uri in findings.kept:
        console.print(f"kept (published or quarantined) {uri}", highlight=False)
    for note in findings.notes:
        console.print(f"note: {note}", highlight=False)
    if not findings.clean and not repaired:
        console.print("run `reelforge doctor --repair` to fix what is safe to fix", highlight=False)


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


def _status_payload(settings) -> dict[str, Any]:
    from reelforge import stack

    services = stack.status(settings)
    return {
        "home": str(settings.home_dir),
        "healthy": all(s.healthy for s in services.values()),
        "services": {name: s.as_json() for name, s in services.items()},
    }


def _render_status(payload: dict[str, Any]) -> None:
    for name, svc in payload["services"].items():
        mark = "[green]healthy[/green]" if svc["healthy"] else "[red]down[/red]"
        pid = f" pid {svc['pid']}" if svc.get("pid") else ""
        detail = f"  ({svc['detail']})" if svc.get("detail") else ""
        console.print(
            f"{name:9} {mark}  {svc['mode']} {svc['address']}{pid}{detail}", highlight=False
        )


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


for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)
