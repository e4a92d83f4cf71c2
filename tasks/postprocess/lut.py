"""3D LUTs in the Adobe/IRIDAS ``.cube`` format: parser, validator, writer, presets.

Format (Adobe "Cube LUT Specification 1.0"): optional ``TITLE "..."``, ``LUT_3D_SIZE N``,
optional ``DOMAIN_MIN r g b`` / ``DOMAIN_MAX r g b``, then N^3 rows of three floats with the
red index changing fastest, then green, then blue. ``#`` starts a comment line.

Every validation error is one line naming the file and the line number. A validated LUT is
re-written in a normalised form (our writer, content-addressed file name) and that copy is what
ffmpeg's ``lut3d`` reads, so ffmpeg sees exactly the table we validated.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reelforge.core.errors import InvalidInput

MIN_SIZE = 2
MAX_SIZE = 129  # ffmpeg's lut3d accepts up to 256; anything above 129 is a mistake or a DoS
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Lut3D:
    title: str
    size: int
    domain_min: tuple[float, float, float]
    domain_max: tuple[float, float, float]
    # table[b, g, r] -> (R, G, B): the file's row order reshaped (red fastest)
    table: np.ndarray

    def to_cube_text(self) -> str:
        lines = []
        if title := _clean_title(self.title):  # a title of only unprintables writes none
            lines.append(f'TITLE "{title}"')
        lines.append(f"LUT_3D_SIZE {self.size}")
        lines.append("DOMAIN_MIN {:.6f} {:.6f} {:.6f}".format(*self.domain_min))
        lines.append("DOMAIN_MAX {:.6f} {:.6f} {:.6f}".format(*self.domain_max))
        rows = self.table.reshape(-1, 3)
        lines.extend(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in rows)
        return "\n".join(lines) + "\n"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_cube_text().encode()).hexdigest()

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Apply the LUT to float RGB in the LUT's domain (trilinear). Used by tests and the
        moviepy comparison benchmark; the render path uses ffmpeg's tetrahedral lut3d."""
        lo = np.asarray(self.domain_min, dtype=np.float32)
        hi = np.asarray(self.domain_max, dtype=np.float32)
        x = (np.asarray(rgb, dtype=np.float32) - lo) / (hi - lo)
        x = np.clip(x, 0.0, 1.0) * (self.size - 1)
        i0 = np.minimum(np.floor(x).astype(np.int64), self.size - 2)
        f = x - i0
        r0, g0, b0 = i0[..., 0], i0[..., 1], i0[..., 2]
        fr, fg, fb = f[..., 0:1], f[..., 1:2], f[..., 2:3]
        t = self.table.astype(np.float32)
        out = np.zeros(x.shape, dtype=np.float32)
        for db, wb in ((0, 1 - fb), (1, fb)):
            for dg, wg in ((0, 1 - fg), (1, fg)):
                for dr, wr in ((0, 1 - fr), (1, fr)):
                    out += t[b0 + db, g0 + dg, r0 + dr] * (wb * wg * wr)
        return out


def _clean_title(title: str) -> str:
    return "".join(ch for ch in title if ch.isprintable() and ch != '"')[:200]


def _floats(parts: list[str], where: str, n: int = 3) -> tuple[float, ...]:
    if len(parts) != n:
        raise InvalidInput(f"{where}: expected {n} numbers, found {len(parts)}")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError as exc:
        raise InvalidInput(f"{where}: not a number: {' '.join(parts)[:60]!r}") from exc
    if not all(math.isfinite(v) for v in vals):
        raise InvalidInput(
            f"{where}: NaN or infinite value; every LUT entry must be a finite number"
        )
    return vals


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_cube_text(text: str, name: str = "<lut>") -> Lut3D:
    """Parse and validate ``.cube`` text; raise `InvalidInput` with one line naming the line."""
    title = ""
    size: int | None = None
    dmin = (0.0, 0.0, 0.0)
    dmax = (1.0, 1.0, 1.0)
    rows: list[tuple[float, ...]] = []
    first_row_line = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name} line {lineno}"
        head = line.split(None, 1)[0]
        if head[0].isalpha() and not _is_number(head):
            if rows:
                raise InvalidInput(
                    f"{where}: keyword {head} after the table rows; keywords go first"
                )
            rest = line[len(head) :].strip()
            if head == "TITLE":
                title = rest.strip('"')
            elif head == "LUT_3D_SIZE":
                try:
                    size = int(rest)
                except ValueError as exc:
                    raise InvalidInput(
                        f"{where}: LUT_3D_SIZE must be an integer, got {rest[:30]!r}"
                    ) from exc
                if not MIN_SIZE <= size <= MAX_SIZE:
                    raise InvalidInput(
                        f"{where}: LUT_3D_SIZE {size} is out of range; use {MIN_SIZE}..{MAX_SIZE} (33 is usual)"
                    )
            elif head == "DOMAIN_MIN":
                dmin = _floats(rest.split(), where)  # type: ignore[assignment]
            elif head == "DOMAIN_MAX":
                dmax = _floats(rest.split(), where)  # type: ignore[assignment]
            elif head == "LUT_3D_INPUT_RANGE":  # DaVinci Resolve variant
                lo, hi = _floats(rest.split(), where, 2)
                dmin, dmax = (lo, lo, lo), (hi, hi, hi)
            elif head == "LUT_1D_SIZE":
                raise InvalidInput(
                    f"{where}: 1D LUTs are not supported; export a 3D LUT (LUT_3D_SIZE)"
                )
            else:
                raise InvalidInput(f"{where}: unknown keyword {head[:40]!r}")
            continue
        if size is None:
            raise InvalidInput(f"{where}: table row before LUT_3D_SIZE; the header must come first")
        if not rows:
            first_row_line = lineno
        rows.append(_floats(line.split(), where))
        if len(rows) > size**3:
            raise InvalidInput(
                f"{where}: too many rows; LUT_3D_SIZE {size} needs exactly {size**3} rows"
            )
    if size is None:
        raise InvalidInput(f"{name}: no LUT_3D_SIZE line; not a 3D .cube LUT")
    if len(rows) != size**3:
        raise InvalidInput(
            f"{name} line {first_row_line or '?'}: wrong row count: LUT_3D_SIZE {size} needs "
            f"{size**3} rows, found {len(rows)}"
        )
    if any(lo >= hi for lo, hi in zip(dmin, dmax, strict=True)):
        raise InvalidInput(f"{name}: DOMAIN_MIN must be below DOMAIN_MAX on every channel")
    table = np.asarray(rows, dtype=np.float64).reshape(size, size, size, 3)
    return Lut3D(
        title=title, size=size, domain_min=tuple(dmin), domain_max=tuple(dmax), table=table
    )  # type: ignore[arg-type]


def parse_cube(path: str | os.PathLike[str]) -> Lut3D:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(
            f"LUT file {p} does not exist; pass a .cube file or a preset name ({', '.join(PRESETS)})"
        )
    if p.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(
            f"LUT file {p.name} is larger than {MAX_FILE_BYTES >> 20} MB; not a sane .cube"
        )
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"LUT file {p.name} is not text; expected an Adobe/IRIDAS .cube file"
        ) from exc
    return parse_cube_text(text, name=p.name)


def write_cube(lut: Lut3D, path: str | os.PathLike[str]) -> Path:
    """Write atomically (temp file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.part")
    tmp.write_text(lut.to_cube_text(), encoding="utf-8")
    os.replace(tmp, p)
    return p


# --- presets -------------------------------------------------------------------------------


def _identity_grid(size: int) -> np.ndarray:
    v = np.linspace(0.0, 1.0, size)
    b, g, r = np.meshgrid(v, v, v, indexing="ij")  # red fastest in C order of [b, g, r]
    return np.stack([r, g, b], axis=-1)


def _luma(x: np.ndarray) -> np.ndarray:
    return (0.2126 * x[..., 0] + 0.7152 * x[..., 1] + 0.0722 * x[..., 2])[..., None]


def _neutral(x: np.ndarray) -> np.ndarray:
    return x


def _warm(x: np.ndarray) -> np.ndarray:
    gain = np.array([1.06, 1.01, 0.88])
    lift = np.array([0.02, 0.005, -0.01])
    return x * gain + lift


def _cool(x: np.ndarray) -> np.ndarray:
    gain = np.array([0.90, 1.0, 1.07])
    lift = np.array([-0.01, 0.0, 0.025])
    return x * gain + lift


def _product_pop(x: np.ndarray) -> np.ndarray:
    y = _luma(x)
    sat = y + (x - y) * 1.30  # +30 % saturation around luma
    s = np.clip(sat, 0.0, 1.0)
    curve = s * s * (3.0 - 2.0 * s)  # smoothstep S-curve for contrast
    return 0.6 * s + 0.4 * curve


PRESETS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "neutral": ("ReelForge neutral (identity)", _neutral),
    "warm": ("ReelForge warm", _warm),
    "cool": ("ReelForge cool", _cool),
    "product-pop": ("ReelForge product pop", _product_pop),
}


def preset_lut(name: str, size: int = 33) -> Lut3D:
    if name not in PRESETS:
        raise InvalidInput(
            f"unknown LUT preset {name!r}; use one of {', '.join(PRESETS)} or a .cube file"
        )
    title, fn = PRESETS[name]
    table = np.clip(fn(_identity_grid(size)), 0.0, 1.0)
    table = np.round(table, 6)
    return Lut3D(
        title=title, size=size, domain_min=(0.0, 0.0, 0.0), domain_max=(1.0, 1.0, 1.0), table=table
    )


@dataclass(frozen=True)
class ResolvedLut:
    name: str  # preset name or source file name
    path: Path  # normalised, validated copy that ffmpeg reads
    sha256: str  # of the normalised text
    size: int
    source: str  # "preset" or the original file path


def load_lut(name_or_path: str | os.PathLike[str]) -> tuple[Lut3D, str, str]:
    """(validated LUT, label, source) of a preset name or a ``.cube`` path; writes nothing."""
    spec = str(name_or_path)
    if spec in PRESETS:
        return preset_lut(spec), spec, "preset"
    p = Path(spec).expanduser()
    if p.suffix.lower() != ".cube" and not p.exists():
        raise InvalidInput(
            f"unknown LUT {spec!r}; use one of {', '.join(PRESETS)} or a path to a .cube file"
        )
    return parse_cube(p), p.name, str(p)


def resolve_lut(
    name_or_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str]
) -> ResolvedLut:
    """A preset name (``neutral``, ``warm``, ``cool``, ``product-pop``) or a ``.cube`` path ->
    a validated, normalised copy under ``cache_dir/luts`` named by its content hash."""
    lut, label, source = load_lut(name_or_path)
    digest = lut.sha256
    out = Path(cache_dir) / "luts" / f"lut-{digest[:20]}.cube"
    if not out.exists():
        write_cube(lut, out)
    return ResolvedLut(name=label, path=out, sha256=digest, size=lut.size, source=source)
