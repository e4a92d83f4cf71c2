"""Post-processing: LUT grade, logo, music, text, interpolation/upscale, platform renditions.

Plain, Prefect-free functions; `stage.py` is the stage (its `@task`s use these). Public API:

    from tasks.postprocess import (
        rendition_preset, render_rendition, render_base, render_variant,
        make_thumbnail, make_previews, frames_to_mp4,
        LogoSpec, AudioSpec, TextSpec, resolve_lut, validate_logo, probe_audio,
    )
"""

from .audio import AudioSpec, plan_audio, probe_audio
from .logo import LogoSpec, place_logo, validate_logo
from .lut import PRESETS as LUT_PRESETS
from .lut import parse_cube, preset_lut, resolve_lut, write_cube
from .overlay import TextSpec, layout_text
from .renditions import (
    BaseRender,
    RenditionPreset,
    RenditionResult,
    all_presets,
    frames_to_mp4,
    make_previews,
    make_thumbnail,
    render_base,
    render_rendition,
    render_variant,
    rendition_preset,
)

__all__ = [
    "LUT_PRESETS",
    "AudioSpec",
    "BaseRender",
    "LogoSpec",
    "RenditionPreset",
    "RenditionResult",
    "TextSpec",
    "all_presets",
    "frames_to_mp4",
    "layout_text",
    "make_previews",
    "make_thumbnail",
    "parse_cube",
    "place_logo",
    "plan_audio",
    "preset_lut",
    "probe_audio",
    "render_base",
    "render_rendition",
    "render_variant",
    "rendition_preset",
    "resolve_lut",
    "validate_logo",
    "write_cube",
]
