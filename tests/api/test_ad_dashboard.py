"""The dashboard shows an ad with its shots as a strip of thumbnails (a frame from the middle
of each shot, taken from the ad itself); other videos get no strip (no stack needed)."""

from __future__ import annotations

import re
import uuid

from reelforge.api.dashboard import TEMPLATES
from reelforge.api.ops_view import VideoCard, ad_shots

AD_MEDIA = {"shots": ["a", "b", "c", "d"], "starts": [0.0, 3.5, 7.0, 10.5, 14.0], "width": 720}


def test_an_ads_shots_are_the_middles_of_its_shots():
    assert ad_shots(AD_MEDIA) == [(1, 1.75), (2, 5.25), (3, 8.75), (4, 12.25)]
    assert ad_shots({"width": 1280, "duration": 2.1}) == []  # a video, not an ad
    assert ad_shots({"shots": ["a"], "starts": ["x", "y"]}) == []  # unreadable: no strip


def _card(**fields) -> VideoCard:
    return VideoCard(id=uuid.uuid4(), asset_id=uuid.uuid4(), flow_run_id=None, made_by="CLI",
                     prompt="", url="https://s3.example/ad.mp4?sig=1", thumbnail_url=None,
                     width=720, height=1280, duration=17.0, verdicts=[], **fields)  # fmt: skip


def test_the_videos_page_draws_a_strip_for_an_ad_only():
    html = TEMPLATES.get_template("videos.html").render(
        videos=[_card(shots=ad_shots(AD_MEDIA)), _card()], viewer=None
    )
    strips = re.findall(r'<div class="shots".*?</div>', html, flags=re.S)
    assert len(strips) == 1
    frames = re.findall(r'<video class="shot"[^>]*src="([^"]+)"', strips[0])
    assert frames == [f"https://s3.example/ad.mp4?sig=1#t={t}" for t in (1.75, 5.25, 8.75, 12.25)]
