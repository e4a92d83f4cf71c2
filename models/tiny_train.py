"""Seeded, reproducible training of the tiny two-expert Wan-style model (CPU, from scratch).

Stages (each resumable from ``work_dir``):
  1. ``vae``    a small AutoencoderKLWan (8x spatial, 4x temporal, 16 latent channels);
  2. ``encode`` encode a fixed synthetic dataset to latents, record per-channel mean/std;
  3. ``dit``    both experts (high noise: t >= boundary, low noise: t < boundary) jointly
                with a small UMT5 text encoder (ByT5 byte tokenizer), flow matching, EMA;
  4. ``export`` ``WanPipeline.save_pretrained`` into the shipped model directory.

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


def _to_tensor(clips: list[np.ndarray]) -> torch.Tensor:
    x = torch.from_numpy(np.stack(clips)).permute(0, 4, 1, 2, 3).float()
    return x / 127.5 - 1.0


def _object_weight(x: torch.Tensor) -> torch.Tensor:
    bg = torch.tensor(data.BACKGROUND, dtype=x.dtype).view(1, 3, 1, 1, 1) / 127.5 - 1
    obj = ((x - bg).abs().amax(dim=1, keepdim=True) > 0.1).float()
    return 1.0 + 4.0 * obj


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
def train_vae(work: Path, seed: int, steps: int, batch: int, log=None) -> None:
    """Phase 1: short (5/9-frame) clips from scratch -> vae_phase1.pt."""
    out = work / "vae_phase1.pt"
    if out.exists():
        _log(f"vae: reuse {out}", log)
        return
    _seed_all(seed)
    vae = make_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    rng = random.Random(seed + 1)
    t0 = time.time()
    for step in range(steps):
        lr = 2e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        frames = 5 if step % 3 else 9
        clips = [
            data.render(data.sample_spec(rng, rng.choice(data.TRAIN_COMBOS)), frames=frames)
            for _ in range(batch)
        ]
        x = _to_tensor(clips)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        w = _object_weight(x)
        loss = (w * ((rec - x).abs() + (rec - x) ** 2)).mean() + 1e-7 * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            _log(f"vae step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s", log)
    torch.save(vae.state_dict(), out)


def refine_vae(
    work: Path, seed: int, steps: int, batch: int, log=None, stop_at: int | None = None
) -> None:
    """Phase 2: continue on 9- and 17-frame clips (every causal chunk the pipeline decodes).

    ``steps`` sets the learning-rate schedule; ``stop_at`` ends early after that update
    (the shipped model used stop_at=150 of a 200-step schedule to fit the time budget)."""
    out = work / "vae.pt"
    if out.exists():
        _log(f"vae refine: reuse {out}", log)
        return
    _seed_all(seed + 5)
    vae = make_vae()
    vae.load_state_dict(torch.load(work / "vae_phase1.pt"))
    opt = torch.optim.AdamW(vae.parameters(), lr=1.5e-3, weight_decay=0.0)
    rng = random.Random(seed + 6)
    t0 = time.time()
    for step in range(steps):
        warm = min(1.0, (step + 1) / 20)
        lr = 1.5e-3 * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        frames = 9 if step % 3 == 0 else FRAMES
        clips = [
            data.render(data.sample_spec(rng, rng.choice(data.TRAIN_COMBOS)), frames=frames)
            for _ in range(batch)
        ]
        x = _to_tensor(clips)
        post = vae.encode(x).latent_dist
        # near-deterministic latents: sampling noise at unit std (the KL prior) starves the
        # latent of bandwidth and colour is the first thing lost; the experts train on means
        z = post.mean + 0.05 * torch.randn_like(post.mean)
        rec = vae.decode(z).sample
        w = 1.0 + 2.0 * (_object_weight(x) - 1.0)  # object pixels weigh 9x
        loss = (w * ((rec - x).abs() + (rec - x) ** 2)).mean() + 1e-4 * post.mean.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            _log(
                f"vae refine step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                log,
            )
        if step and step % 50 == 0:
            torch.save(vae.state_dict(), work / "vae_partial.pt")
        if stop_at is not None and step >= stop_at:
            break
    torch.save(vae.state_dict(), out)


def refit_vae_head(work: Path, seed: int, steps: int, batch: int, log=None) -> None:
    """Phase 3: refit only the decoder's output head (norm_out + conv_out) on 17-frame clips.

    Cheap (backward through two layers) and it fixes the colour mapping the short VAE
    training leaves washed out. The encoder is untouched, so latents do not change.
    """
    marker = work / "vae_head.done"
    if marker.exists():
        _log("vae head: already refitted", log)
        return
    _seed_all(seed + 7)
    vae = make_vae()
    vae.load_state_dict(torch.load(work / "vae.pt"))
    vae.eval()
    head = [*vae.decoder.norm_out.parameters(), *vae.decoder.conv_out.parameters()]
    for p in vae.parameters():
        p.requires_grad_(False)
    for p in head:
        p.requires_grad_(True)
    opt = torch.optim.Adam(head, lr=3e-3)
    rng = random.Random(seed + 8)
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = 3e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        clips = [
            data.render(data.sample_spec(rng, rng.choice(data.TRAIN_COMBOS)), frames=9)
            for _ in range(batch)
        ]
        x = _to_tensor(clips)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean
        rec = vae.decode(z).sample
        w = 1.0 + 2.0 * (_object_weight(x) - 1.0)
        loss = (w * ((rec - x).abs() + (rec - x) ** 2)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            _log(
                f"vae head step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s", log
            )
    tmp = work / "vae.pt.tmp"
    torch.save(vae.state_dict(), tmp)
    os.replace(tmp, work / "vae.pt")
    marker.write_text("ok\n")


def decode_unclamped(vae, z: torch.Tensor) -> torch.Tensor:
    """``AutoencoderKLWan._decode`` without its final clamp to [-1, 1].

    The clamp zeroes gradients wherever the output saturates, which freezes colours at the
    saturated orange/yellow corner (why phases 1-2 learn position but not colour).
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


def train_vae_decoder(work: Path, seed: int, steps: int, batch: int, log=None) -> None:
    """Phase 4: train the decoder alone (encoder frozen, latents = posterior means) without
    the output clamp. The encoder is untouched, so the experts' latents do not change."""
    marker = work / "vae_decoder.done"
    if marker.exists():
        _log("vae decoder: already trained", log)
        return
    _seed_all(seed + 9)
    vae = make_vae()
    vae.load_state_dict(torch.load(work / "vae.pt"))
    params = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    for p in vae.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    rng = random.Random(seed + 10)
    t0 = time.time()
    for step in range(steps):
        warm = min(1.0, (step + 1) / 10)
        for g in opt.param_groups:
            g["lr"] = 2e-3 * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        frames = FRAMES if step % 3 == 2 else 9
        clips = [
            data.render(data.sample_spec(rng, rng.choice(data.TRAIN_COMBOS)), frames=frames)
            for _ in range(batch)
        ]
        x = _to_tensor(clips)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean
        rec = decode_unclamped(vae, z)
        w = 1.0 + 2.0 * (_object_weight(x) - 1.0)
        loss = (w * ((rec - x).abs() + (rec - x) ** 2)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            _log(
                f"vae decoder step {step}/{steps} loss {loss.item():.4f} {time.time() - t0:.0f}s",
                log,
            )
        if step and step % 25 == 0:
            torch.save(vae.state_dict(), work / "vae_dec_partial.pt")
    tmp = work / "vae.pt.tmp"
    torch.save(vae.state_dict(), tmp)
    os.replace(tmp, work / "vae.pt")
    marker.write_text("ok\n")


# ---------------------------------------------------------------------------- stage 2
@torch.no_grad()
def encode_dataset(work: Path, seed: int, n: int, log=None) -> None:
    out = work / "latents.pt"
    if out.exists():
        _log(f"encode: reuse {out}", log)
        return
    vae = make_vae()
    vae.load_state_dict(torch.load(work / "vae.pt"))
    vae.eval()
    rng = random.Random(seed + 2)
    specs = [data.sample_spec(rng, data.TRAIN_COMBOS[i % len(data.TRAIN_COMBOS)]) for i in range(n)]
    lat = []
    t0 = time.time()
    for i in range(0, n, 16):
        clips = [data.render(s, frames=FRAMES) for s in specs[i : i + 16]]
        lat.append(vae.encode(_to_tensor(clips)).latent_dist.mean)
        if i % 320 == 0:
            _log(f"encode {i}/{n} {time.time() - t0:.0f}s", log)
    z = torch.cat(lat)
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


def _shift(u: torch.Tensor) -> torch.Tensor:
    return FLOW_SHIFT * u / (1 + (FLOW_SHIFT - 1) * u)


def train_dit(work: Path, seed: int, steps: int, batch: int, log=None) -> None:
    out = work / "dit.pt"
    if out.exists():
        _log(f"dit: reuse {out}", log)
        return
    _seed_all(seed + 3)
    lat = torch.load(work / "latents.pt")
    z = (lat["z"] - lat["mean"].view(1, -1, 1, 1, 1)) / lat["std"].view(1, -1, 1, 1, 1)
    combos = lat["combos"]
    te, t_hi, t_lo = make_text_encoder(), make_transformer(), make_transformer()
    pipe = _build_pipeline(None, te, t_hi, t_lo)
    params = [*te.parameters(), *t_hi.parameters(), *t_lo.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, betas=(0.9, 0.99))
    ema = [p.detach().clone() for p in params]
    rng = random.Random(seed + 4)
    # u (unshifted) threshold where the shifted sigma crosses the boundary
    u_b = BOUNDARY_RATIO / (FLOW_SHIFT - (FLOW_SHIFT - 1) * BOUNDARY_RATIO)
    half = batch // 2
    t0 = time.time()
    warm = 150
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
            if rng.random() < 0.1:
                caps.append("")
            else:
                caps.append(data.caption(*combos[i], rng.choice(data.LANGUAGES), rng))
        x0 = z[idx]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            emb = encode_text(pipe.tokenizer, te, caps)
        u = torch.rand(batch)
        u = torch.cat([u_b + (1 - u_b) * u[:half], u_b * u[half:]])
        sigma = _shift(u)
        noise = torch.randn_like(x0)
        s = sigma.view(-1, 1, 1, 1, 1)
        xt = (1 - s) * x0 + s * noise
        target = noise - x0
        ts = sigma * 1000
        with torch.autocast("cpu", dtype=torch.bfloat16):
            p_hi = t_hi(
                hidden_states=xt[:half],
                timestep=ts[:half],
                encoder_hidden_states=emb[:half],
                return_dict=False,
            )[0].float()
            p_lo = t_lo(
                hidden_states=xt[half:],
                timestep=ts[half:],
                encoder_hidden_states=emb[half:],
                return_dict=False,
            )[0].float()
        loss_hi = ((p_hi - target[:half]) ** 2).mean()
        loss_lo = ((p_lo - target[half:]) ** 2).mean()
        loss = loss_hi + loss_lo
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
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
        if step and step % 500 == 0:
            _save_dit(work / "dit_partial.pt", te, t_hi, t_lo, ema, params)
        if (work / "STOP").exists():  # emergency stop: keep what we have (not reproducible)
            _log(f"dit: STOP file found at step {step}", log)
            break
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
    vae_steps: int = 360,
    dataset_size: int = 1280,
    dit_steps: int = 800,
    dit_batch: int = 32,
    vae2_steps: int = 200,
    vae2_stop: int | None = 150,
    vaehead_steps: int = 60,
    vaedec_steps: int = 150,
    threads: int = 2,
    stages: tuple[str, ...] = ("vae", "vae2", "vaehead", "encode", "vaedec", "dit", "export"),
    log=None,
) -> dict:
    torch.set_num_threads(threads)
    work_dir.mkdir(parents=True, exist_ok=True)
    times = {}
    t0 = time.time()
    if "vae" in stages:
        train_vae(work_dir, seed, vae_steps, 8, log)
        times["vae_s"] = round(time.time() - t0, 1)
    if "vae2" in stages:
        t1 = time.time()
        refine_vae(work_dir, seed, vae2_steps, 6, log, stop_at=vae2_stop)
        times["vae2_s"] = round(time.time() - t1, 1)
    if "vaehead" in stages:
        t1 = time.time()
        refit_vae_head(work_dir, seed, vaehead_steps, 4, log)
        times["vaehead_s"] = round(time.time() - t1, 1)
    if "vaedec" in stages:
        t1 = time.time()
        train_vae_decoder(work_dir, seed, vaedec_steps, 4, log)
        times["vaedec_s"] = round(time.time() - t1, 1)
    if "encode" in stages:
        t1 = time.time()
        encode_dataset(work_dir, seed, dataset_size, log)
        times["encode_s"] = round(time.time() - t1, 1)
    if "dit" in stages:
        t1 = time.time()
        train_dit(work_dir, seed, dit_steps, dit_batch, log)
        times["dit_s"] = round(time.time() - t1, 1)
    if "export" in stages:
        export(work_dir, out_dir, log=log)
    times["total_s"] = round(time.time() - t0, 1)
    (work_dir / f"times-{'-'.join(stages)}.json").write_text(json.dumps(times))
    _log(f"training times: {times}", log)
    return times


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "tiny")
    ap.add_argument("--work", type=Path, default=Path(".reelforge/train-tiny"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vae-steps", type=int, default=360)
    ap.add_argument("--dataset-size", type=int, default=1280)
    ap.add_argument("--dit-steps", type=int, default=800)
    ap.add_argument("--vae2-steps", type=int, default=200)
    ap.add_argument("--vaehead-steps", type=int, default=60)
    ap.add_argument("--vaedec-steps", type=int, default=150)
    ap.add_argument("--stages", default="vae,vae2,vaehead,encode,vaedec,dit,export")
    a = ap.parse_args()
    train(
        a.out,
        a.work,
        a.seed,
        a.vae_steps,
        a.dataset_size,
        a.dit_steps,
        vae2_steps=a.vae2_steps,
        vaehead_steps=a.vaehead_steps,
        vaedec_steps=a.vaedec_steps,
        stages=tuple(a.stages.split(",")),
    )
