"""Orchestration commands: campaigns, personalised runs, workers and run ops.

reelforge campaign validate|run|deploy SPEC
reelforge personalise SPEC USERS.csv
reelforge worker --pool cpu|gpu
reelforge runs [--status failed] | retry RUN_ID | cancel RUN_ID
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from reelforge.cli.common import DebugOption, JsonOption, console, run_command, video_payload

campaign_app = typer.Typer(
    help="Campaigns: many products, renditions and a schedule from one YAML spec.",
    no_args_is_help=True,
)
SpecArg = typer.Argument(..., help="Campaign spec (YAML); see examples/campaign.yaml.")


def _next_runs(cron: str, timezone: str, count: int = 3) -> list[str]:
    from zoneinfo import ZoneInfo

    from croniter import croniter

    it = croniter(cron, datetime.now(ZoneInfo(timezone)))
    return [it.get_next(datetime).isoformat() for _ in range(count)]


def _spec_summary(spec: Any) -> dict[str, Any]:
    schedule = spec.schedule
    return {
        "campaign": spec.name,
        "tenant": spec.tenant,
        "products": len(spec.products),
        "renditions": [r.label for r in spec.renditions],
        "videos": len(spec.products) * len(spec.renditions),
        "concurrency": spec.concurrency,
        "schedule": f"{schedule.cron} ({schedule.timezone})" if schedule else None,
        "next_runs": _next_runs(schedule.cron, schedule.timezone) if schedule else [],
        "personalisation": spec.personalisation is not None,
    }


@campaign_app.command("validate")
def campaign_validate(
    spec_path: Path = SpecArg, json_output: bool = JsonOption, debug: bool = DebugOption
) -> None:
    """Check a campaign spec (and its products CSV); errors name file, line and field."""
    from reelforge.campaigns.load import load_spec

    run_command(
        lambda: {"valid": True, **_spec_summary(load_spec(spec_path))},
        json_output=json_output,
        debug=debug,
    )


def _render_report(payload: dict[str, Any]) -> None:
    table = Table("sku", "rendition", "status", "link")
    for row in payload.get("rows", []):
        link = row["link"][:80] + ("..." if len(row["link"]) > 80 else "")
        table.add_row(row["sku"], row["rendition"], row["status"], link or row.get("error", ""))
    console.print(table)
    console.print(
        f"[bold]{payload['campaign']}[/bold]: {payload['products']} products, "
        f"{payload['made']} made, {payload['cached']} cached, {payload['generated']} generated "
        f"({payload['gpu_seconds']:.1f} GPU s)"
        + (f", {payload['would_make']} would be made (dry run)" if payload["dry_run"] else "")
        + f"; run {payload['flow_run_id']}",
        highlight=False,
    )


@campaign_app.command("run")
def campaign_run(
    spec_path: Path = SpecArg,
    on_workers: bool = typer.Option(
        False, "--on-workers", help="Send each video to the gpu pool's workers."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Plan only: which products would be made, which are cached."
    ),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Run a campaign now: every product in every rendition (unchanged ones from cache)."""
    from reelforge.campaigns.load import load_spec
    from reelforge.campaigns.plan import report_rows
    from reelforge.core.storage import ObjectStore
    from reelforge.ops.runs import run_campaign

    def body() -> dict[str, Any]:
        spec = load_spec(spec_path)
        executor = "pool" if on_workers else "local"
        report = run_campaign(spec, executor=executor, dry_run=dry_run)
        store = ObjectStore()
        payload = report.model_dump(mode="json", exclude={"results"})
        payload["rows"] = report_rows(report, store.presign)
        return payload

    run_command(body, json_output=json_output, debug=debug, render=_render_report)


@campaign_app.command("deploy")
def campaign_deploy(
    spec_path: Path = SpecArg, json_output: bool = JsonOption, debug: bool = DebugOption
) -> None:
    """Create the campaign's Prefect deployment on its cron schedule (and the personalised
    deployment with its event trigger, if the spec has a personalisation section)."""
    from reelforge.campaigns.load import load_spec
    from reelforge.ops.deployments import deploy_campaign, deploy_personalise

    def body() -> dict[str, Any]:
        spec = load_spec(spec_path)
        if spec.schedule is None:
            from reelforge.core.errors import InvalidInput

            raise InvalidInput(
                f"{spec_path}: schedule: missing: add schedule: {{cron: '0 6 * * 1', "
                "timezone: UTC}} to deploy, or use `reelforge campaign run`"
            )
        deployments = [deploy_campaign(spec).model_dump(mode="json")]
        if spec.personalisation is not None:
            deployments.append(deploy_personalise(spec).model_dump(mode="json"))
        return {**_spec_summary(spec), "deployments": deployments}

    run_command(body, json_output=json_output, debug=debug)


def personalise(
    spec_path: Path = SpecArg,
    users: Path = typer.Argument(..., help="CSV: user_id, sku and the campaign's user fields."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Request personalised videos in bulk: one event per user starts one run on the gpu pool."""
    from reelforge.campaigns.load import load_spec, load_users_csv
    from reelforge.ops.deployments import deploy_personalise, request_personalisation

    def body() -> dict[str, Any]:
        spec = load_spec(spec_path)
        requests = load_users_csv(users, spec)
        deployment = deploy_personalise(spec)
        events = request_personalisation(spec, requests)
        return {
            "campaign": spec.name,
            "deployment": deployment.name,
            "work_pool": deployment.work_pool,
            "submitted": len(events),
            "event_ids": [str(e) for e in events],
        }

    run_command(body, json_output=json_output, debug=debug)


def worker(
    pool: str = typer.Option(..., "--pool", help="cpu (campaigns) or gpu (videos)."),
    name: str | None = typer.Option(None, "--name", help="Worker name (default: host-pool-id)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Flow runs at once."),
    slots: int | None = typer.Option(
        None, "--slots", min=1, help="gpu: generations at once on this machine (default: GPUs)."
    ),
    poll_seconds: float | None = typer.Option(
        None, "--poll-seconds", min=1, help="How often to ask the pool for runs (default 10)."
    ),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Start a Prefect worker (process type) on the cpu or gpu work pool of this stack."""
    from reelforge.core.orchestration import ensure_work_pool, gpu_slot_count, pool_name, ready
    from reelforge.ops.deployments import deploy_video
    from reelforge.ops.stack import _binary

    plan: dict[str, Any] = {}

    def body() -> dict[str, Any]:
        ready()
        work_pool = pool_name(pool)  # type: ignore[arg-type]
        ensure_work_pool(work_pool)
        worker_name = name or f"{socket.gethostname()}-{pool}-{uuid.uuid4().hex[:6]}"
        if pool == "gpu":
            if slots:  # the flow processes this worker starts read it
                os.environ["REELFORGE_GPU_SLOTS"] = str(slots)
            deploy_video()
        cmd = [_binary("prefect"), "worker", "start", "--pool", work_pool, "--type", "process",
               "--name", worker_name, "--install-policy", "never"]  # fmt: skip
        if limit:
            cmd += ["--limit", str(limit)]
        if poll_seconds:
            os.environ["PREFECT_WORKER_QUERY_SECONDS"] = str(poll_seconds)
        plan["cmd"] = cmd
        return {
            "worker": worker_name,
            "work_pool": work_pool,
            "gpu_slots": (slots or gpu_slot_count()) if pool == "gpu" else None,
            "started_at": datetime.now(UTC).isoformat(),
        }

    run_command(body, json_output=json_output, debug=debug)
    sys.stdout.flush()
    os.execv(plan["cmd"][0], plan["cmd"])  # the worker replaces this process (signals, exit)


def _render_runs(payload: dict[str, Any]) -> None:
    table = Table("id", "flow", "state", "started", "duration", "pool/worker", "message")
    for run in payload["runs"]:
        started = (run["start_time"] or "")[:19].replace("T", " ")
        duration = f"{run['duration_s']:.1f}s" if run["duration_s"] is not None else ""
        where = "/".join(x for x in (run["work_pool"], run["worker"]) if x) or "in-process"
        table.add_row(
            run["id"], run["flow"], run["state_name"], started, duration, where,
            (run["message"] or "")[:60],
        )  # fmt: skip
    console.print(table)


def runs(
    status: str | None = typer.Option(None, "--status", help="e.g. failed, running, completed."),
    flow: str | None = typer.Option(None, "--flow", help="video, campaign or personalise."),
    limit: int = typer.Option(20, "--limit", help="How many (newest first)."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """List recent flow runs (newest first)."""
    from reelforge.ops.runs import list_runs

    def body() -> dict[str, Any]:
        found = list_runs(status, flow=flow, limit=limit)
        return {"runs": [r.model_dump(mode="json") for r in found], "count": len(found)}

    run_command(body, json_output=json_output, debug=debug, render=_render_runs)


def retry(
    run_id: str = typer.Argument(..., help="The failed run (`reelforge runs --status failed`)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for a worker to finish it."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds to wait at most."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Retry a failed run under the same id: finished stages come back from the cache."""
    from reelforge.core.errors import ReelForgeError
    from reelforge.core.jobs import VideoResult
    from reelforge.ops.runs import retry_run, run_result

    def body() -> dict[str, Any]:
        info = retry_run(run_id, wait=wait, timeout_s=timeout)
        if info.state in ("FAILED", "CRASHED", "CANCELLED"):
            raise ReelForgeError(
                f"run {info.id} failed again: {info.message or info.state_name}",
                flow_run_id=str(info.id),
            )
        run = info.model_dump(mode="json")
        if info.state == "COMPLETED" and info.flow == "video":
            result = run_result(info.id)
            if isinstance(result, VideoResult):  # the run, and its video as `generate` prints it
                return run | video_payload(result)
        return run

    run_command(body, json_output=json_output, debug=debug)


def cancel(
    run_id: str = typer.Argument(..., help="A scheduled or running run."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Cancel a run (a worker stops a running one)."""
    from reelforge.ops.runs import cancel_run

    run_command(
        lambda: cancel_run(run_id).model_dump(mode="json"), json_output=json_output, debug=debug
    )


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.command()(personalise)
    app.command()(worker)
    app.command()(runs)
    app.command()(retry)
    app.command()(cancel)
