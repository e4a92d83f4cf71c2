"""Regenerate the post-processing examples deterministically (byte-identical on every run).

    .venv/bin/python examples/make_examples.py

Writes:
  examples/logo.png            240x96 RGBA badge with a transparent background (drawn with PIL)
  examples/music.wav           6 s, 44.1 kHz stereo, 16-bit: a synthesised four-chord loop
  examples/luts/<preset>.cube  neutral, warm, cool, product-pop (33^3), from tasks.postprocess.lut
"""

from __future__ import annotations

import io
import sys
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tasks.postprocess.lut import PRESETS, preset_lut, write_cube  # noqa: E402


def make_logo(path: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    w, h = 240, 96
    im = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle(
        [4, 4, w - 5, h - 5],
        radius=22,
        fill=(255, 140, 0, 235),
        outline=(255, 255, 255, 255),
        width=4,
    )
    d.ellipse([18, 20, 74, 76], fill=(255, 255, 255, 255))
    d.polygon([(38, 32), (38, 64), (64, 48)], fill=(255, 140, 0, 255))  # play triangle
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 40)
    except OSError:
        font = ImageFont.load_default()
    d.text((88, 24), "REEL", fill=(255, 255, 255, 255), font=font)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=9)  # no timestamps: deterministic
    path.write_bytes(buf.getvalue())


def synth_music(seconds: float = 6.0, rate: int = 44100) -> np.ndarray:
    """Four chords (C, Am, F, G), plucked envelope, soft kick on each beat; stereo float."""
    t = np.arange(int(seconds * rate)) / rate
    chords = [
        (261.63, 329.63, 392.00),
        (220.00, 261.63, 329.63),
        (174.61, 220.00, 261.63),
        (196.00, 246.94, 293.66),
    ]
    bar = seconds / len(chords)
    left = np.zeros_like(t)
    right = np.zeros_like(t)
    beat = bar / 4
    for i, chord in enumerate(chords):
        for k in range(4):
            t0 = i * bar + k * beat
            m = (t >= t0) & (t < t0 + beat)
            tt = t[m] - t0
            env = np.exp(-3.0 * tt / beat)
            for j, f in enumerate(chord):
                tone = np.sin(2 * np.pi * f * tt) + 0.3 * np.sin(2 * np.pi * 2 * f * tt)
                pan = (j - 1) * 0.4
                left[m] += tone * env * (1 - pan) * 0.18
                right[m] += tone * env * (1 + pan) * 0.18
            kick = np.sin(2 * np.pi * (50 + 60 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 12) * 0.5
            left[m] += kick
            right[m] += kick
    x = np.stack([left, right], axis=1)
    return x / np.max(np.abs(x)) * 0.7


def write_wav(path: Path, x: np.ndarray, rate: int = 44100) -> None:
    pcm = (np.clip(x, -1, 1) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def main() -> None:
    make_logo(HERE / "logo.png")
    write_wav(HERE / "music.wav", synth_music())
    for name in PRESETS:
        write_cube(preset_lut(name), HERE / "luts" / f"{name}.cube")
    print(
        "wrote",
        HERE / "logo.png",
        HERE / "music.wav",
        *(HERE / "luts" / f"{n}.cube" for n in PRESETS),
    )


if __name__ == "__main__":
    main()
