"""`reelforge model train|eval|info`: the tiny model's training, evaluation and metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from reelforge.cli.common import DebugOption, JsonOption, console, run_command


def register(app: typer.Typer) -> None:
    model_app = typer.Typer(
        help="Train, evaluate and inspect the generation model.", no_args_is_help=True
    )
    app.add_typer(model_app, name="model")

    @model_app.command("train")
    def train_cmd(
        out: Path = typer.Option(None, help="Output model directory (default: models/tiny)."),
        work_dir: Path = typer.Option(
            None, help="Scratch dir for stage checkpoints (default: $REELFORGE_HOME/train-tiny)."
        ),
        seed: int = typer.Option(0, help="Training seed."),
        vae_steps: int = typer.Option(650, help="VAE decoder optimiser steps."),
        vae_encoder_steps: int = typer.Option(150, help="VAE encoder optimiser steps."),
        text_steps: int = typer.Option(1000, help="Text encoder pretraining steps."),
        dataset_size: int = typer.Option(960, help="Synthetic clips the experts train on."),
        dit_steps: int = typer.Option(4000, help="Optimiser steps of the two experts."),
        threads: int = typer.Option(2, help="torch CPU threads."),
        json_output: bool = JsonOption,
        debug: bool = DebugOption,
    ) -> None:
        """Train the tiny two-expert model from scratch (seeded, CPU, about 26 min on 2 cores)."""

        def body() -> dict[str, Any]:
            from models.generator import TINY_DIR
            from models.tiny_train import train
            from reelforge.core.settings import get_settings

            wd = work_dir or get_settings().home_dir / "train-tiny"
            log = (lambda m: None) if json_output else (lambda m: console.print(m, highlight=False))
            times = train(
                out or TINY_DIR,
                wd,
                seed,
                vae_steps=vae_steps,
                vae_encoder_steps=vae_encoder_steps,
                text_steps=text_steps,
                dataset_size=dataset_size,
                dit_steps=dit_steps,
                threads=threads,
                log=log,
            )
            return {"out": str(out or TINY_DIR), "work_dir": str(wd), "times": times}

        run_command(body, json_output=json_output, debug=debug)

    @model_app.command("eval")
    def eval_cmd(
        seeds: int = typer.Option(2, help="Seeds per (combination, language)."),
        steps: int = typer.Option(None, help="Denoising steps (default: the model's)."),
        model_dir: Path = typer.Option(None, help="Tiny model directory (default: models/tiny)."),
        write: bool = typer.Option(True, help="Write BENCHMARKS.md and the model card."),
        json_output: bool = JsonOption,
        debug: bool = DebugOption,
    ) -> None:
        """Colour, shape and direction accuracy on training and held-out combinations, in en, zh,
        ja and ko."""

        def body() -> dict[str, Any]:
            from models.tiny_eval import main

            res = main(seeds, steps, write, None, model_dir)
            return {k: v for k, v in res.items() if k != "rows"}

        def render(p: dict[str, Any]) -> None:
            console.print(f"model {p['model_version']}, {p['frames']} frames ({p['seconds']} s)")
            for split, r in p["splits"].items():
                console.print(
                    f"{split}: colour {r['colour']:.1%}  shape {r['shape']:.1%}  "
                    f"direction {r['direction']:.1%}  ({r['n']} clips, goals met: "
                    f"{'yes' if r['goals_met'] else 'no'})"
                )
                for lang, x in r["by_language"].items():
                    console.print(
                        f"  {lang}: colour {x['colour']:.1%} shape {x['shape']:.1%} "
                        f"direction {x['direction']:.1%}"
                    )

        run_command(body, json_output=json_output, debug=debug, render=render)

    @model_app.command("info")
    def info_cmd(json_output: bool = JsonOption, debug: bool = DebugOption) -> None:
        """The configured generator: source, model version, checkpoint sha256, presets."""

        def body() -> dict[str, Any]:
            from models.service import get_service

            g = get_service().generator()
            return {
                "source": g.source,
                "model_id": g.model_id,
                "model_version": g.model_version,
                "checkpoint_sha256": g.checkpoint_sha256,
                "path": str(g.path),
                "device": g.device,
                "presets": {k: list(v) for k, v in g.spec.presets.items()},
                "default_frames": g.spec.frames,
                "steps": g.spec.steps,
                "load_seconds": round(g.load_seconds, 3),
            }

        run_command(body, json_output=json_output, debug=debug)
