from __future__ import annotations

import hashlib

import av
import numpy as np
import pytest

from reelforge.core.errors import InvalidInput
from tasks.generate.generate import generate_clip, generate_clips, generation_cache_key, write_mp4


def test_generate_clip_writes_a_playable_mp4(tmp_path):
    out = tmp_path / "clip.mp4"
    req = {"prompt": "a red circle moves from left to right", "seed": 1}
    res = generate_clip(req, out)
    assert res.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert res.metadata.cache_key == generation_cache_key(req)
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        rate = c.streams.video[0].average_rate
    assert len(frames) == 17 and frames[0].shape == (64, 64, 3)
    assert float(rate) == pytest.approx(8.0)


def test_generate_clips_names_files_by_cache_key(tmp_path):
    reqs = [{"prompt": "a blue square moving up", "seed": s, "steps": 4} for s in (1, 2)]
    res = generate_clips(reqs, tmp_path)
    assert [r.path.name[:24] for r in res] == [r.metadata.cache_key[:24] for r in res]
    assert all(r.path.exists() for r in res)
    assert res[0].metadata.batch_size == 2


def test_bad_request_dict_is_invalid_input():
    with pytest.raises(InvalidInput, match="frames 20 is not of the form 4n\\+1"):
        generate_clip({"prompt": "x", "frames": 20})
    with pytest.raises(InvalidInput, match="nope: Extra inputs are not permitted"):
        generate_clip({"prompt": "x", "nope": 1})


def test_write_mp4_roundtrip(tmp_path):
    frames = np.zeros((5, 32, 48, 3), np.uint8)
    frames[:, :, :24] = (200, 30, 30)
    sha = write_mp4(frames, 10, tmp_path / "a.mp4")
    assert len(sha) == 64
    with av.open(str(tmp_path / "a.mp4")) as c:
        got = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(got) == 5 and got[0].shape == (32, 48, 3)
    assert abs(int(got[2][16, 5, 0]) - 200) < 12
