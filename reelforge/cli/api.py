"""`reelforge serve` (HTTP API + dashboard) and `reelforge api-key create|list|revoke`."""

from __future__ import annotations

from typing import Any

import typer

from reelforge.cli.common import DebugOption, JsonOption, console, run_command

api_key_app = typer.Typer(help="Tenant API keys (stored hashed; shown once).", no_args_is_help=True)


@api_key_app.command("create")
def api_key_create(
    tenant: str = typer.Argument(..., help="Tenant slug (created if missing)."),
    name: str | None = typer.Option(None, "--name", help="A label for the key."),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="Expire after this long: 12h, 30d, 8w (default: never)."
    ),
    operator: bool = typer.Option(
        False, "--operator", help="An operator's key: the dashboard also links to Prefect's UI."
    ),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Create an API key for TENANT and print it once (only its hash is stored)."""
    from db.session import session_scope
    from reelforge.api.keys import create_key, parse_duration

    def body() -> dict[str, Any]:
        lifetime = parse_duration(expires_in) if expires_in is not None else None
        with session_scope() as session:
            key, record = create_key(session, tenant, name, expires_in=lifetime, operator=operator)
            return {
                "tenant": tenant,
                "key": key,
                "prefix": record.prefix,
                "id": str(record.id),
                "operator": operator,
                "expires_at": record.expires_at.isoformat() if record.expires_at else None,
            }

    def render(payload: dict[str, Any]) -> None:
        until = f", expires {payload['expires_at'][:16]} UTC" if payload["expires_at"] else ""
        role = ", operator" if payload["operator"] else ""
        console.print(
            f"API key for [bold]{payload['tenant']}[/bold]{role}{until} (shown once):",
            highlight=False,
        )
        console.print(payload["key"], highlight=False, soft_wrap=True)

    run_command(body, json_output=json_output, debug=debug, render=render)


@api_key_app.command("list")
def api_key_list(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's keys."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """List API keys (id, prefix, tenant, state, expiry), newest first; never the keys."""
    from db.session import session_scope
    from reelforge.api.keys import list_keys

    def body() -> dict[str, Any]:
        with session_scope() as session:
            keys = list_keys(session, tenant)
        return {"keys": keys, "count": len(keys)}

    def render(payload: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table("id", "prefix", "tenant", "name", "role", "state", "created", "expires")
        for key in payload["keys"]:
            table.add_row(
                key["id"], key["prefix"], key["tenant"], key["name"] or "",
                "operator" if key["operator"] else "tenant", key["state"],
                key["created_at"][:16], (key["expires_at"] or "never")[:16],
            )  # fmt: skip
        console.print(table)

    run_command(body, json_output=json_output, debug=debug, render=render)


@api_key_app.command("revoke")
def api_key_revoke(
    key: str = typer.Argument(..., help="The key's id or prefix (`reelforge api-key list`)."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Revoke an API key; the dashboard sessions opened with it end at once."""
    from db.session import session_scope
    from reelforge.api.keys import revoke_key
    from reelforge.core.errors import InvalidInput

    def body() -> dict[str, Any]:
        with session_scope() as session:
            record = revoke_key(session, key)
            if record is None:
                raise InvalidInput(
                    f"no active key with id or prefix {key!r}: see `reelforge api-key list`"
                )
            return {"revoked": str(record.id), "prefix": record.prefix}

    run_command(body, json_output=json_output, debug=debug)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    dispatch: bool | None = typer.Option(
        None, "--dispatch/--no-dispatch", help="Run the job dispatcher here (default: settings)."
    ),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Serve the HTTP API (/v1, /docs) and the ops dashboard (/dashboard)."""
    plan: dict[str, Any] = {}

    def body() -> dict[str, Any]:
        from reelforge.api import create_app
        from reelforge.core.orchestration import configure_prefect
        from reelforge.core.settings import get_settings

        settings = get_settings()
        configure_prefect(settings)
        plan["app"] = create_app(settings, dispatch=dispatch)
        return {"url": f"http://{host}:{port}", "executor": settings.api_executor}

    run_command(body, json_output=json_output, debug=debug)
    import uvicorn

    uvicorn.run(plan["app"], host=host, port=port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.add_typer(api_key_app, name="api-key")
