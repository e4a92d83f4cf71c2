"""Personalised runs: one user's request (an event's payload) -> that user's video.

    user request -> the product's job with the user's overlay -> video flow

The video flow reuses the shared parts (the generated clip and the graded, branded base
come from the caches) and renders only this user's overlay on top.
"""

from __future__ import annotations

from prefect import flow

from flows.video import video_flow
from reelforge.campaigns.spec import CampaignSpec, PersonalisationRequest, personal_job
from reelforge.core.jobs import VideoResult
from reelforge.core.orchestration import RESULTS_BLOCK, claim_process


@flow(
    name="personalise",
    persist_result=True,
    result_storage=RESULTS_BLOCK,
    on_running=[claim_process],
)
def personalise_flow(spec: CampaignSpec, request: PersonalisationRequest) -> VideoResult:
    return video_flow(personal_job(spec, request))
