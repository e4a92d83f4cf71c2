"""Music and voice-over: probing, loop/trim to the video, fades, two-pass loudnorm, ducking.

Behaviour (documented and tested):

* Accepted containers: WAV, MP3, M4A/MP4 (AAC/ALAC), FLAC. Anything else, an unreadable or
  corrupt file, or a file without an audio stream -> `InvalidInput`.
* Silent music (peak below -60 dBFS) -> `InvalidInput`: loudness normalisation of silence would
  amplify noise by 50+ dB.
* Music shorter than the video is looped (whole track, back to back) when ``loop=True`` (the
  default); with ``loop=False`` it raises `InvalidInput`. Music shorter than 0.5 s is refused.
  Longer music is trimmed. Fade-in/out are applied after trimming, at the video's ends.
* Voice-over: padded with silence or trimmed to the video length; the music is ducked under it
  with ``sidechaincompress`` and the two are mixed before normalisation.
* Loudness: two-pass, to -14 LUFS integrated with true peak <= -1 dBTP in the delivered AAC.
  Pass 1 runs the same audio graph into ``loudnorm=print_format=json`` (integrated loudness and
  true peak). Pass 2 (inside the rendition's single ffmpeg command) applies the correction:
  - when gain = target - measured keeps the measured true peak under -1.5 dBTP, one linear gain
    (``volume``): exactly what ``loudnorm`` linear mode does, without its 192 kHz resampling,
    and also for clips under 3 s, for which loudnorm reads LRA 0 and refuses linear mode;
  - otherwise (peaky music: kicks, plucks) gain + a look-ahead limiter (``alimiter``, ceiling
    -2.5 dBFS sample peak, leaving room for inter-sample and AAC overshoot). The limiter costs
    some loudness, so a second measurement of the limited chain corrects the gain once. We do not
    use loudnorm's dynamic mode here: on short clips (a few seconds) it missed the target by
    3-4 LU in our measurements.
  Measurements are cached by content key, so re-renders and variants skip them.
* Output: AAC-LC, 48 kHz, stereo.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from reelforge.core.errors import InvalidInput
from reelforge.core.storage import sha256_file

from .ffmpeg import ffmpeg_version, run_ffmpeg

TARGET_LUFS = -14.0
DELIVERED_TRUE_PEAK = -1.0  # what the file must measure
LOUDNORM_TP = -1.5  # what loudnorm aims for (AAC encoding adds a few tenths of a dB)
LOUDNORM_LRA = 20.0
SILENCE_DBFS = -60.0
MIN_MUSIC_SECONDS = 0.5
MAX_AUDIO_BYTES = 500 * 1024 * 1024
SAMPLE_RATE = 48000
LIMITER_CEILING_DB = -2.5
LIMITER = (
    f"alimiter=limit={10 ** (LIMITER_CEILING_DB / 20):.4f}:attack=5:release=80:level=0:latency=1"
)
AUDIO_BITRATE = "192k"

_ACCEPTED = {"wav", "mp3", "mp4", "m4a", "mov", "flac"}


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sha256: str
    container: str
    codec: str
    sample_rate: int
    channels: int
    duration: float
    peak_dbfs: float
    rms_dbfs: float


def _dbfs(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def _to_float(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if arr.dtype == np.int32:
        return arr.astype(np.float32) / 2147483648.0
    if arr.dtype == np.uint8:
        return (arr.astype(np.float32) - 128.0) / 128.0
    return arr.astype(np.float32, copy=False)


def probe_audio(path: str | os.PathLike[str], *, what: str = "music") -> AudioInfo:
    """Decode the whole file with PyAV; refuse corrupt, non-audio and silent files (one line).
    Results are memoised per process by (path, size, mtime)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"{what} file {p} does not exist; check the path")
    st = p.stat()
    return _probe_audio(str(p), st.st_size, st.st_mtime_ns, what)


@lru_cache(maxsize=64)
def _probe_audio(path: str, _size: int, _mtime_ns: int, what: str) -> AudioInfo:
    import av

    p = Path(path)
    if p.stat().st_size == 0:
        raise InvalidInput(f"{what} file {p.name} is empty; pass a WAV, MP3, M4A or FLAC track")
    if p.stat().st_size > MAX_AUDIO_BYTES:
        raise InvalidInput(f"{what} file {p.name} is larger than {MAX_AUDIO_BYTES >> 20} MB")
    peak = 0.0
    sq = 0.0
    n = 0
    try:
        with av.open(str(p)) as c:
            fmt = set(c.format.name.split(","))
            if not fmt & _ACCEPTED:
                raise InvalidInput(
                    f"{what} file {p.name} is {c.format.name}; use WAV, MP3, M4A or FLAC"
                )
            st = next((s for s in c.streams if s.type == "audio"), None)
            if st is None:
                raise InvalidInput(f"{what} file {p.name} has no audio stream")
            codec = st.codec_context.name
            rate = st.codec_context.sample_rate or 0
            channels = st.codec_context.channels or 0
            for frame in c.decode(st):
                a = _to_float(frame.to_ndarray())
                if a.size == 0:
                    continue
                peak = max(peak, float(np.max(np.abs(a))))
                sq += float(np.sum(a.astype(np.float64) ** 2))
                n += a.size
                rate = frame.sample_rate or rate
            samples_per_channel = n / max(channels, 1)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"{what} file {p.name} is corrupt or not audio ({exc.__class__.__name__}); re-export it as WAV/MP3/M4A/FLAC"
        ) from exc
    if n == 0 or rate == 0:
        raise InvalidInput(
            f"{what} file {p.name} decodes to no audio samples; it is corrupt or empty"
        )
    duration = samples_per_channel / rate
    peak_db = _dbfs(peak)
    rms_db = _dbfs(math.sqrt(sq / n))
    if peak_db < SILENCE_DBFS:
        raise InvalidInput(
            f"{what} file {p.name} is silent (peak {peak_db:.0f} dBFS); pass a track with audible sound"
        )
    return AudioInfo(
        path=str(p),
        sha256=sha256_file(p),
        container=c.format.name,
        codec=codec,
        sample_rate=int(rate),
        channels=int(channels),
        duration=float(duration),
        peak_dbfs=round(peak_db, 2),
        rms_dbfs=round(rms_db, 2),
    )


@dataclass(frozen=True)
class AudioSpec:
    """What the rendition's soundtrack is made of. ``music=None`` gives a silent AAC track."""

    music: str | None = None
    voice: str | None = None
    fade_in: float = 0.5
    fade_out: float = 1.0
    loop: bool = True
    target_lufs: float = TARGET_LUFS
    duck_ratio: float = 8.0
    duck_threshold: float = 0.03


@dataclass(frozen=True)
class Loudness:
    input_i: float
    input_tp: float
    input_lra: float
    input_thresh: float
    target_offset: float


@dataclass(frozen=True)
class AudioPlan:
    spec: AudioSpec
    duration: float
    music: AudioInfo | None
    voice: AudioInfo | None
    loudness: Loudness | None
    key: str  # content key of the finished soundtrack
    gain_db: float = 0.0
    limiter: bool = False

    def input_args(self) -> list[list[str]]:
        """ffmpeg input options, one list per input (music first, then voice)."""
        out: list[list[str]] = []
        if self.music is not None:
            loops = self.music.duration + 1e-3 < self.duration
            out.append([*(["-stream_loop", "-1"] if loops else []), "-i", self.music.path])
        if self.voice is not None:
            out.append(["-i", self.voice.path])
        return out

    def graph(self, first_input: int, *, out_label: str = "aout", measure: bool = False) -> str:
        """Filter-graph text producing ``[out_label]`` from inputs numbered from `first_input`."""
        d = f"{self.duration:.6f}"
        fmt = f"aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=stereo"
        if self.music is None:
            return f"anullsrc=r={SAMPLE_RATE}:cl=stereo,atrim=0:{d}[{out_label}]"
        s = self.spec
        fi = max(0.0, min(s.fade_in, self.duration / 2))
        fo = max(0.0, min(s.fade_out, self.duration / 2))
        chain = [f"[{first_input}:a]{fmt}", f"atrim=0:{d}", "asetpts=PTS-STARTPTS"]
        if fi > 0:
            chain.append(f"afade=t=in:st=0:d={fi:.3f}")
        if fo > 0:
            chain.append(f"afade=t=out:st={self.duration - fo:.6f}:d={fo:.3f}")
        parts = []
        if self.voice is None:
            parts.append(",".join(chain) + "[mus]")
            mix = "[mus]"
        else:
            vi = first_input + 1
            parts.append(",".join(chain) + "[mus]")
            parts.append(f"[{vi}:a]{fmt},apad,atrim=0:{d},asetpts=PTS-STARTPTS,asplit=2[vsc][vmix]")
            parts.append(
                f"[mus][vsc]sidechaincompress=threshold={s.duck_threshold}:ratio={s.duck_ratio}"
                f":attack=20:release=400[duck]"
            )
            parts.append("[duck][vmix]amix=inputs=2:duration=first:normalize=0[premix]")
            mix = "[premix]"
        if measure:
            ln = f"loudnorm=I={s.target_lufs}:TP={LOUDNORM_TP}:LRA={LOUDNORM_LRA}:print_format=json"
            pre = f"volume={self.gain_db:.3f}dB,{LIMITER}," if self.limiter else ""
            parts.append(f"{mix}{pre}{ln}[{out_label}]")
        else:
            lim = f",{LIMITER}" if self.limiter else ""
            parts.append(f"{mix}volume={self.gain_db:.3f}dB{lim},{fmt}[{out_label}]")
        return ";".join(parts)


def _parse_loudnorm_json(stderr: str) -> dict[str, str]:
    blocks = re.findall(r"\{[^{}]*\"input_i\"[^{}]*\}", stderr, flags=re.S)
    if not blocks:
        raise InvalidInput("loudness measurement failed: loudnorm printed no statistics")
    return json.loads(blocks[-1])


def _as_float(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return -math.inf


def plan_audio(
    spec: AudioSpec,
    duration: float,
    cache_dir: str | os.PathLike[str],
    *,
    nice: int | None = None,
) -> AudioPlan:
    """Validate the inputs and run loudness pass 1 (cached). Cheap to call again."""
    if duration <= 0:
        raise InvalidInput("video duration must be positive")
    music = probe_audio(spec.music, what="music") if spec.music else None
    voice = probe_audio(spec.voice, what="voice-over") if spec.voice else None
    if music is None and voice is not None:
        raise InvalidInput("a voice-over needs a music track to duck; pass --music as well")
    if music is not None:
        if music.duration < MIN_MUSIC_SECONDS:
            raise InvalidInput(
                f"music {Path(music.path).name} is {music.duration:.2f} s long; use at least {MIN_MUSIC_SECONDS} s"
            )
        if music.duration + 1e-3 < duration and not spec.loop:
            raise InvalidInput(
                f"music is {music.duration:.2f} s but the video is {duration:.2f} s; pass a longer track or allow looping"
            )
    key_src = json.dumps(
        {
            "spec": {k: v for k, v in asdict(spec).items() if k not in ("music", "voice")},
            "music": music.sha256 if music else None,
            "voice": voice.sha256 if voice else None,
            "duration": round(duration, 4),
            "tp": LOUDNORM_TP,
            "limiter": LIMITER,
            "lra": LOUDNORM_LRA,
            "ffmpeg": ffmpeg_version(),
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()
    plan = AudioPlan(spec=spec, duration=duration, music=music, voice=voice, loudness=None, key=key)
    if music is None:
        return plan
    cache = Path(cache_dir) / "loudness" / f"{key[:32]}.json"
    if cache.is_file():
        saved = json.loads(cache.read_text())
        m, gain, limiter = Loudness(**saved["loudness"]), saved["gain_db"], saved["limiter"]
    else:
        m = _measure(plan, nice)
        if not math.isfinite(m.input_i) or m.input_i < -70:
            raise InvalidInput(
                "the soundtrack is silent after trimming to the video; pick another track or offset"
            )
        gain = spec.target_lufs - m.input_i
        limiter = m.input_tp + gain > LOUDNORM_TP
        if limiter:
            gain = _solve_limited_gain(plan, gain, nice)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.part")
        tmp.write_text(json.dumps({"loudness": asdict(m), "gain_db": gain, "limiter": limiter}))
        os.replace(tmp, cache)
    return replace(plan, loudness=m, gain_db=round(float(gain), 3), limiter=bool(limiter))


def _solve_limited_gain(plan: AudioPlan, gain: float, nice: int | None, tol: float = 0.15) -> float:
    """The limiter takes loudness away non-linearly: find the gain whose limited output hits the
    target with a few secant steps (each an audio-only measurement, ~0.1 s for a short clip)."""
    target = plan.spec.target_lufs
    g0, i0 = gain, _measure(replace(plan, gain_db=gain, limiter=True), nice).input_i
    if abs(target - i0) <= tol:
        return g0
    g1 = g0 + (target - i0)
    for _ in range(4):
        i1 = _measure(replace(plan, gain_db=g1, limiter=True), nice).input_i
        if abs(target - i1) <= tol:
            break
        slope = (i1 - i0) / (g1 - g0) if g1 != g0 else 1.0
        slope = min(1.0, max(0.1, slope))
        g0, i0, g1 = g1, i1, min(g1 + (target - i1) / slope, gain + 18.0)
    return g1


def _measure(plan: AudioPlan, nice: int | None) -> Loudness:
    args: list[str] = []
    for ia in plan.input_args():
        args += ia
    args += ["-filter_complex", plan.graph(0, measure=True), "-map", "[aout]", "-f", "null", "-"]
    stderr, _ = run_ffmpeg(
        ["-v", "info", *args], what="loudness measurement", invalid_input=True, nice=nice
    )
    raw = _parse_loudnorm_json(stderr)
    return Loudness(
        input_i=_as_float(raw["input_i"]),
        input_tp=_as_float(raw["input_tp"]),
        input_lra=_as_float(raw["input_lra"]),
        input_thresh=_as_float(raw["input_thresh"]),
        target_offset=_as_float(raw["target_offset"]),
    )


def audio_encode_args() -> list[str]:
    return ["-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(SAMPLE_RATE), "-ac", "2"]
