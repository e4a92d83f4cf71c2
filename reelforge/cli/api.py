"""`reelforge serve` (HTTP API + dashboard) and `reelforge api-key create|revoke`."""

from __future__ import annotations

from typing import Any

import typer

from reelforge.cli.common import DebugOption, JsonOption, console, run_command

api_key_app = typer.Typer(help="Tenant API keys (stored hashed; shown once).", no_args_is_help=True)


@api_key_app.command("create")
def api_key_create(
    tenant: str = typer.Argument(..., help="Tenant slug (created if missing)."),
    name: str | None = typer.Option(None, "--name", help="A label for the key."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Create an API key for TENANT and print it once (only its hash is stored)."""
    from db.session import session_scope
    from reelforge.api.keys import create_key

    def body() -> dict[str, Any]:
        with session_scope() as session:
            key, record = create_key(session, tenant, name)
            return {"tenant": tenant, "key": key, "prefix": record.prefix, "id": str(record.id)}

    def render(payload: dict[str, Any]) -> None:
        console.print(
            f"API key for [bold]{payload['tenant']}[/bold] (shown once):", highlight=False
        )
        console.print(payload["key"], highlight=False, soft_wrap=True)

    run_command(body, json_output=json_output, debug=debug, render=render)


@api_key_app.command("revoke")
def api_key_revoke(
    prefix: str = typer.Argument(..., help="The key's prefix (the 12 hex characters after rf_)."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Revoke an API key."""
    from db.session import session_scope
    from reelforge.api.keys import revoke_key
    from reelforge.core.errors import InvalidInput

    def body() -> dict[str, Any]:
        with session_scope() as session:
            if not revoke_key(session, prefix):
                raise InvalidInput(f"no active key with prefix {prefix!r}")
        return {"revoked": prefix}

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
