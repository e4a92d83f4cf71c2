"""Real media for the safety tests: scikit-image's astronaut photo and clips made from it with
the real ffmpeg binary. No explicit imagery: the test policy blocks faces instead."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-y", *args],
        check=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    import skimage.data
    from PIL import Image

    d = tmp_path_factory.mktemp("safety-media")
    astro = d / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(astro)
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    # 2 s still video of the astronaut, 12 fps
    ffmpeg(
        "-loop", "1", "-framerate", "12", "-t", "2", "-i", str(astro), *x264, str(d / "astro.mp4")
    )
    # 1.25 s of a test pattern, then a hard cut to the astronaut (scene change at 1.25 s)
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=512x512:rate=12:duration=1.25",
        "-loop", "1", "-framerate", "12", "-t", "1", "-i", str(astro),
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", *x264,
        str(d / "cut.mp4"),
    )  # fmt: skip
    # a harmless 3 s clip: test pattern only
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=12:duration=3",
        *x264,
        str(d / "pattern.mp4"),
    )
    # bad inputs
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.txt").write_text("this is a text file, not a video\n", encoding="utf-8")
    jpg = d / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()).save(jpg, quality=90)
    data = jpg.read_bytes()
    (d / "corrupt.jpg").write_bytes(data[: len(data) // 3])
    (d / "bomb.png").write_bytes(png_bomb(20000, 20000))
    names = [
        "astro.mp4",
        "cut.mp4",
        "pattern.mp4",
        "empty.mp4",
        "notes.txt",
        "corrupt.jpg",
        "bomb.png",
    ]
    return {"astronaut_png": astro, "astronaut_jpg": jpg} | {n.split(".")[0]: d / n for n in names}


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height that decodes to width*height pixels (a real
    decompression bomb, about 50 kB on disk for 20000 x 20000)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    co = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    idat = b"".join(co.compress(row) for _ in range(height)) + co.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
