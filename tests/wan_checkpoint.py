"""A tiny, randomly initialised checkpoint in the layout of Wan-AI/Wan2.2-T2V-A14B-Diffusers.

The real directory's structure (model_index.json naming ``WanPipeline`` with
``boundary_ratio`` 0.875, ``transformer/`` and ``transformer_2/``, a UMT5 ``text_encoder/``,
``tokenizer/``, ``vae/`` and a UniPC flow-matching scheduler with shift 12) with components a
few kilobytes large, so the ``wan`` source runs end to end on a CPU in seconds.
"""

from __future__ import annotations

from pathlib import Path


def save_tiny_wan(path: Path) -> Path:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        UniPCMultistepScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )
    from transformers import ByT5Tokenizer, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)

    def expert() -> WanTransformer3DModel:
        # rope_max_seq_len stays at Wan's 1024: smaller fails at 480x832 (see NOTES.md).
        return WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=8,
            in_channels=4,
            out_channels=4,
            text_dim=16,
            freq_dim=16,
            ffn_dim=32,
            num_layers=1,
        )

    pipe = WanPipeline(
        tokenizer=ByT5Tokenizer(),
        text_encoder=UMT5EncoderModel(
            UMT5Config(
                vocab_size=384,
                d_model=16,
                d_kv=8,
                d_ff=32,
                num_layers=1,
                num_heads=2,
                is_encoder_decoder=False,
                use_cache=False,
            )
        ),
        vae=AutoencoderKLWan(
            base_dim=3,
            z_dim=4,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            latents_mean=[0.0] * 4,
            latents_std=[1.0] * 4,
        ),
        scheduler=UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=12.0
        ),
        transformer=expert(),
        transformer_2=expert(),
        boundary_ratio=0.875,
    )
    pipe.save_pretrained(path, safe_serialization=True)
    return path
