"""`reelforge review`: the takes waiting for a decision, and the decision.

`generate --versions N --review` ends after the takes' previews; `review approve ID --pick K`
publishes take K (and prints what `generate --json` prints), `review reject ID --reason TEXT`
publishes nothing, `review more ID` adds takes. Errors (unknown review, another tenant's, a
pick out of range, a second decision) are one line, exit 2, and publish nothing.
"""

from __future__ import annotations

import getpass
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from reelforge.cli.common import (
    DebugOption,
    JsonOption,
    StageBar,
    console,
    review_payload,
    run_command,
    video_payload,
)
from reelforge.core.errors import InvalidInput

review_app = typer.Typer(
    name="review", help="Pick the take to publish (`generate --versions N --review`).",
    no_args_is_help=True,
)  # fmt: skip

TenantOption = typer.Option("default", help="Tenant the review belongs to.")


def operator() -> str:
    """The agent of a decision made on this machine's command line."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


@review_app.command("list")
def list_(
    status: str | None = typer.Option(None, help="Only these: awaiting_review, published, ..."),
    campaign: str | None = typer.Option(None, help="Only this campaign's reviews."),
    tenant: str = TenantOption,
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """The tenant's reviews, newest first."""
    from reelforge.ops.reviews import list_reviews

    def body() -> dict[str, Any]:
        return {"reviews": list_reviews(tenant, status=status, campaign=campaign)}

    run_command(body, json_output=json_output, debug=debug, render=_render_list)


@review_app.command()
def show(
    review_id: str = typer.Argument(..., help="The review (`review list` shows them)."),
    tenant: str = TenantOption,
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """A review's takes: verdict, score and prompt of each."""
    from reelforge.ops.reviews import show_review

    run_command(
        lambda: show_review(tenant, review_id),
        json_output=json_output,
        debug=debug,
        render=_render_review,
    )


@review_app.command("approve")
def approve_(
    review_id: str | None = typer.Argument(None, help="The review to decide."),
    pick: int | None = typer.Option(None, "--pick", help="The take to publish (1, 2, ...)."),
    best: bool = typer.Option(
        False, "--best", help="With --campaign: approve each review's best-scored take."
    ),
    campaign: str | None = typer.Option(None, help="With --best: the campaign's reviews."),
    note: str | None = typer.Option(None, help="Why this take (kept in lineage)."),
    tenant: str = TenantOption,
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Publish take --pick of a review (prints what `generate --json` prints)."""
    from reelforge.ops.reviews import approve, approve_best
    from reelforge.ops.webhooks import deliver_soon

    def body() -> dict[str, Any]:
        if best:
            if campaign is None or review_id is not None or pick is not None:
                raise InvalidInput("--best goes with --campaign NAME (no review id, no --pick)")
            return {"approved": approve_best(tenant, campaign, agent=operator(), note=note)}
        if review_id is None or pick is None:
            raise InvalidInput("give the review id and --pick K (or --best --campaign NAME)")
        try:
            with StageBar(enabled=not json_output) as on_stage:
                result = approve(
                    tenant, review_id, pick, agent=operator(), note=note, on_stage=on_stage
                )
        finally:
            deliver_soon()
        return video_payload(result)

    run_command(body, json_output=json_output, debug=debug)


@review_app.command()
def reject(
    review_id: str = typer.Argument(..., help="The review to decide."),
    reason: str = typer.Option(..., help="Why none of the takes (kept in lineage)."),
    tenant: str = TenantOption,
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Publish none of the takes (they stay private)."""
    from reelforge.ops.reviews import reject as reject_review

    run_command(
        lambda: reject_review(tenant, review_id, agent=operator(), reason=reason),
        json_output=json_output,
        debug=debug,
        render=_render_review,
    )


@review_app.command()
def more(
    review_id: str = typer.Argument(..., help="The review to add takes to."),
    versions: int = typer.Option(1, help="How many more takes."),
    tenant: str = TenantOption,
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Make more takes of a waiting review (the next seeds)."""
    from reelforge.ops.reviews import more as more_takes

    def body() -> dict[str, Any]:
        with StageBar(enabled=not json_output) as on_stage:
            return review_payload(more_takes(tenant, review_id, versions, on_stage=on_stage))

    run_command(body, json_output=json_output, debug=debug)


def _render_list(payload: dict[str, Any]) -> None:
    table = Table("review", "status", "takes", "best score", "prompt", "created")
    for r in payload["reviews"]:
        scores = [t["score"] for t in r["takes"] if t["score"] is not None]
        table.add_row(r["review_id"], r["status"], str(len(r["takes"])),
                      f"{max(scores):.2f}" if scores else "-", escape(r["prompt"] or ""),
                      (r["created_at"] or "")[:19].replace("T", " "))  # fmt: skip
    console.print(table)


def _render_review(review: dict[str, Any]) -> None:
    console.print(f"[bold]review[/bold] {review['review_id']}: {review['status']}", highlight=False)
    if review["decided_by"]:
        console.print(f"  decided by {review['decided_by']}"
                      + (f": {escape(review['note'])}" if review["note"] else ""), highlight=False)  # fmt: skip
    for t in review["takes"]:
        verdict = "passed" if t["passed"] else f"[red]blocked ({t['category']})[/red]"
        score = "-" if t["score"] is None else f"{t['score']:.2f}"
        chosen = " [green]chosen[/green]" if review["pick"] == t["take"] else ""
        console.print(f"  take {t['take']} (seed {t['seed']}): {verdict}, score {score}{chosen}",
                      highlight=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    app.add_typer(review_app)
