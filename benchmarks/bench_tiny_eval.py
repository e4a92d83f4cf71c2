"""Prompt following of the tiny model (issues 3 and 15) as sections of BENCHMARKS.md.

    python -m benchmarks.bench_tiny_eval [--seeds 2] [--steps N] [--combos N] [--json PATH]
        [--out PATH] [--no-write]

Runs the evaluation of `reelforge model eval` (``models.tiny_eval.evaluate``: the training
and held-out splits in en/zh/ja/ko, colour, shape and direction checked by
``models/detector.py``) and writes their sections; unlike `reelforge model eval` it leaves
the model card alone. ``--combos N`` keeps only the first N combinations of each split
(smoke runs).
Goal (issue 15): held-out colour and direction >= 95%, shape >= 90%.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--combos", type=int, default=None, help="only the first N combinations")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to edit")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import torch

    from models.tiny_eval import SPLITS, evaluate, markdown
    from reelforge.core.reports import DEFAULT_PATH, write_section

    torch.set_num_threads(args.threads)
    res = evaluate(
        seeds=tuple(range(args.seeds)),
        steps=args.steps,
        checkpoint_dir=args.model_dir,
        combos=args.combos,
    )
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    for split in res["splits"]:
        md = markdown(res, split)
        if args.combos:
            md += (
                f"\nSmoke run: only the first {args.combos} of {len(SPLITS[split].combos)} "
                "combinations (`--combos`).\n"
            )
        print(md)
        if not args.no_write:
            write_section(SPLITS[split].section, md, path=args.out or DEFAULT_PATH)


if __name__ == "__main__":
    main()
