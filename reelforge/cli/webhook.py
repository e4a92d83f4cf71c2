"""`reelforge webhook add|list|remove|deliver|deliveries|redeliver`: signed event callbacks."""

from __future__ import annotations

import uuid
from typing import Any

import typer

from reelforge.cli.common import DebugOption, JsonOption, console, run_command
from reelforge.core.errors import InvalidInput

webhook_app = typer.Typer(
    help="Webhook endpoints (Standard Webhooks signatures) and their deliveries.",
    no_args_is_help=True,
)


def _uuid(text: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a UUID: copy it from the listing") from None


@webhook_app.command("add")
def webhook_add(
    url: str = typer.Argument(..., help="Where events are POSTed (http or https)."),
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug."),
    events: str = typer.Option(
        ...,
        "--events",
        help="Comma-separated: video.completed, video.failed, video.blocked, review.waiting, "
        "campaign.completed.",
    ),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Register URL for TENANT's events and print its signing secret once."""
    from reelforge.ops.webhooks import add_endpoint, parse_events

    def body() -> dict[str, Any]:
        endpoint, secret = add_endpoint(tenant, url, parse_events(events))
        return {**endpoint.model_dump(mode="json"), "secret": secret}

    def render(payload: dict[str, Any]) -> None:
        console.print(
            f"webhook [bold]{payload['id']}[/bold] -> {payload['url']} "
            f"({', '.join(payload['events'])}); signing secret (shown once):",
            highlight=False,
            soft_wrap=True,
        )
        console.print(payload["secret"], highlight=False, soft_wrap=True)

    run_command(body, json_output=json_output, debug=debug, render=render)


@webhook_app.command("list")
def webhook_list(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's endpoints."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """The registered endpoints (secrets are never shown again)."""
    from reelforge.ops.webhooks import list_endpoints

    def body() -> dict[str, Any]:
        return {"endpoints": [e.model_dump(mode="json") for e in list_endpoints(tenant)]}

    def render(payload: dict[str, Any]) -> None:
        for e in payload["endpoints"]:
            console.print(
                f"{e['id']}  {e['tenant']}  {e['url']}  {','.join(e['events'])}", highlight=False
            )
        if not payload["endpoints"]:
            console.print("no webhook endpoints", highlight=False)

    run_command(body, json_output=json_output, debug=debug, render=render)


@webhook_app.command("remove")
def webhook_remove(
    endpoint_id: str = typer.Argument(..., help="The endpoint's id (see `webhook list`)."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Remove an endpoint; its queued events and delivery log go with it."""
    from reelforge.ops.webhooks import remove_endpoint

    def body() -> dict[str, Any]:
        remove_endpoint(_uuid(endpoint_id, "endpoint id"))
        return {"removed": endpoint_id}

    run_command(body, json_output=json_output, debug=debug)


@webhook_app.command("deliver")
def webhook_deliver(
    limit: int = typer.Option(100, "--limit", min=1, max=10_000, help="At most this many."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Deliver the events that are due, once (the API's dispatcher does this continuously)."""
    from reelforge.ops.webhooks import deliver_due

    def body() -> dict[str, Any]:
        return deliver_due(limit).model_dump()

    run_command(body, json_output=json_output, debug=debug)


@webhook_app.command("deliveries")
def webhook_deliveries(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's events."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="Newest first, this many."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """The newest events and how their last delivery went."""
    from reelforge.ops.webhooks import recent_deliveries

    def body() -> dict[str, Any]:
        rows = recent_deliveries(tenant, limit)
        return {"deliveries": [row.model_dump(mode="json") for row in rows]}

    def render(payload: dict[str, Any]) -> None:
        for d in payload["deliveries"]:
            outcome = d["last_error"] or (d["last_status_code"] or "")
            console.print(
                f"{d['event_id']}  {d['event_type']:<18} {d['status']:<9} "
                f"attempts={d['attempts']}  {d['url']}  {outcome}",
                highlight=False,
                soft_wrap=True,
            )
        if not payload["deliveries"]:
            console.print("no webhook events", highlight=False)

    run_command(body, json_output=json_output, debug=debug, render=render)


@webhook_app.command("redeliver")
def webhook_redeliver(
    event_id: str = typer.Argument(..., help="The event's id (its webhook-id header)."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Queue an event again and deliver it now (same webhook-id: receivers dedupe)."""
    from reelforge.ops.webhooks import deliver_due, redeliver

    def body() -> dict[str, Any]:
        redeliver(_uuid(event_id, "event id"))
        return {"redelivered": event_id, **deliver_due().model_dump()}

    run_command(body, json_output=json_output, debug=debug)


def register(app: typer.Typer) -> None:
    app.add_typer(webhook_app, name="webhook")
