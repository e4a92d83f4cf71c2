"""`reelforge ad`: a storyboard ad (shots, transitions, end card, captions) from a spec, or a
storyboard from one line of copy (``--brief``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from reelforge.cli.common import (
    DebugOption,
    JsonOption,
    StageBar,
    console,
    run_command,
    save_video,
)
from reelforge.core.errors import InvalidInput


def ad(
    spec: Path | None = typer.Argument(
        None, help="Storyboard (YAML); see examples/storyboard.yaml."
    ),
    brief: str | None = typer.Option(
        None, help="One line of copy: a storyboard of 3-5 shots and an end card in its language."
    ),
    product_json: Path | None = typer.Option(
        None, help="Product fields for --brief (JSON: name, colour, material, category, price)."
    ),
    tenant: str = typer.Option("default", help="Tenant (with --brief; a spec names its own)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the storyboard, make nothing."),
    out: Path | None = typer.Option(None, help="Also save the (first rendition's) ad here."),
    json_output: bool = JsonOption,
    debug: bool = DebugOption,
) -> None:
    """Make a storyboard ad and publish it with its captions (WebVTT and SRT)."""

    def body() -> dict[str, Any]:
        ad_spec, language = _storyboard(spec, brief, product_json, tenant)
        if dry_run:
            return _storyboard_payload(ad_spec, language)
        if out is not None and out.is_dir():
            raise InvalidInput(f"--out {out} is a directory: give a file name such as {out}/ad.mp4")
        from reelforge.ops.run import run_here
        from reelforge.ops.webhooks import deliver_soon

        try:
            with StageBar(enabled=not json_output) as on_stage:
                result = run_here("ad", {"ad": ad_spec}, tenant=ad_spec.tenant, on_stage=on_stage)
        finally:
            deliver_soon()
        payload = _result_payload(result)
        if out is not None:
            payload["out"] = str(save_video(result.videos[0].uri, out))
        return payload

    run_command(body, json_output=json_output, debug=debug, render=_render)


def _storyboard(
    spec: Path | None, brief: str | None, product_json: Path | None, tenant: str
) -> tuple[Any, str | None]:
    from reelforge.campaigns.storyboard import load_storyboard, storyboard_from_brief

    if (spec is None) == (brief is None):
        raise InvalidInput('give a storyboard file or --brief "..." (one of them)')
    if spec is not None:
        if product_json is not None:
            raise InvalidInput("--product-json goes with --brief")
        return load_storyboard(spec), None
    product = None
    if product_json is not None:
        try:
            product = json.loads(product_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"--product-json {product_json}: {exc}") from None
    assert brief is not None
    return storyboard_from_brief(brief, product=product, tenant=tenant)


def _storyboard_payload(ad: Any, language: str | None) -> dict[str, Any]:
    starts = ad.starts()
    cues = {cue["index"]: cue["text"] for cue in ad.cues()}
    return {
        "dry_run": True,
        "name": ad.name,
        "language": language,
        "duration_s": ad.duration,
        "shots": [
            {
                "start": starts[i],
                "duration": s.duration,
                "prompt": s.prompt,
                "transition": s.transition,
                "caption": cues.get(i),
            }
            for i, s in enumerate(ad.shots)
        ],
        "end_card": {"start": starts[-1], **ad.end_card.model_dump(mode="json")},
        "renditions": [r.label for r in ad.renditions],
    }


def _result_payload(result: Any) -> dict[str, Any]:
    first = result.videos[0]
    return {
        "name": result.name,
        "flow_run_id": str(result.flow_run_id),
        "asset_id": str(first.asset_id),
        "url": first.url,
        "webvtt_url": first.attachments.get("vtt"),
        "srt_url": first.attachments.get("srt"),
        "duration_s": round(first.duration, 3),
        "size": f"{first.width}x{first.height}",
        "shots": [str(s) for s in result.shots],
        "starts": result.starts,
        "generated": result.generated,
        "renditions": [
            {"asset_id": str(v.asset_id), "url": v.url, "size": f"{v.width}x{v.height}"}
            for v in result.videos
        ],
    }


def _render(payload: dict[str, Any]) -> None:
    if payload.get("dry_run"):
        lang = f" ({payload['language']})" if payload.get("language") else ""
        console.print(f"[bold]{payload['name']}[/bold]{lang}: {payload['duration_s']:g} s, "
                      f"{', '.join(payload['renditions'])}")  # fmt: skip
        for i, shot in enumerate(payload["shots"]):
            caption = f"  [italic]{shot['caption']}[/italic]" if shot["caption"] else ""
            console.print(f"  {shot['start']:5.1f}s  shot {i + 1} ({shot['duration']:g} s, "
                          f"{shot['transition']}): {shot['prompt']}{caption}", highlight=False)  # fmt: skip
        card = payload["end_card"]
        texts = " · ".join(t for t in (card["headline"], card["price"], card["cta"]) if t)
        console.print(f"  {card['start']:5.1f}s  end card ({card['duration']:g} s): {texts}",
                      highlight=False)  # fmt: skip
        return
    console.print(f"[bold]ad[/bold] {payload['name']}: {payload['duration_s']} s "
                  f"{payload['size']}, {payload['generated']} of {len(payload['shots'])} "
                  "shots generated")  # fmt: skip
    for key in ("url", "webvtt_url", "srt_url", "out", "flow_run_id"):
        if payload.get(key):
            console.print(f"  {key}: {payload[key]}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(ad)
