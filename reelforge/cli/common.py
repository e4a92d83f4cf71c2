"""What every CLI command shares: one JSON object with --json, one-line errors, exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from reelforge.core.errors import BlockedBySafety, InvalidInput, ReelForgeError

console = Console()
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print one JSON object (also on failure).")
DebugOption = typer.Option(False, "--debug", help="Show tracebacks on errors.")


def emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "input"
        return f"invalid {where}: {first.get('msg')}"
    text = str(exc).strip() or exc.__class__.__name__
    return " ".join(text.split())


def run_command(
    body: Callable[[], dict[str, Any]],
    *,
    json_output: bool,
    debug: bool = False,
    render: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Run a command body and turn its result or error into output and an exit code.

    ``body`` returns the JSON payload; ``render`` prints it for humans (default: key: value).
    """
    try:
        payload = body()
    except (ReelForgeError, ValidationError) as exc:
        code = exc.exit_code if isinstance(exc, ReelForgeError) else 2
        message = _one_line(exc)
        if debug:
            err_console.print_exception()
        failure: dict[str, Any] = {"ok": False, "error": message, "exit_code": code}
        if isinstance(exc, ReelForgeError):
            failure.update(exc.extra)
            if exc.flow_run_id:
                failure["flow_run_id"] = exc.flow_run_id
        if isinstance(exc, BlockedBySafety):
            failure["category"] = exc.category
        if json_output:
            emit_json(failure)
        else:
            err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(code) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:  # the last line of defence: one line, exit 1
        if debug:
            err_console.print_exception()
        message = f"{exc.__class__.__name__}: {_one_line(exc)} (rerun with --debug for details)"
        if json_output:
            emit_json({"ok": False, "error": message, "exit_code": 1})
        else:
            err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None

    payload.setdefault("ok", True)
    if json_output:
        emit_json(payload)
    elif render is not None:
        render(payload)
    else:
        for key, value in payload.items():
            if key != "ok":
                console.print(f"[bold]{key}[/bold]: {value}", highlight=False, soft_wrap=True)


def video_payload(result: Any) -> dict[str, Any]:
    """A finished video run's published video: the keys `reelforge generate` prints."""
    video = result.video
    return {
        "asset_id": str(video.asset_id),
        "uri": video.uri,
        "url": video.url,
        "thumbnail_url": video.thumbnail_url,
        "flow_run_id": str(result.flow_run_id),
        "sha256": video.sha256,
        "size": f"{video.width}x{video.height}",
        "duration_s": round(video.duration, 3),
        "enhanced_prompt": result.enhanced_prompt,
        "generation_cached": result.generation_cached,
    }


def review_payload(opened: Any) -> dict[str, Any]:
    """A versions run that ended waiting for a decision: `generate --review` and `review more`."""
    return {
        "status": opened.status.value,
        "review_id": str(opened.review_id),
        "flow_run_id": str(opened.flow_run_id),
        "takes": [
            {
                "take": t.take,
                "seed": t.seed,
                "clip_id": str(t.clip.id),
                "passed": t.passed,
                "category": t.category,
                "score": t.score,
            }
            for t in opened.takes
        ],
        "next": f"reelforge review approve {opened.review_id} --pick K",
    }


def save_video(uri: str, out: Path) -> Path:
    """Download a published video to ``out`` (written whole or not at all)."""
    from reelforge.core.storage import ObjectStore

    if out.exists() and out.is_dir():
        raise InvalidInput(f"--out {out} is a directory: give a file name such as {out}/video.mp4")
    tmp = out.with_name(f".{out.name}.part")
    try:
        ObjectStore().download(uri, tmp)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReelForgeError(f"could not write {out}: {exc.strerror or exc}") from exc
    return out


class StageBar:
    """A rich progress bar fed by the flow's stage reports (silent with --json)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Progress | None = None
        self.task_id: int | None = None

    def __enter__(self):
        if not self.enabled:
            return None
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} stages"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.bar.start()
        self.task_id = self.bar.add_task("starting", total=None)
        return self.update

    def update(self, stage: str, done: int, total: int) -> None:
        assert self.bar is not None and self.task_id is not None
        self.bar.update(self.task_id, description=f"{stage} done", completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
