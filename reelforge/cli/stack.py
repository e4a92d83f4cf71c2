"""Commands that run the local stack: up, down, status, doctor."""

from __future__ import annotations

from typing import Any

import typer

from reelforge.cli.common import DebugOption, JsonOption, console, run_command
from reelforge.core.errors import ServiceUnavailable
from reelforge.core.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command()
    def up(json_output: bool = JsonOption, debug: bool = DebugOption) -> None:
        """Start the embedded local stack (PostgreSQL, S3, Prefect) and migrate. Safe to repeat."""
        from reelforge.ops import stack

        def body() -> dict[str, Any]:
            settings = get_settings()
            with console.status("starting the local stack...") as spinner:
                stack.up(settings, progress=lambda name: spinner.update(f"starting {name}..."))
            return _status_payload(settings)

        run_command(body, json_output=json_output, debug=debug, render=_render_status)

    @app.command()
    def down(json_output: bool = JsonOption, debug: bool = DebugOption) -> None:
        """Stop the processes that `reelforge up` started (and nothing else)."""
        from reelforge.ops import stack

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
            None,
            "--tenant",
            help="Check only this tenant's objects and stalled runs (other runs: all).",
        ),
        json_output: bool = JsonOption,
        debug: bool = DebugOption,
    ) -> None:
        """Check settings, binaries and connectivity, and say what to fix; find what crashes left."""
        from reelforge.ops import repair as sweep
        from reelforge.ops.doctor import run_checks

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
                    f"doctor found problems: {', '.join(failed)}",
                    extra={"checks": payload["checks"]},
                )
            findings = sweep.scan(tenant=tenant)
            if repair:
                findings = sweep.repair(
                    findings,
                    delete_published=delete_published,
                    delete_quarantined=delete_quarantined,
                )
            payload["sweep"] = findings.as_json()
            if repair:  # reviews whose time ran out: rejected, or their best take approved
                from reelforge.ops.reviews import expire_reviews

                payload["reviews"] = expire_reviews()
            if not json_output:
                _render_sweep(findings, repaired=repair)
                for decided in payload.get("reviews", []):
                    console.print(f"[green]repaired[/green] review {decided['review_id']} "
                                  f"timed out: {decided['status']}", highlight=False)  # fmt: skip
            return payload

        run_command(body, json_output=json_output, debug=debug, render=lambda _: None)

    def _render_sweep(findings, *, repaired: bool) -> None:
        rows = [
            ("orphan objects", findings.orphan_objects),
            ("dangling lineage rows", findings.dangling_assets),
            ("stuck activities", findings.stuck_activities),
            ("abandoned runs (process gone)", findings.abandoned_runs),
            ("stalled runs (heartbeats stopped)", findings.stalled_runs),
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
            console.print(
                "run `reelforge doctor --repair` to fix what is safe to fix", highlight=False
            )


def _status_payload(settings) -> dict[str, Any]:
    from reelforge.ops import stack

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
