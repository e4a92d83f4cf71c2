"""Brand styles: is this LoRA file one the model can apply? Checked before a tenant registers it.

A style is a LoRA in diffusers' format (``transformer.<module>.lora_A.weight`` and
``...lora_B.weight`` per adapted linear layer, as ``WanPipeline.save_lora_weights`` and
``models/train_style_lora.py`` write it), applied to *both* experts at generation time
(``models.loras``). The check reads only the file's header and the checkpoint's expert
configs: the experts are built on the meta device, so checking a style against the 14B
model costs no memory and no weights are read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from reelforge.core.errors import InvalidInput

MAX_RANK = 256
MAX_BYTES = 2 * 1024**3
_KEY = re.compile(r"^transformer\.(?P<module>.+)\.lora_(?P<side>[AB])\.weight$")


@dataclass(frozen=True)
class StyleCheck:
    """What the check found: the adapted layers and the rank."""

    modules: int
    rank: int


def _expert_linears(checkpoint: Path, expert: str) -> dict[str, tuple[int, int]]:
    """Linear layer name -> (in_features, out_features) of one expert, built on meta."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    config = json.loads((checkpoint / expert / "config.json").read_text())
    with init_empty_weights():
        model = WanTransformer3DModel.from_config(config)
    return {
        name: (m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear)
    }


def check_style_lora(path: Path, checkpoint: Path) -> StyleCheck:
    """Refuse, in one line, a file that is not a LoRA both experts of ``checkpoint`` can
    take: not safetensors, keys that are not LoRA weights, a layer an expert lacks, shapes
    that do not fit the layer, or a rank past ``MAX_RANK``."""
    from safetensors import SafetensorError, safe_open

    name = path.name
    if not path.is_file():
        raise InvalidInput(f"style file {path} does not exist")
    if path.stat().st_size > MAX_BYTES:
        raise InvalidInput(f"style {name} is over {MAX_BYTES // 1024**3} GB: not a style LoRA")
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (SafetensorError, OSError, ValueError) as e:
        raise InvalidInput(
            f"style {name} is not a safetensors file ({' '.join(str(e).split())[:120]}); "
            "save the LoRA with safetensors"
        ) from None
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        m = _KEY.match(key)
        if m is None:
            raise InvalidInput(
                f"style {name}: {key!r} is not a LoRA weight in diffusers' format "
                "(transformer.<layer>.lora_A.weight / lora_B.weight)"
            )
        pairs.setdefault(m["module"], {})[m["side"]] = shape
    if not pairs:
        raise InvalidInput(f"style {name} holds no LoRA weights")
    experts = [_expert_linears(checkpoint, e) for e in ("transformer", "transformer_2")]
    ranks = set()
    for module, sides in sorted(pairs.items()):
        if set(sides) != {"A", "B"}:
            raise InvalidInput(f"style {name}: layer {module} has lora_A or lora_B, not both")
        a, b = sides["A"], sides["B"]
        for linears, expert in zip(experts, ("transformer", "transformer_2"), strict=True):
            if module not in linears:
                raise InvalidInput(
                    f"style {name} adapts {module}, which the model's {expert} does not have: "
                    "it was made for another model"
                )
            fan_in, fan_out = linears[module]
            if len(a) != 2 or len(b) != 2 or a[1] != fan_in or b[0] != fan_out or a[0] != b[1]:
                raise InvalidInput(
                    f"style {name}: layer {module} has shapes {a} and {b}, which do not fit "
                    f"its {fan_in} -> {fan_out} weights: it was made for another model"
                )
        ranks.add(a[0])
    rank = max(ranks)
    if rank > MAX_RANK:
        raise InvalidInput(f"style {name} has rank {rank}; a style needs at most {MAX_RANK}")
    return StyleCheck(modules=len(pairs), rank=rank)
