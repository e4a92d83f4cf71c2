"""The `reelforge` command: one module per command group, each exposing register(app)."""

from __future__ import annotations

import typer

from reelforge.cli import (
    ad,
    api,
    enhance,
    generate,
    lineage,
    model,
    moderate,
    orchestrate,
    review,
    stack,
    style,
    verify,
    videos,
    webhook,
)

app = typer.Typer(
    name="reelforge",
    help="ReelForge: prompt in, published, safe, traceable marketing video out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for group in (
    stack,
    generate,
    enhance,
    moderate,
    model,
    orchestrate,
    lineage,
    api,
    webhook,
    verify,
    videos,
    style,
    ad,
    review,
):
    group.register(app)
