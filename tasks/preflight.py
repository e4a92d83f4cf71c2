"""Checks of a video job's inputs before anything runs.

A bad prompt, template, overlay text, policy, LUT, logo or music track fails here with one
line (``InvalidInput``, exit code 2 / HTTP 422): before a flow run starts, before anything
is stored, and without a traceback. The stages run the same checks again (a job can also
come from a campaign or an event), so this is the early copy, not the only one.
"""

from __future__ import annotations

import os
from pathlib import Path

from reelforge.core.checkpoints import SPECS, check_preset, frames_for_seconds
from reelforge.core.errors import InvalidInput
from reelforge.core.jobs import VideoJob
from reelforge.core.settings import get_settings
from tasks.postprocess.credentials import load_signing_identity
from tasks.styles import find_style


def check_lut(name_or_path: str | os.PathLike[str]) -> None:
    """A LUT preset name, or a .cube file that parses and validates."""
    from tasks.postprocess.lut import load_lut

    load_lut(name_or_path)


def check_brand(
    *,
    lut: str | os.PathLike[str] | None = None,
    logo: str | os.PathLike[str] | None = None,
    music: str | os.PathLike[str] | None = None,
) -> None:
    """Brand-kit files: the LUT parses, the logo decodes, the music decodes and is audible."""
    from tasks.postprocess.audio import probe_audio
    from tasks.postprocess.logo import validate_logo

    if lut:
        check_lut(lut)
    if logo:
        validate_logo(Path(logo))
    if music:
        probe_audio(Path(music))


def check_job(job: VideoJob) -> None:
    """Raise ``InvalidInput`` (one line: the problem and the fix) for any bad input of ``job``."""
    from tasks.enhance.normalize import normalize_prompt
    from tasks.enhance.templates import available_presets
    from tasks.postprocess.overlay import sanitize_text
    from tasks.safety.policy import load_policy

    normalize_prompt(job.prompt)
    if job.template is not None and job.template not in available_presets("en"):
        raise InvalidInput(
            f"unknown template {job.template!r}: choose one of {', '.join(available_presets('en'))}"
        )
    if job.text:
        sanitize_text(job.text)
    load_policy(job.policy, tenant=job.tenant)
    check_brand(lut=job.lut, logo=job.logo, music=job.music)
    settings = get_settings()
    spec = SPECS[settings.generator]
    check_preset(spec, job.generation_preset)
    frames_for_seconds(spec, job.seconds)
    if job.style is not None:
        find_style(job.tenant, job.style)
    if settings.c2pa_signing:
        load_signing_identity(settings)  # a bad key fails here, before any GPU time
