"""`reelforge moderate FILE [--policy NAME] [--json]`: the visual safety verdict of an image or
video, with the detections (class, score, box, timestamp).

Exit codes: 0 passed, 3 blocked, 2 bad input (unreadable, empty, corrupt, too large, not an
image or video), 1 moderation error (e.g. the model cannot be loaded; fail closed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from reelforge.cli.common import DebugOption, JsonOption, console, run_command


def _render(payload: dict[str, Any]) -> None:
    status = payload["status"]
    colour = {"passed": "green", "blocked": "red"}.get(status, "yellow")
    console.print(f"[{colour}]{status.upper()}[/{colour}] {payload['reason']}", highlight=False)
    media, model = payload.get("media") or {}, payload.get("model") or {}
    console.print(
        f"[dim]{media.get('kind')} {media.get('width')}x{media.get('height')} "
        f"model={model.get('model_id')} policy={payload.get('policy_version')} "
        f"aggregation={payload.get('aggregation')} samples={len(payload.get('frames') or [])}"
        "[/dim]",
        highlight=False,
        soft_wrap=True,
    )
    rows = [(f, d) for f in payload.get("frames") or [] for d in f["detections"]]
    if rows:
        table = Table("time (s)", "class", "score", "box x,y,w,h", "sampled as")
        for f, d in rows:
            ts = "-" if f["timestamp"] is None else f"{f['timestamp']:.2f}"
            table.add_row(
                ts, d["label"], f"{d['score']:.2f}", ",".join(map(str, d["box"])),
                "+".join(f["reasons"]),
            )  # fmt: skip
        console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("moderate")
    def moderate_cmd(
        file: Path = typer.Argument(..., help="Image (PNG, JPEG, WebP, GIF) or video file."),
        policy: str = typer.Option(
            "default", "--policy", help="Safety policy name (or a .yaml path)."
        ),
        thumbnail: Path | None = typer.Option(
            None, "--thumbnail", help="A separate thumbnail image of the video, checked too."
        ),
        json_output: bool = JsonOption,
        debug: bool = DebugOption,
    ) -> None:
        """Check an image or video with the visual safety gate (exit 3 when blocked)."""

        def body() -> dict[str, Any]:
            from tasks.safety.verdicts import VisualBlocked
            from tasks.safety.visual import moderate_file

            verdict = moderate_file(file, policy=policy, thumbnail=thumbnail)
            payload = verdict.model_dump(mode="json")
            if not verdict.passed:
                if not json_output:
                    _render(payload)
                raise VisualBlocked(verdict)
            return payload

        run_command(body, json_output=json_output, debug=debug, render=_render)
