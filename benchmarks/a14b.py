"""Wan2.2-T2V-A14B on a GPU without a checkpoint (issue 16): the real architecture, random weights.

    python -m benchmarks.bench_gpu --architecture a14b [--tiny] [--device cuda|cpu]
        [--budget-s 400] [--json PATH] [--out PATH] [--no-write]

Speed and memory do not depend on the weights' values, so the published architecture with
random weights costs what the checkpoint costs: both experts (diffusers'
``WanTransformer3DModel()`` defaults are the A14B expert: 40 layers, 40 heads x 128 = 5120
wide, FFN 13824), the UMT5-XXL encoder (the ``text_encoder/config.json`` of
``Wan-AI/Wan2.2-T2V-A14B-Diffusers``) and the Wan VAE (``AutoencoderKLWan()`` defaults), built
straight on the GPU in bf16 (no CPU copy; offload modes then move what they offload).

Measured, each from one run of ``WanPipeline`` with CFG and 81 frames:

* at 480p and 720p with everything resident: a normal step of each expert;
* at 480p, in each residency mode (``resident``, ``prefetch``: one expert resident and the
  other uploaded on a side stream before the switch, ``group_offload`` with streams and
  ``fp8`` layerwise casting, all three through ``models/wan_gpu.py``; ``model_offload``:
  diffusers' ``enable_model_cpu_offload``, for reference): the expert-switch step against a
  normal step and the peak GPU memory;
* the VAE decode of the 480p and 720p latents (tiled, as the production path decodes);
* the 40-step video time extrapolated from those steps (26 high-noise and 14 low-noise steps
  with Wan2.2's flow shift 12), beside Wan's published single-GPU figures.

The timed runs use 5 steps with flow shift 7, which puts the switch at step 3 (steps 0-2 on
the high-noise expert, 3-4 on the low-noise one): step 0 (text encoding, first kernels) is
left out, step 1 is a normal high-noise step, step 2 the step before the switch (where
``prefetch`` uploads the low-noise expert), step 3 the switch, step 4 a normal low-noise step.
A step's cost does not depend on its timestep. A run that would pass ``--budget-s`` is left
out and says so. ``--tiny`` runs the same code with tiny dimensions (the tests run it on the
CPU); without CUDA and without ``--device cpu`` nothing is measured: the section says no GPU
was lent, with the model sizes this script computes (parameters x bytes, on the meta device).
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable
from contextlib import contextmanager

SECTION = "generation-gpu-a14b"
PROMPT = "a red sports car drives along a coastal road at sunset, cinematic"
NEGATIVE = "blurry, low quality, static"
BOUNDARY_RATIO = 0.875  # model_index.json of Wan2.2-T2V-A14B-Diffusers
VIDEO_STEPS, VIDEO_SHIFT = 40, 12.0  # the published recipe the extrapolation is for
TIMED_STEPS, TIMED_SHIFT = 5, 7.0  # switch at step 3 of 5 (see the module docstring)
FRAMES, TINY_FRAMES = 81, 9
SIZES = {"480p": (480, 832), "720p": (720, 1280)}
TINY_SIZES = {"480p": (32, 48), "720p": (48, 80)}
MODES = ("resident", "prefetch", "group_offload", "fp8", "model_offload")
# Wan2.2's README, "Computational efficiency on different GPUs": T2V-A14B on one H100 with
# --offload_model True. Published by Wan, not measured here.
PUBLISHED = {
    "720p": {"video_s": 1041.5, "peak_gb": 59.8},
    "480p": {"video_s": 326.9, "peak_gb": 41.3},
}
# UMT5-XXL as in Wan-AI/Wan2.2-T2V-A14B-Diffusers text_encoder/config.json
UMT5_XXL = {
    "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
    "vocab_size": 256384, "feed_forward_proj": "gated-gelu",
    "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
}  # fmt: skip
UMT5_TINY = {
    "d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2, "num_heads": 2,
    "vocab_size": 384, "feed_forward_proj": "gated-gelu",
}  # fmt: skip
EXPERT_TINY = {
    "num_attention_heads": 2, "attention_head_dim": 12, "ffn_dim": 64, "num_layers": 2,
    "text_dim": 32, "freq_dim": 32,
}  # fmt: skip
VAE_TINY = {"base_dim": 3, "z_dim": 16, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}
GB = 1e9


@contextmanager
def _materialise(device, dtype):
    """New modules' tensors are created on ``device`` in ``dtype`` (no CPU copy)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def build_components(tiny: bool, device, dtype) -> dict:
    """The A14B components (or their tiny stand-ins) with random weights, on ``device``."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    with _materialise(device, dtype):
        expert = EXPERT_TINY if tiny else {}
        return {
            "transformer": WanTransformer3DModel(**expert),
            "transformer_2": WanTransformer3DModel(**expert),
            "text_encoder": UMT5EncoderModel(UMT5Config(**(UMT5_TINY if tiny else UMT5_XXL))),
            "vae": AutoencoderKLWan(**(VAE_TINY if tiny else {})),
        }


def scheduler(shift: float):
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift
    )


def build_pipeline(tiny: bool, device, dtype):
    """A two-expert ``WanPipeline`` in the layout of Wan2.2-T2V-A14B-Diffusers. The byte-level
    ByT5 tokenizer needs no files; prompts are padded to 512 tokens either way, so the text
    encoder's cost is the real one."""
    from diffusers import WanPipeline
    from transformers import ByT5Tokenizer

    pipe = WanPipeline(
        tokenizer=ByT5Tokenizer(),
        scheduler=scheduler(TIMED_SHIFT),
        boundary_ratio=BOUNDARY_RATIO,
        **build_components(tiny, device, dtype),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def model_sizes() -> dict:
    """Parameters of the real A14B components, counted on the meta device (no memory)."""
    import torch

    comps = build_components(False, "meta", torch.bfloat16)
    return {
        name: sum(t.numel() for t in [*m.parameters(), *m.buffers()]) for name, m in comps.items()
    }


def residency_gb(params: dict) -> dict[str, float]:
    """Weights on the GPU (GB, bf16 = 2 bytes, fp8 = 1 byte) at the worst moment of each mode;
    activations come on top (measured on a GPU only)."""
    te, hi, lo, vae = (params[n] for n in ("text_encoder", "transformer", "transformer_2", "vae"))
    block = hi // 40  # one of an expert's 40 transformer blocks (the embeddings are small)
    # UMT5's token embedding, the largest leaf group offload streams
    embedding = UMT5_XXL["vocab_size"] * UMT5_XXL["d_model"]
    return {
        "resident": 2 * (te + hi + lo + vae) / GB,
        "prefetch": 2 * (hi + lo + vae) / GB,  # both experts around the switch, if room
        "prefetch, no room for both": 2 * (max(hi, lo) + vae) / GB,
        "model_offload": 2 * (max(te, hi, lo) + vae) / GB,
        # the running group and the next one: two expert blocks, or UMT5's embedding
        "group_offload": 2 * (max(2 * block, embedding) + vae) / GB,
        "fp8": (2 * te + hi + lo + 2 * vae) / GB,  # experts stored in fp8, the rest bf16
    }


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def place(pipe, mode: str, device: str) -> Callable[[object, int], None] | None:
    """Put ``pipe`` in a residency mode; returns the placement's per-step hook, if any."""
    if not device.startswith("cuda"):
        pipe.to(device)
        return None
    if mode == "model_offload":
        pipe.enable_model_cpu_offload(device=device)
        pipe.vae.enable_tiling()
        return None
    from models.wan_gpu import GpuOptions, place_on_gpu

    opts = {
        "resident": GpuOptions(keep_both_experts=True),
        "prefetch": GpuOptions(keep_both_experts=False, prefetch=True),
        "group_offload": GpuOptions(group_offload=True),
        "fp8": GpuOptions(fp8_layerwise=True),
    }[mode]
    return place_on_gpu(pipe, device, opts).on_step_end


def timed_run(pipe, device: str, size: tuple[int, int], frames: int, on_step_end) -> dict:
    """One ``TIMED_STEPS``-step generation with CFG: each step's time and expert, the peak GPU
    memory and the latents."""
    import torch

    current: dict[str, str | None] = {"expert": None}
    hooks = [
        getattr(pipe, n).register_forward_pre_hook(
            lambda _m, _a, n=n: current.__setitem__("expert", n)
        )
        for n in ("transformer", "transformer_2")
    ]
    marks: list[tuple[float, str | None]] = []

    def step_end(p, i, _t, _kw):
        _sync(device)
        marks.append((time.perf_counter(), current["expert"]))
        if on_step_end is not None:
            on_step_end(p, i)
        return {}

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    t0 = time.perf_counter()
    try:
        latents = pipe(
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            height=size[0],
            width=size[1],
            num_frames=frames,
            num_inference_steps=TIMED_STEPS,
            guidance_scale=4.0,
            guidance_scale_2=3.0,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="latent",
            callback_on_step_end=step_end,
        ).frames
    finally:
        for h in hooks:
            h.remove()
    times = [marks[0][0] - t0] + [b[0] - a[0] for a, b in itertools.pairwise(marks)]
    experts = [e for _, e in marks]
    if experts != ["transformer"] * 3 + ["transformer_2"] * 2:
        raise RuntimeError(f"expert order {experts}: the switch must be at step 3 of 5")
    return {
        "first_step_s": round(times[0], 4),
        "high_step_s": round(times[1], 4),
        "pre_switch_step_s": round(times[2], 4),
        "switch_step_s": round(times[3], 4),
        "low_step_s": round(times[4], 4),
        "switch_ratio": round(times[3] / times[4], 3),
        "peak_memory_bytes": _peak(device),
        "latents": latents,
    }


def _peak(device: str) -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated(device)) if device.startswith("cuda") else None


def time_decode(pipe, latents, device: str) -> float:
    """The VAE decode of one clip's latents, tiled as the production path decodes."""
    import torch

    vae = pipe.vae
    vae.enable_tiling()
    with torch.no_grad():
        lat = latents.to(vae.device, dtype=vae.dtype)
        _sync(device)
        t0 = time.perf_counter()
        vae.decode(lat, return_dict=False)
        _sync(device)
    return round(time.perf_counter() - t0, 4)


def expert_split(steps: int = VIDEO_STEPS, shift: float = VIDEO_SHIFT) -> tuple[int, int]:
    """(high-noise steps, low-noise steps) of a ``steps``-step video with flow shift ``shift``."""
    s = scheduler(shift)
    s.set_timesteps(steps)
    high = int((s.timesteps >= BOUNDARY_RATIO * s.config.num_train_timesteps).sum())
    return high, steps - high


def extrapolate(m: dict, decode_s: float) -> float:
    """A ``VIDEO_STEPS``-step video from one timed run: every step at its expert's normal
    cost, plus what the step before the switch and the switch cost on top, plus the decode.
    (Text encoding, a fraction of a second of the first step, is left out.)"""
    high, low = expert_split()
    return round(
        high * m["high_step_s"]
        + low * m["low_step_s"]
        + (m["pre_switch_step_s"] - m["high_step_s"])
        + (m["switch_step_s"] - m["low_step_s"])
        + decode_s,
        2,
    )


def _free(device: str) -> None:
    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _measure_mode(args, device: str, dtype, mode: str, size: tuple[int, int], frames: int):
    """A fresh pipeline in ``mode``: one timed run (and, resident, the decode of its latents)."""
    # The previous row's pipeline is garbage by now, but cyclic (placement hooks point back
    # to it): collect it before building the next one.
    _free(device)
    t0 = time.perf_counter()
    pipe = build_pipeline(args.tiny, device, dtype)
    hook = place(pipe, mode, device)
    m = timed_run(pipe, device, size, frames, hook)
    if mode in ("resident", "cpu"):
        m["decode_s"] = time_decode(pipe, m["latents"], device)
    m.pop("latents")
    m["wall_s"] = round(time.perf_counter() - t0, 2)  # build, placement, run, decode
    return m


def _failure(exc: BaseException) -> str:
    """A measurement that failed, in one line (the others still run and are reported)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return "CUDA out of memory"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"failed: {type(exc).__name__}: {first}"[:200]


def run(args) -> dict:
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    params = model_sizes()
    res: dict = {
        "architecture": "a14b",
        "torch": torch.__version__,
        "params": params,
        "residency_gb": {k: round(v, 1) for k, v in residency_gb(params).items()},
        "published": PUBLISHED,
        "expert_split": list(expert_split()),
    }
    if device is None:
        return res | {"cuda": False}
    cuda = device.startswith("cuda")
    sizes, frames = (TINY_SIZES, TINY_FRAMES) if args.tiny else (SIZES, FRAMES)
    dtype = torch.bfloat16  # the wan source's dtype on a GPU; the CPU smoke run keeps it
    res |= {
        "cuda": cuda,
        "device": device,
        "name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "tiny": args.tiny,
        "frames": frames,
        "sizes": sizes,
        "budget_s": args.budget_s,
        "resolutions": {},
        "modes": {},
        "skipped": {},
    }
    t_start = time.perf_counter()
    resident = "resident" if cuda else "cpu"
    # Everything resident: each expert's normal step and the decode, at both sizes; the
    # 480p run is also the first row of the mode table.
    for label in ("480p", "720p"):
        try:
            m = _measure_mode(args, device, dtype, resident, sizes[label], frames)
        except Exception as exc:  # reported in the section; the other rows still run
            res["skipped"][f"{resident}, {label}"] = _failure(exc)
            continue
        m["video_s"] = extrapolate(m, m["decode_s"])
        res["resolutions"][label] = m
        if label == "480p":
            res["modes"][resident] = {k: v for k, v in m.items() if k != "decode_s"}
    modes = MODES[1:] if cuda and "480p" in res["resolutions"] else ()
    if modes:
        r480 = res["resolutions"]["480p"]
        # A mode costs about the resident 480p run (build and five steps) and its transfers.
        estimate = 1.5 * r480["wall_s"]
    for mode in modes:
        elapsed = time.perf_counter() - t_start
        if elapsed + estimate > args.budget_s:
            res["skipped"][mode] = (
                f"left out: {elapsed:.0f} s spent, about {estimate:.0f} s more would pass the "
                f"{args.budget_s:.0f} s budget"
            )
            continue
        try:
            m = _measure_mode(args, device, dtype, mode, sizes["480p"], frames)
        except Exception as exc:  # reported in the section; the other modes still run
            res["skipped"][mode] = _failure(exc)
            continue
        m["video_s"] = extrapolate(m, r480["decode_s"])
        res["modes"][mode] = m
    res["wall_s"] = round(time.perf_counter() - t_start, 2)
    return res


def _gb(b: int | None) -> str:
    return "-" if b is None else f"{b / GB:.1f} GB"


def _sizes_lines(res: dict) -> list[str]:
    p = res["params"]
    lines = [
        "Model sizes, computed by this script (parameters on the meta device x bytes):",
        "",
        "| component | parameters | bf16 |",
        "|---|---:|---:|",
    ]
    for name, label in (
        ("transformer", "high-noise expert (`transformer`)"),
        ("transformer_2", "low-noise expert (`transformer_2`)"),
        ("text_encoder", "UMT5-XXL encoder"),
        ("vae", "Wan VAE"),
    ):
        lines.append(f"| {label} | {p[name] / 1e9:.2f} B | {2 * p[name] / GB:.1f} GB |")
    lines += [
        "",
        "Weights on the GPU at the worst moment of each residency mode (activations on top):",
        "",
        "| mode | weights on the GPU |",
        "|---|---:|",
    ]
    lines += [f"| {mode} | {gb:.1f} GB |" for mode, gb in res["residency_gb"].items()]
    return [*lines, "", MODES_LEGEND]


MODES_LEGEND = (
    "Modes: `resident`, text encoder, both experts and VAE on the GPU; `prefetch`, only the "
    "active model on the GPU, the low-noise expert uploaded on a side stream during the step "
    "before the switch (`models/wan_gpu.py` swap mode); `group_offload`, diffusers' "
    "block-level group offload with streams (`REELFORGE_GEN_GROUP_OFFLOAD`); `fp8`, experts "
    "stored in FP8 and computed in bf16 (`REELFORGE_GEN_FP8`); `model_offload`, diffusers' "
    "`enable_model_cpu_offload` (one model at a time, for reference: not a production mode)."
)


def _published_lines() -> list[str]:
    return [
        "Published by Wan (Wan2.2 README, T2V-A14B on one H100 with `--offload_model True`, "
        "not measured here): 720p "
        f"{PUBLISHED['720p']['video_s']} s and {PUBLISHED['720p']['peak_gb']} GB; 480p "
        f"{PUBLISHED['480p']['video_s']} s and {PUBLISHED['480p']['peak_gb']} GB.",
    ]


def markdown(res: dict) -> str:
    head = ["## Wan2.2-T2V-A14B on a GPU (random weights, no checkpoint)", ""]
    if not res.get("cuda") and not res.get("modes"):
        return (
            "\n".join(
                [
                    *head,
                    "**No GPU was lent to this session: not measured** (`torch.cuda.is_available()` "
                    f"is false, torch {res['torch']}). On a GPU, `python -m benchmarks.bench_gpu "
                    "--architecture a14b` measures the steps, the expert switch in each residency "
                    "mode, peak memory and the VAE decode, sized for 8 minutes (modes that would "
                    "pass `--budget-s`, 400 s of measuring, are left out and say so).",
                    "",
                    *_sizes_lines(res),
                    "",
                    *_published_lines(),
                ]
            )
            + "\n"
        )
    high, low = res["expert_split"]
    what = (
        f"tiny dimensions on {res['name']}: a smoke run of the code path, no A14B numbers"
        if res["tiny"]
        else f"{res['name']} (torch {res['torch']})"
    )
    lines = [
        *head,
        f"Reproduce: `python -m benchmarks.bench_gpu --architecture a14b"
        f"{' --tiny' if res['tiny'] else ''}{'' if res['cuda'] else ' --device cpu'}` on "
        f"{what}; {res['frames']} frames, CFG, one run of {TIMED_STEPS} steps on a freshly "
        f"built pipeline per row (see `benchmarks/a14b.py`), {res['wall_s']:.0f} s in all. "
        f"The {VIDEO_STEPS}-step video is extrapolated ({high} high-noise + {low} low-noise "
        "steps, the switch and the step before it as measured, plus the decode).",
        "",
        "| everything resident | high-noise step | low-noise step | VAE decode | peak memory "
        f"| {VIDEO_STEPS}-step video (extrapolated) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, m in res["resolutions"].items():
        h, w = res["sizes"][label]
        lines.append(
            f"| {label} ({w}x{h}) | {m['high_step_s']:.2f} s | {m['low_step_s']:.2f} s | "
            f"{m['decode_s']:.2f} s | {_gb(m['peak_memory_bytes'])} | {m['video_s']:.1f} s |"
        )
    lines += [
        "",
        "| mode, 480p | normal high / low step | step before the switch | switch step "
        "| switch / normal low | peak memory | video (extrapolated) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, m in res["modes"].items():
        lines.append(
            f"| {mode} | {m['high_step_s']:.2f} / {m['low_step_s']:.2f} s | "
            f"{m['pre_switch_step_s']:.2f} s | {m['switch_step_s']:.2f} s | "
            f"{m['switch_ratio']:.2f}x | {_gb(m['peak_memory_bytes'])} | {m['video_s']:.1f} s |"
        )
    lines += [f"| {mode} | {why} | | | | | |" for mode, why in res["skipped"].items()]
    return "\n".join([*lines, "", *_published_lines(), "", *_sizes_lines(res)]) + "\n"
