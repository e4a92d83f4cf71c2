"""Held-out prompt following of the tiny model (issue 3) as a section of BENCHMARKS.md.

    python -m benchmarks.bench_tiny_eval [--seeds 2] [--steps N] [--combos N] [--json PATH]
        [--out PATH] [--no-write]

Runs the evaluation of `reelforge model eval` (``models.tiny_eval.evaluate``: every held-out
colour-shape-direction combination in en/zh/ja/ko, checked by ``models/detector.py``) and
writes the ``tiny-model-eval`` section; unlike `reelforge model eval` it leaves the model
card alone. ``--combos N`` keeps only the first N held-out combinations (smoke runs).
Goal (issue 3): colour >= 90%, direction >= 85%.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SECTION = "tiny-model-eval"


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

    from models import tiny_data
    from models.tiny_eval import evaluate, markdown

    torch.set_num_threads(args.threads)
    combos = tiny_data.HELD_OUT[: args.combos] if args.combos else tiny_data.HELD_OUT
    res = evaluate(
        combos=combos,
        seeds=tuple(range(args.seeds)),
        steps=args.steps,
        checkpoint_dir=args.model_dir,
    )
    md = markdown(res)
    if args.combos:
        md += (
            f"\nSmoke run: only the first {len(combos)} of {len(tiny_data.HELD_OUT)} held-out "
            "combinations (`--combos`).\n"
        )
    print(md)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, ensure_ascii=False))
    if not args.no_write:
        from reelforge.core.reports import DEFAULT_PATH, write_section

        write_section(SECTION, md, path=args.out or DEFAULT_PATH)


if __name__ == "__main__":
    main()
