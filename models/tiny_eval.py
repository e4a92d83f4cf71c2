"""Evaluate prompt following of a generator on held-out colour-shape-direction combinations.

For every held-out combination, every language (en, zh, ja, ko) and each seed, generate a
clip from the caption and check the detector's colour and direction against the prompt.

Run: ``reelforge model eval`` (or ``python -m models.tiny_eval``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from models import tiny_data as data
from models.detector import detect
from models.generator import GenerationRequest


def evaluate(
    service=None,
    combos=data.HELD_OUT,
    languages=data.LANGUAGES,
    seeds: tuple[int, ...] = (0, 1),
    steps: int | None = None,
    source: str = "tiny",
    checkpoint_dir: Path | None = None,
) -> dict:
    from models.service import GeneratorService

    svc = service or GeneratorService(max_batch=8, result_cache=0)
    reqs, meta = [], []
    for colour, shape, direction in combos:
        for lang in languages:
            prompt = data.caption(colour, shape, direction, lang)
            for seed in seeds:
                reqs.append(GenerationRequest(prompt=prompt, seed=1000 + seed, steps=steps))
                meta.append((colour, shape, direction, lang, seed, prompt))
    t0 = time.perf_counter()
    videos = svc.generate_many(reqs, use_cache=False, source=source, checkpoint_dir=checkpoint_dir)
    elapsed = time.perf_counter() - t0
    rows = []
    for (colour, shape, direction, lang, seed, prompt), v in zip(meta, videos, strict=True):
        d = detect(v.frames)
        rows.append(
            {
                "colour": colour,
                "shape": shape,
                "direction": direction,
                "lang": lang,
                "seed": seed,
                "prompt": prompt,
                "detected_colour": d.colour,
                "detected_direction": d.direction,
                "hue": None if d.hue is None else round(d.hue, 1),
                "displacement": [round(d.displacement[0], 1), round(d.displacement[1], 1)],
                "colour_ok": d.colour == colour,
                "direction_ok": d.direction == direction,
            }
        )

    def acc(rs, key):
        return round(sum(r[key] for r in rs) / max(len(rs), 1), 4)

    by_lang = {
        lang: {"n": len(rs), "colour": acc(rs, "colour_ok"), "direction": acc(rs, "direction_ok")}
        for lang in languages
        if (rs := [r for r in rows if r["lang"] == lang])
    }
    v0 = videos[0].metadata
    return {
        "model_version": v0.model_version,
        "checkpoint_sha256": v0.checkpoint_sha256,
        "steps": v0.steps,
        "size": [v0.height, v0.width],
        "frames": v0.frames,
        "n": len(rows),
        "seeds": len(seeds),
        "colour_accuracy": acc(rows, "colour_ok"),
        "direction_accuracy": acc(rows, "direction_ok"),
        "both_accuracy": round(
            sum(r["colour_ok"] and r["direction_ok"] for r in rows) / len(rows), 4
        ),
        "by_language": by_lang,
        "seconds": round(elapsed, 1),
        "rows": rows,
    }


def markdown(
    res: dict, title: str = "Tiny model: prompt following on held-out combinations"
) -> str:
    lines = [
        f"## {title}",
        "",
        f"Reproduce: `reelforge model eval --seeds {res['seeds']}` (model `{res['model_version']}`, "
        f"{res['steps']} steps, "
        f"{res['size'][0]}x{res['size'][1]}, {res['frames']} frames, CPU).",
        "",
        f"{res['n']} clips: {len(data.HELD_OUT)} colour-shape-direction combinations never seen in "
        "training x 4 languages x seeds. Detector: dominant hue of object pixels vs background, "
        "centroid track (`models/detector.py`). Goal: colour >= 90%, direction >= 85%.",
        "",
        "| language | clips | colour accuracy | direction accuracy |",
        "|---|---|---|---|",
    ]
    for lang, r in res["by_language"].items():
        lines.append(f"| {lang} | {r['n']} | {r['colour']:.1%} | {r['direction']:.1%} |")
    lines.append(
        f"| **all** | {res['n']} | **{res['colour_accuracy']:.1%}** | **{res['direction_accuracy']:.1%}** |"
    )
    return "\n".join(lines) + "\n"


def main(
    seeds: int = 2,
    steps: int | None = None,
    write: bool = True,
    out_json: Path | None = None,
    checkpoint_dir: Path | None = None,
) -> dict:
    import torch

    torch.set_num_threads(2)
    res = evaluate(seeds=tuple(range(seeds)), steps=steps, checkpoint_dir=checkpoint_dir)
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    if write:
        from reelforge.core.reports import write_section

        md = markdown(res)
        write_section("tiny-model-eval", md)
        card = Path(__file__).parent / "tiny" / "MODEL_CARD.md"
        if card.exists():
            _replace_card_section(card, md)
    return res


def _replace_card_section(card: Path, md: str) -> None:
    start, end = "<!-- eval -->", "<!-- /eval -->"
    text = card.read_text()
    i, j = text.find(start), text.find(end)
    body = md.replace("## ", "### ", 1)
    if i >= 0 and j > i:
        text = text[: i + len(start)] + "\n" + body + text[j:]
    else:
        text = text.rstrip("\n") + f"\n\n{start}\n{body}{end}\n"
    card.write_text(text)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--model-dir", type=Path, default=None)
    a = ap.parse_args()
    r = main(a.seeds, a.steps, not a.no_write, a.json, a.model_dir)
    print(json.dumps({k: v for k, v in r.items() if k != "rows"}, indent=1))
