"""LoRA adapters in both experts of a two-expert Wan2.2 pipeline (diffusers' LoRA loading).

One place for every LoRA the generator applies: step-distillation LoRAs of the speed profiles
(Wan2.2-Lightning / LightX2V files, ``diffusion_model.*`` keys, converted by diffusers) and
brand styles. A LoRA is loaded once per pipeline under an adapter name, into *both* experts
(``load_into_transformer_2``: Wan2.2's high- and low-noise experts are two models), and each
batch then chooses which loaded adapters are active at which strength.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from reelforge.core.errors import InvalidInput

# Wan2.2-Lightning's release layout: one LoRA per expert.
EXPERT_FILES = {
    "transformer": "high_noise_model.safetensors",
    "transformer_2": "low_noise_model.safetensors",
}


def expert_files(path: Path) -> dict[str, Path]:
    """Expert -> LoRA file: one file for both experts, or a directory in Lightning's layout."""
    if path.is_file():
        return dict.fromkeys(EXPERT_FILES, path)
    if path.is_dir():
        files = {expert: path / name for expert, name in EXPERT_FILES.items()}
        missing = [f.name for f in files.values() if not f.is_file()]
        if not missing:
            return files
        raise InvalidInput(f"LoRA directory {path} lacks {', '.join(missing)}")
    raise InvalidInput(
        f"LoRA {path} does not exist; give a .safetensors file or a directory with "
        f"{' and '.join(EXPERT_FILES.values())}"
    )


def lora_digest(path: Path) -> str:
    """sha256 identifying the LoRA (of the file, or of both experts' files in order)."""
    h = hashlib.sha256()
    for f in expert_files(path).values():
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def loaded_adapters(pipe) -> set[str]:
    """Adapter names loaded into the pipeline's experts."""
    return {name for names in pipe.get_list_adapters().values() for name in names}


def load_lora_into_experts(pipe, path: Path, adapter_name: str) -> None:
    """Load the LoRA at ``path`` (see ``expert_files``) into both experts as ``adapter_name``
    (once: a name that is already loaded is kept). A file that is not a LoRA for this model
    is a one-line ``InvalidInput``; nothing stays half-loaded."""
    if adapter_name in loaded_adapters(pipe):
        return
    files = expert_files(path)
    try:
        for expert, file in files.items():
            pipe.load_lora_weights(
                str(file),
                adapter_name=adapter_name,
                load_into_transformer_2=expert == "transformer_2",
            )
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        if adapter_name in loaded_adapters(pipe):
            pipe.delete_adapters(adapter_name)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidInput(
            f"LoRA {path.name} does not fit the model: {first}; give a Wan2.2 LoRA "
            "(diffusers or LightX2V/Lightning keys) made for this checkpoint"
        ) from None
    # Loading activates the new adapter; which adapters run is decided per batch.
    pipe.disable_lora()


def activate_loras(pipe, strengths: Mapping[str, float]) -> None:
    """Make exactly the adapters in ``strengths`` (name -> strength) active in both experts;
    an empty mapping runs the experts without any LoRA."""
    if not loaded_adapters(pipe):
        return
    if not strengths:
        pipe.disable_lora()
        return
    pipe.enable_lora()
    pipe.set_adapters(list(strengths), [float(s) for s in strengths.values()])
