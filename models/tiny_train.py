"""Seeded, reproducible training of the tiny two-expert Wan-style model (CPU, from scratch).

Stages (each resumable from ``work_dir``):
  1. ``vae``     a small AutoencoderKLWan (8x spatial, 4x temporal, 16 latent channels) whose
                 decoder learns to invert a fixed latent space (``target_latents``);
  2. ``vaeenc``  its encoder fitted to the same latent space;
  3. ``encode``  a fixed synthetic dataset as latents, with per-channel mean/std;
  4. ``text``    a small UMT5 text encoder (ByT5 byte tokenizer) pretrained to name a
                 caption's colour, shape and direction in four languages;
  5. ``dit``     both experts (high noise: t >= boundary, low noise: t < boundary) on the
                 frozen text encoder, flow matching, EMA;
  6. ``export``  ``WanPipeline.save_pretrained`` into the shipped model directory.

Run: ``reelforge model train`` (or ``python -m models.tiny_train``).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from models import tiny_data as data

SIZE = (64, 64)
FRAMES = 17
FPS = 8
MAX_SEQ_LEN = 128
BOUNDARY_RATIO = 0.875
FLOW_SHIFT = 3.0
STAGES = ("vae", "vaeenc", "encode", "text", "dit", "export")

VAE_CONFIG = dict(
    base_dim=12,
    z_dim=16,
    dim_mult=[1, 2, 2, 4],
    num_res_blocks=1,
    attn_scales=[],
    temperal_downsample=[False, True, True],
    dropout=0.0,
)
DIT_CONFIG = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=16,
    out_channels=16,
    text_dim=128,
    freq_dim=64,
    ffn_dim=384,
    num_layers=4,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=256,
)
TEXT_CONFIG = dict(
    vocab_size=384,
    d_model=128,
    d_kv=32,
    d_ff=256,
    num_layers=3,
    num_heads=4,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.0,
    feed_forward_proj="gated-gelu",
    is_encoder_decoder=False,
    use_cache=False,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)


def _log(msg: str, log: Callable[[str], None] | None) -> None:
    (log or print)(msg)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _optimise(opt, loss: torch.Tensor, params, clip: float | None = 1.0) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()


def _to_tensor(clips: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float()
    return x / 127.5 - 1.0


def _object_weight(x: torch.Tensor) -> torch.Tensor:
    bg = torch.tensor(data.BACKGROUND, dtype=x.dtype).view(1, 3, 1, 1, 1) / 127.5 - 1
    obj = ((x - bg).abs().amax(dim=1, keepdim=True) > 0.1).float()
    return 1.0 + 8.0 * obj


def make_vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(**VAE_CONFIG, latents_mean=[0.0] * 16, latents_std=[1.0] * 16)


def make_text_encoder():
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(UMT5Config(**TEXT_CONFIG))


def make_transformer():
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(**DIT_CONFIG)


def make_scheduler():
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        num_train_timesteps=1000,
        flow_shift=FLOW_SHIFT,
    )


# ---------------------------------------------------------------------------- stage 1
def decode_unclamped(vae, z: torch.Tensor) -> torch.Tensor:
    """``AutoencoderKLWan._decode`` without its final clamp to [-1, 1].

    The clamp zeroes gradients wherever the output saturates; trained through it, the
    decoder froze saturated colours at the orange/yellow corner and never learned colour.
    """
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    outs = []
    for i in range(z.shape[2]):
        vae._conv_idx = [0]
        outs.append(
            vae.decoder(
                x[:, :, i : i + 1],
                feat_cache=vae._feat_map,
                feat_idx=vae._conv_idx,
                first_chunk=(i == 0),
            )
        )
    vae.clear_cache()
    return torch.cat(outs, 2)


def target_latents(x: torch.Tensor) -> torch.Tensor:
    """The tiny model's latent space: (B, 3, 4n+1, H, W) in [-1, 1] -> (B, 16, n+1, H/8, W/8).

    Per 8x8 cell and per frame: how much of the cell the object covers, and the object's
    mean colour there (zero where there is none). A latent frame packs the 4 frames of its
    causal chunk (the first latent frame holds frame 0 four times, as Wan's causal VAE
    treats the first frame alone). Why a fixed latent space: one learned jointly from
    scratch did not carry colour through the decoder within the CPU budget (hundreds of
    steps of mean colour only), and one of plain cell means left the decoder to divide the
    object's colour out of the background's (red, orange and yellow came out alike). Here
    colour and position are in the latent, linearly, and the decoder only learns to draw.
    """
    bg = torch.tensor(data.BACKGROUND, dtype=x.dtype).view(1, 3, 1, 1, 1) / 127.5 - 1
    mask = ((x - bg).abs().amax(1, keepdim=True) / 0.5).clamp(max=1.0)
    cover = torch.nn.functional.avg_pool3d(mask, (1, 8, 8))
    colour = torch.nn.functional.avg_pool3d(x * mask, (1, 8, 8)) / cover.clamp(min=1e-3)
    cells = torch.cat([cover, colour * (cover > 1e-3)], 1)
    b, c, t, h, w = cells.shape
    first = cells[:, :, :1].repeat(1, 4, 1, 1, 1)
    n = (t - 1) // 4
    rest = cells[:, :, 1:].reshape(b, c, n, 4, h, w).permute(0, 3, 1, 2, 4, 5)
    return torch.cat([first, rest.reshape(b, 4 * c, n, h, w)], 2)


def train_vae_decoder(work: Path, seed: int, steps: int, batch: int, log=None) -> None:
    """The VAE decoder (and post-quant conv) learns to invert ``target_latents`` -> vae.pt.

    Clips of 5 and 9 frames cover every causal chunk the pipeline decodes (the first frame
    alone, then chunks of 4 that read the cache of the chunk before), with a 17-frame clip
    every few steps. Object pixels weigh 9x, since the background is most of every frame.
    """
    out = work / "vae.pt"
    if out.exists():
        _log(f"vae decoder: reuse {out}", log)
        return
    _seed_all(seed)
    vae = make_vae()
    params = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    rng = random.Random(seed + 1)
    t0 = time.time()
    for step in range(steps):
        warm = min(1.0, (step + 1) / 10)
        lr = 2e-3 * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        frames = FRAMES if step % 6 == 5 else (5, 9)[step % 2]
        clips = [
            data.render(data.sample_spec(rng, rng.choice(data.TRAIN_COMBOS)), frames=frames)
            for _ in range(batch)
        ]
        x = _to_tensor(clips)
        rec = decode_unclamped(vae, target_latents(x))
        loss = (_object_weight(x) * ((rec - x).abs() + (rec - x) ** 2)).mean()
        _optimise(opt, loss, params)
        if step % 25 == 0 or step == steps - 1:
            _log(
                f"vae decoder step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                log,
            )
    _log(f"vae decoder: held-out reconstructions {reconstruction_check(vae)}", log)
    torch.save(vae.state_dict(), out)


@torch.no_grad()
def reconstruction_check(vae) -> dict[str, float]:
    """Detector accuracy on decoded ``target_latents`` of the held-out combinations: the
    ceiling of what the experts can reach through this decoder."""
    from models.detector import detect

    rng = random.Random(99)
    hits = {"colour": 0, "direction": 0}
    for colour, shape, direction in data.HELD_OUT:
        x = _to_tensor([data.render(data.sample_spec(rng, (colour, shape, direction)))])
        rec = vae.decode(target_latents(x)).sample[0].permute(1, 2, 3, 0)
        found = detect(((rec + 1) * 127.5).round().clamp(0, 255).byte().numpy())
        hits["colour"] += found.colour == colour
        hits["direction"] += found.direction == direction
    return {k: round(v / len(data.HELD_OUT), 3) for k, v in hits.items()}


def fit_vae_encoder(work: Path, seed: int, steps: int, batch: int, log=None) -> None:
    """The VAE encoder (and quant conv) regresses ``target_latents``, with a near-zero
    posterior variance, so ``vae.encode`` agrees with the latent space the decoder reads.

    Trained on 32x32 windows on the 8-pixel grid (conv3d backward is slow on CPU), whose
    target latents are exactly the matching window of the full clip's."""
    marker = work / "vae_encoder.done"
    if marker.exists():
        _log("vae encoder: already fitted", log)
        return
    _seed_all(seed + 2)
    vae = make_vae()
    vae.load_state_dict(torch.load(work / "vae.pt"))
    params = [*vae.encoder.parameters(), *vae.quant_conv.parameters()]
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    rng = random.Random(seed + 3)
    t0 = time.time()
    for step in range(steps):
        lr = 2e-3 * min(1.0, (step + 1) / 10) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr
        clips = [
            data.render(
                data.sample_spec(rng, rng.choice(data.TRAIN_COMBOS)), frames=(5, 9)[step % 2]
            )
            for _ in range(batch)
        ]
        x = _to_tensor(clips)
        top, left = 8 * rng.randrange(5), 8 * rng.randrange(5)
        x = x[..., top : top + 32, left : left + 32]
        post = vae.encode(x).latent_dist
        loss = (post.mean - target_latents(x)).pow(2).mean() + 1e-3 * (post.logvar + 10).pow(
            2
        ).mean()
        _optimise(opt, loss, params)
        if step % 25 == 0 or step == steps - 1:
            _log(
                f"vae encoder step {step}/{steps} loss {loss.item():.5f} {time.time() - t0:.0f}s",
                log,
            )
    tmp = work / "vae.pt.tmp"
    torch.save(vae.state_dict(), tmp)
    os.replace(tmp, work / "vae.pt")
    marker.write_text("ok\n")


# ---------------------------------------------------------------------------- stage 2
@torch.no_grad()
def encode_dataset(work: Path, seed: int, n: int, log=None) -> None:
    """The experts' training set: ``n`` clips as latents, with per-channel mean and std."""
    out = work / "latents.pt"
    if out.exists():
        _log(f"encode: reuse {out}", log)
        return
    rng = random.Random(seed + 2)
    specs = [data.sample_spec(rng, data.TRAIN_COMBOS[i % len(data.TRAIN_COMBOS)]) for i in range(n)]
    z = torch.cat(
        [
            target_latents(_to_tensor([data.render(s, frames=FRAMES) for s in specs[i : i + 32]]))
            for i in range(0, n, 32)
        ]
    )
    mean = z.mean(dim=(0, 2, 3, 4))
    std = z.std(dim=(0, 2, 3, 4))
    combos = [(s.colour, s.shape, s.direction) for s in specs]
    torch.save({"z": z, "mean": mean, "std": std, "combos": combos}, out)


# ---------------------------------------------------------------------------- stage 3
def _build_pipeline(vae, text_encoder, t_hi, t_lo):
    from diffusers import WanPipeline
    from transformers import ByT5Tokenizer

    return WanPipeline(
        tokenizer=ByT5Tokenizer(),
        text_encoder=text_encoder,
        vae=vae,
        scheduler=make_scheduler(),
        transformer=t_hi,
        transformer_2=t_lo,
        boundary_ratio=BOUNDARY_RATIO,
    )


def encode_text(tokenizer, text_encoder, captions: list[str]) -> torch.Tensor:
    """Same result as ``WanPipeline._get_t5_prompt_embeds`` (padding to MAX_SEQ_LEN with
    zeros after each caption's tokens), but the encoder only runs on the longest caption."""
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    ti = tokenizer(
        [prompt_clean(c) for c in captions],
        padding="longest",
        max_length=MAX_SEQ_LEN,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    h = text_encoder(ti.input_ids, ti.attention_mask).last_hidden_state
    mask = ti.attention_mask.unsqueeze(-1).to(h.dtype)
    h = h * mask
    return torch.nn.functional.pad(h, (0, 0, 0, MAX_SEQ_LEN - h.shape[1]))


ATTRIBUTES = {"colour": tuple(data.COLOURS), "shape": data.SHAPES, "direction": data.DIRECTIONS}
# Direction is the attribute held-out combinations get wrong (opposite directions share
# every word), so the pretext weighs it most.
ATTRIBUTE_WEIGHTS = {"colour": 1.0, "shape": 1.0, "direction": 3.0}
# Share of captions reduced to their direction phrase (text pretext and experts alike).
PARTIAL_CAPTIONS = 0.2


def train_text_encoder(work: Path, seed: int, steps: int, batch: int, log=None) -> None:
    """Pretrain the UMT5 encoder to name a caption's colour, shape and direction -> text.pt.

    Wan's experts learn on top of a pretrained UMT5; with no hub to bring one from, this
    short supervised pretext task gives ours the same head start: its token states already
    tell the attributes apart in all four languages, so the experts only learn to draw
    them (and train faster with the encoder frozen). Captions of held-out combinations are
    never shown, as in every other stage.
    """
    from transformers import ByT5Tokenizer

    out = work / "text.pt"
    if out.exists():
        _log(f"text: reuse {out}", log)
        return
    _seed_all(seed + 11)
    te = make_text_encoder()
    tokenizer = ByT5Tokenizer()
    heads = torch.nn.ModuleDict(
        {a: torch.nn.Linear(TEXT_CONFIG["d_model"], len(v)) for a, v in ATTRIBUTES.items()}
    )
    params = [*te.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    rng = random.Random(seed + 12)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = 1e-3 * min(1.0, (step + 1) / 20)
        combos = [rng.choice(data.TRAIN_COMBOS) for _ in range(batch)]
        partial = [rng.random() < PARTIAL_CAPTIONS for _ in combos]
        caps = [
            data.direction_phrase(c[2], lang, rng) if p else data.caption(*c, lang, rng)
            for c, p in zip(combos, partial, strict=True)
            for lang in [rng.choice(data.LANGUAGES)]
        ]
        emb = encode_text(tokenizer, te, caps)
        mask = (emb.abs().sum(-1, keepdim=True) > 0).to(emb.dtype)
        pooled = (emb * mask).sum(1) / mask.sum(1).clamp(min=1)
        named = torch.tensor([not p for p in partial], dtype=pooled.dtype)
        loss = sum(
            ATTRIBUTE_WEIGHTS[a]
            * (
                torch.nn.functional.cross_entropy(
                    heads[a](pooled),
                    torch.tensor([v.index(c[i]) for c in combos]),
                    reduction="none",
                )
                * (1.0 if a == "direction" else named)
            ).mean()
            for i, (a, v) in enumerate(ATTRIBUTES.items())
        )
        _optimise(opt, loss, params, clip=None)
        if step % 50 == 0 or step == steps - 1:
            _log(f"text step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s", log)
    _log(f"text: held-out caption accuracy {caption_check(te, heads, tokenizer)}", log)
    torch.save(te.state_dict(), out)


@torch.no_grad()
def caption_check(te, heads, tokenizer) -> dict[str, float]:
    """Pretext accuracy on every caption variant of the held-out combinations, and the
    direction accuracy on the captions the evaluation uses (each word's first variant,
    "from left to right": the hard case, since opposite directions share every word)."""

    def accuracy(caps: list[str], combos: list[tuple[str, str, str]], attr: str) -> float:
        emb = encode_text(tokenizer, te, caps)
        mask = (emb.abs().sum(-1, keepdim=True) > 0).to(emb.dtype)
        pooled = (emb * mask).sum(1) / mask.sum(1).clamp(min=1)
        i, names = list(ATTRIBUTES).index(attr), ATTRIBUTES[attr]
        found = heads[attr](pooled).argmax(1)
        hits = sum(names[int(k)] == c[i] for k, c in zip(found, combos, strict=True))
        return round(hits / len(combos), 3)

    caps, combos = [], []
    for combo in data.HELD_OUT:
        for lang in data.LANGUAGES:
            rng = random.Random(f"{combo}{lang}")
            for _ in range(6):
                caps.append(data.caption(*combo, lang, rng))
                combos.append(combo)
    result = {a: accuracy(caps, combos, a) for a in ATTRIBUTES}
    for lang in data.LANGUAGES:
        first = [data.caption(*c, lang) for c in data.HELD_OUT]
        result[f"direction_eval_{lang}"] = accuracy(first, list(data.HELD_OUT), "direction")
    return result


def _shift(u: torch.Tensor) -> torch.Tensor:
    return FLOW_SHIFT * u / (1 + (FLOW_SHIFT - 1) * u)


def train_dit(work: Path, seed: int, steps: int, batch: int, log=None) -> None:
    """Both experts on the frozen text encoder: flow matching, each expert on its own side
    of the boundary, 10% empty captions for classifier-free guidance, 20% direction-only
    captions (``PARTIAL_CAPTIONS``), EMA -> dit.pt."""
    out = work / "dit.pt"
    if out.exists():
        _log(f"dit: reuse {out}", log)
        return
    _seed_all(seed + 3)
    lat = torch.load(work / "latents.pt")
    z = (lat["z"] - lat["mean"].view(1, -1, 1, 1, 1)) / lat["std"].view(1, -1, 1, 1, 1)
    combos = lat["combos"]
    te, t_hi, t_lo = make_text_encoder(), make_transformer(), make_transformer()
    te.load_state_dict(torch.load(work / "text.pt"))
    te.requires_grad_(False)
    pipe = _build_pipeline(None, te, t_hi, t_lo)
    params = [*t_hi.parameters(), *t_lo.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, betas=(0.9, 0.99))
    ema = [p.detach().clone() for p in params]
    rng = random.Random(seed + 4)
    # u (unshifted) threshold where the shifted sigma crosses the boundary
    u_b = BOUNDARY_RATIO / (FLOW_SHIFT - (FLOW_SHIFT - 1) * BOUNDARY_RATIO)
    half = batch // 2
    t0 = time.time()
    warm = 100
    for step in range(steps):
        lr = (
            1e-3
            * min(1.0, (step + 1) / warm)
            * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        idx = [rng.randrange(len(combos)) for _ in range(batch)]
        caps = []
        for i in idx:
            draw, lang = rng.random(), rng.choice(data.LANGUAGES)
            if draw < 0.1:
                caps.append("")
            elif draw < 0.1 + PARTIAL_CAPTIONS:
                caps.append(data.direction_phrase(combos[i][2], lang, rng))
            else:
                caps.append(data.caption(*combos[i], lang, rng))
        x0 = z[idx]
        with torch.no_grad():
            emb = encode_text(pipe.tokenizer, te, caps)
        u = torch.rand(batch)
        u = torch.cat([u_b + (1 - u_b) * u[:half], u_b * u[half:]])
        sigma = _shift(u)
        noise = torch.randn_like(x0)
        s = sigma.view(-1, 1, 1, 1, 1)
        xt = (1 - s) * x0 + s * noise
        target = noise - x0
        ts = sigma * 1000
        # float32 on purpose: bf16 autocast ran ~10x slower on CPUs without bf16 units
        p_hi = t_hi(
            hidden_states=xt[:half],
            timestep=ts[:half],
            encoder_hidden_states=emb[:half],
            return_dict=False,
        )[0]
        p_lo = t_lo(
            hidden_states=xt[half:],
            timestep=ts[half:],
            encoder_hidden_states=emb[half:],
            return_dict=False,
        )[0]
        loss_hi = ((p_hi - target[:half]) ** 2).mean()
        loss_lo = ((p_lo - target[half:]) ** 2).mean()
        loss = loss_hi + loss_lo
        _optimise(opt, loss, params)
        decay = min(0.998, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, params, strict=True):
                e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        if step % 50 == 0 or step == steps - 1:
            _log(
                f"dit step {step}/{steps} hi {loss_hi.item():.4f} lo {loss_lo.item():.4f} "
                f"{time.time() - t0:.0f}s",
                log,
            )
        if step and step % 250 == 0:
            _save_dit(work / "dit_partial.pt", te, t_hi, t_lo, ema, params)
    _save_dit(out, te, t_hi, t_lo, ema, params)


def _save_dit(path, te, t_hi, t_lo, ema, params) -> None:
    with torch.no_grad():
        backup = [p.detach().clone() for p in params]
        for p, e in zip(params, ema, strict=True):
            p.copy_(e)
        torch.save({"te": te.state_dict(), "hi": t_hi.state_dict(), "lo": t_lo.state_dict()}, path)
        for p, b in zip(params, backup, strict=True):
            p.copy_(b)


# ---------------------------------------------------------------------------- stage 4
def export(work: Path, out_dir: Path, dit_file: str = "dit.pt", log=None) -> Path:
    from diffusers import AutoencoderKLWan

    lat = torch.load(work / "latents.pt")
    vae = make_vae()
    vae.load_state_dict(torch.load(work / "vae.pt"))
    cfg = dict(vae.config)
    cfg["latents_mean"] = [round(float(v), 6) for v in lat["mean"]]
    cfg["latents_std"] = [round(float(v), 6) for v in lat["std"]]
    vae2 = AutoencoderKLWan.from_config(cfg)
    vae2.load_state_dict(vae.state_dict())
    st = torch.load(work / dit_file)
    te, t_hi, t_lo = make_text_encoder(), make_transformer(), make_transformer()
    te.load_state_dict(st["te"])
    t_hi.load_state_dict(st["hi"])
    t_lo.load_state_dict(st["lo"])
    pipe = _build_pipeline(vae2, te, t_hi, t_lo)
    out_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out_dir, safe_serialization=True)
    info = {
        "model_id": "reelforge/tiny-wan-moe",
        "size": list(SIZE),
        "frames": FRAMES,
        "fps": FPS,
        "max_sequence_length": MAX_SEQ_LEN,
        "held_out": [list(c) for c in data.HELD_OUT],
    }
    (out_dir / "reelforge.json").write_text(json.dumps(info, indent=2) + "\n")
    total = sum(p.stat().st_size for p in out_dir.rglob("*.safetensors"))
    _log(f"exported to {out_dir} ({total / 1e6:.1f} MB of safetensors)", log)
    return out_dir


def train(
    out_dir: Path,
    work_dir: Path,
    seed: int = 0,
    vae_steps: int = 650,
    dataset_size: int = 960,
    dit_steps: int = 4000,
    dit_batch: int = 32,
    text_steps: int = 1000,
    vae_encoder_steps: int = 150,
    threads: int = 2,
    stages: tuple[str, ...] = STAGES,
    log=None,
) -> dict:
    torch.set_num_threads(threads)
    work_dir.mkdir(parents=True, exist_ok=True)
    runs = {
        "vae": lambda: train_vae_decoder(work_dir, seed, vae_steps, 8, log),
        "vaeenc": lambda: fit_vae_encoder(work_dir, seed, vae_encoder_steps, 8, log),
        "encode": lambda: encode_dataset(work_dir, seed, dataset_size, log),
        "text": lambda: train_text_encoder(work_dir, seed, text_steps, 64, log),
        "dit": lambda: train_dit(work_dir, seed, dit_steps, dit_batch, log),
        "export": lambda: export(work_dir, out_dir, log=log),
    }
    times = {}
    t0 = time.time()
    cpu0 = time.process_time()
    for stage in stages:
        t1 = time.time()
        runs[stage]()
        times[f"{stage}_s"] = round(time.time() - t1, 1)
    times["total_s"] = round(time.time() - t0, 1)
    times["cpu_s"] = round(time.process_time() - cpu0, 1)
    (work_dir / f"times-{'-'.join(stages)}.json").write_text(json.dumps(times))
    _log(f"training times: {times}", log)
    return times


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "tiny")
    ap.add_argument("--work", type=Path, default=Path(".reelforge/train-tiny"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default=",".join(STAGES))
    a = ap.parse_args()
    train(a.out, a.work, a.seed, stages=tuple(a.stages.split(",")))
