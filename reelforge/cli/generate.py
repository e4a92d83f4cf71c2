"""`reelforge generate`: the main job, a published video from a prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from reelforge.cli.common import (
    DebugOption,
    JsonOption,
    StageBar,
    review_payload,
    run_command,
    save_video,
    video_payload,
)
from reelforge.core.errors import InvalidInput


def generate(
    prompt: str = typer.Argument(..., help="What the video shows (any of en, zh, ja, ko)."),
    seed: int = typer.Option(0, help="Same prompt, seed and settings give the same video."),
    steps: int | None = typer.Option(None, help="Denoising steps (default: the model's)."),
    speed: str = typer.Option(
        "quality", help="Speed profile: quality, fast or turbo (fewer steps, step cache, LoRA)."
    ),
    fast: bool = typer.Option(False, "--fast", help="Same as --speed fast."),
    template: str | None = typer.Option(None, help="Enhancement preset (see `reelforge enhance`)."),
    preset: str | None = typer.Option(
        None, help="The model's size preset: 480p/720p-landscape/portrait (wan), square (tiny)."
    ),
    seconds: float | None = typer.Option(
        None, help="Clip length; frames = 4n+1 at the model's fps (default: the model's)."
    ),
    style: str | None = typer.Option(
        None, help="A registered style LoRA, NAME or NAME:STRENGTH (see `reelforge style`)."
    ),
    aspect: str = typer.Option("16:9", help="16:9, 9:16 or 1:1."),
    quality: str = typer.Option("720p", help="720p or 1080p."),
    fps: int = typer.Option(30, help="24 or 30."),
    lut: str | None = typer.Option(None, help="Colour grade: a preset name or a .cube file."),
    logo: Path | None = typer.Option(None, help="PNG logo with alpha."),
    music: Path | None = typer.Option(None, help="Music track (wav, mp3, m4a, flac)."),
    text: str | None = typer.Option(None, help="Overlay text (name, price, call to action)."),
    tenant: str = typer.Option("default", help="Tenant the video belongs to."),
    policy: str = typer.Option("default", help="Safety policy name."),
    out: Path | None = typer.Option(None, help="Also save the published video here."),
    versions: int = typer.Option(
        1, help="Takes to make (seeds SEED, SEED+1, ...); more than one needs --review."
    ),
    review: bool = typer.Option(
        False, "--review", help="Stop after the takes' previews: a person picks one to publish."
    ),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Make a video from PROMPT and publish it (enhance, check, generate, grade, brand)."""

    def body() -> dict[str, Any]:
        from reelforge.core.jobs import VideoJob, parse_style
        from reelforge.ops.reviews import check_versions, start_versions
        from reelforge.ops.run import run_video
        from reelforge.ops.webhooks import deliver_soon

        if out is not None and out.is_dir():  # before the run, not after publishing
            raise InvalidInput(
                f"--out {out} is a directory: give a file name such as {out}/video.mp4"
            )
        if fast and speed != "quality":
            raise InvalidInput(f"give --fast or --speed {speed}, not both (--fast is --speed fast)")
        job = VideoJob(
            tenant=tenant,
            prompt=prompt,
            seed=seed,
            steps=steps,
            speed="fast" if fast else speed,
            generation_preset=preset,
            seconds=seconds,
            **parse_style(style),
            template=template,
            aspect=aspect,
            quality=quality,
            fps=fps,
            lut=lut,
            logo=logo,
            music=music,
            text=text,
            policy=policy,
        )
        check_versions(versions, review)
        if review and out is not None:
            raise InvalidInput("--out goes with `reelforge review approve`, not with --review")
        try:
            with StageBar(enabled=not json_output) as on_stage:
                if review:  # ends after the previews: `reelforge review approve` publishes
                    return review_payload(start_versions(job, versions, on_stage=on_stage))
                result = run_video(job, on_stage=on_stage)
        finally:
            deliver_soon()  # this run's webhooks, best effort (the outbox keeps the rest)
        payload = video_payload(result)
        if out is not None:
            payload["out"] = str(save_video(result.video.uri, out))
        return payload

    run_command(body, json_output=json_output, debug=debug)


def register(app: typer.Typer) -> None:
    app.command()(generate)
