"""Train the small model's example brand style: ``ocean``, a LoRA that paints every object in
the brand's blue, whatever colour the prompt names (shape, motion and background unchanged).

Seeded and short (6 CPU-minutes, measured once): clips of the training combinations are
rendered with the object recoloured blue, mapped to the tiny model's latent space, and a
rank-4 LoRA (attention, feed-forward and output projections) is trained by flow matching
with the prompt's *original* caption, so the adapter learns "any colour -> blue". One set
of LoRA weights serves both experts (the file is loaded into each, as a style is), so the
two experts' adapters are tied during training: each expert is trained on its own side of
the boundary with the same weights.

    python -m models.train_style_lora            # writes models/tiny_styles/ocean.safetensors
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from pathlib import Path

import torch

from models import tiny_data as data
from models.tiny_train import (
    BOUNDARY_RATIO,
    FLOW_SHIFT,
    _optimise,
    _seed_all,
    _shift,
    _to_tensor,
    encode_text,
    target_latents,
)
from reelforge.core.checkpoints import TINY_DIR

STYLES_DIR = Path(__file__).resolve().parent / "tiny_styles"
STYLE_RGB = (40, 90, 220)  # the brand's blue: data.COLOURS' blue is (30, 90, 230)
# The last two blocks and the output projection: colour is decided late, and the backward
# pass stops there (training costs a third of adapting every block).
TARGET_MODULES = (
    r"blocks\.[23]\.(attn1|attn2)\.(to_q|to_k|to_v|to_out\.0)|blocks\.[23]\.ffn\.net\.(0\.proj|2)"
    r"|proj_out"
)
RANK = 4


def _tie_adapters(source, target) -> None:
    """``target``'s LoRA layers use ``source``'s parameters: one style for both experts."""
    for name, module in target.named_modules():
        if name.endswith(("lora_A.default", "lora_B.default")):
            module.weight = source.get_submodule(name).weight


def _styled_latents(n: int, rng: random.Random, mean: torch.Tensor, std: torch.Tensor):
    """``n`` (caption combo, normalised latent of the blue-object clip) pairs."""
    combos, clips = [], []
    for _ in range(n):
        combo = rng.choice(data.TRAIN_COMBOS)
        spec = dataclasses.replace(data.sample_spec(rng, combo), rgb=STYLE_RGB)
        combos.append(combo)
        clips.append(data.render(spec))
    z = target_latents(_to_tensor(clips))
    return combos, (z - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)


def train(out: Path, *, seed: int = 0, steps: int = 150, batch: int = 8, clips: int = 192) -> Path:
    from diffusers import WanPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    _seed_all(seed)
    torch.set_num_threads(2)
    pipe = WanPipeline.from_pretrained(str(TINY_DIR), dtype=torch.float32)
    t_hi, t_lo = pipe.transformer, pipe.transformer_2
    for model in (pipe.text_encoder, pipe.vae, t_hi, t_lo):
        model.requires_grad_(False)
    config = LoraConfig(r=RANK, lora_alpha=RANK, target_modules=TARGET_MODULES)
    t_hi.add_adapter(config)
    t_lo.add_adapter(config)
    _tie_adapters(t_hi, t_lo)
    params = [p for p in t_hi.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-3, weight_decay=0.0)
    rng = random.Random(seed)
    vae_cfg = pipe.vae.config
    mean, std = torch.tensor(vae_cfg.latents_mean), torch.tensor(vae_cfg.latents_std)
    combos, z = _styled_latents(clips, rng, mean, std)
    with torch.no_grad():
        caps = [data.caption(*c, rng.choice(data.LANGUAGES), rng) for c in combos]
        emb = torch.cat([encode_text(pipe.tokenizer, pipe.text_encoder, [c]) for c in caps])
    u_b = BOUNDARY_RATIO / (FLOW_SHIFT - (FLOW_SHIFT - 1) * BOUNDARY_RATIO)  # u at the boundary
    half, t0 = batch // 2, time.time()
    for step in range(steps):
        idx = [rng.randrange(clips) for _ in range(batch)]
        x0 = z[idx]
        u = torch.rand(batch)
        sigma = _shift(torch.cat([u_b + (1 - u_b) * u[:half], u_b * u[half:]]))
        noise = torch.randn_like(x0)
        s = sigma.view(-1, 1, 1, 1, 1)
        xt, target, ts = (1 - s) * x0 + s * noise, noise - x0, sigma * 1000
        loss = 0.0
        for expert, part in ((t_hi, slice(0, half)), (t_lo, slice(half, batch))):
            pred = expert(
                hidden_states=xt[part],
                timestep=ts[part],
                encoder_hidden_states=emb[idx][part],
                return_dict=False,
            )[0]
            loss = loss + ((pred - target[part]) ** 2).mean()
        _optimise(opt, loss, params)
        if step % 50 == 0 or step == steps - 1:
            print(f"style step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s")
    out.parent.mkdir(parents=True, exist_ok=True)
    WanPipeline.save_lora_weights(
        out.parent,
        transformer_lora_layers=get_peft_model_state_dict(t_hi),
        weight_name=out.name,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STYLES_DIR / "ocean.safetensors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    print(train(args.out, seed=args.seed, steps=args.steps))


if __name__ == "__main__":
    main()
