"""`reelforge enhance "PROMPT"`: show the prompt the pipeline would generate from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from reelforge.cli.common import DebugOption, JsonOption, console, run_command
from reelforge.core.errors import InvalidInput


def _load_product(product_json: str | None, fields: dict[str, str | None]) -> dict[str, Any] | None:
    product: dict[str, Any] = {}
    if product_json:
        source = product_json
        if not product_json.lstrip().startswith("{"):
            path = Path(product_json).expanduser()
            if not path.is_file():
                raise InvalidInput(
                    f"--product-json: {product_json} is neither a JSON object nor a file"
                )
            source = path.read_text(encoding="utf-8")
        try:
            loaded = json.loads(source)
        except ValueError as exc:
            raise InvalidInput(f"--product-json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise InvalidInput('--product-json must be a JSON object such as {"name": "..."}')
        product.update(loaded)
    product.update({k: v for k, v in fields.items() if v is not None})
    return product or None


def _render(payload: dict[str, Any]) -> None:
    console.print(payload["enhanced_prompt"], highlight=False, soft_wrap=True)
    line = (
        f"[dim]path={payload['path']} language={payload['detected_language']}"
        f"->{payload['output_language']}"
    )
    if payload.get("template"):
        line += f" template={payload['template']}"
    if payload.get("model"):
        line += f" model={payload['model']}"
    if payload.get("cached"):
        line += " cached"
    console.print(line + "[/dim]", highlight=False, soft_wrap=True)
    if payload.get("fallback_reason"):
        console.print(f"[yellow]fallback:[/yellow] {payload['fallback_reason']}", highlight=False)
    for notice in payload.get("notices") or []:
        console.print(f"[yellow]notice:[/yellow] {notice}", highlight=False)


def register(app: typer.Typer) -> None:
    @app.command("enhance")
    def enhance_cmd(
        prompt: str = typer.Argument(..., help="The prompt or brief, in en/zh/ja/ko."),
        template: str | None = typer.Option(
            None,
            "--template",
            "-t",
            help="Preset: product_showcase, unboxing, festival_greeting, lifestyle.",
        ),
        product_json: str | None = typer.Option(
            None, "--product-json", help="Product fields as a JSON object or a JSON file path."
        ),
        name: str | None = typer.Option(None, "--name", help="Product name."),
        colour: str | None = typer.Option(None, "--colour", "--color", help="Product colour."),
        material: str | None = typer.Option(None, "--material", help="Product material."),
        category: str | None = typer.Option(None, "--category", help="Product category."),
        price: str | None = typer.Option(None, "--price", help="Price as shown, e.g. '$49'."),
        backend: str | None = typer.Option(
            None,
            "--backend",
            help="auto, template, transformers, openai, vocabulary or none (default: setting).",
        ),
        output_language: str | None = typer.Option(
            None, "--output-language", "--lang", help="same, en, zh, ja or ko (default: setting)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed for LLM sampling."),
        no_cache: bool = typer.Option(
            False, "--no-cache", help="Do not read or write the LLM cache."
        ),
        json_output: bool = JsonOption,
        debug: bool = DebugOption,
    ) -> None:
        """Show what the pipeline would generate from (enhanced prompt, path, fallback)."""

        def body() -> dict[str, Any]:
            from tasks.enhance import enhance

            product = _load_product(
                product_json,
                {
                    "name": name,
                    "colour": colour,
                    "material": material,
                    "category": category,
                    "price": price,
                },
            )
            result = enhance(
                prompt,
                template=template,
                product=product,
                backend=backend,  # type: ignore[arg-type]
                output_language=output_language,
                seed=seed,
                cache=not no_cache,
            )
            return result.model_dump(mode="json")

        run_command(body, json_output=json_output, debug=debug, render=_render)
