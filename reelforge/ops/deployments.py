"""Prefect deployments: the video flow (gpu pool), campaigns on a cron schedule (cpu pool)
and personalised runs started by a ``reelforge.personalisation.requested`` event.

Deployments use module-path entrypoints (``flows.video.video_flow``): a worker imports the
installed package, so the same deployment runs on any machine with ReelForge installed,
with no code download step.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from reelforge.campaigns.spec import CampaignSpec, PersonalisationRequest
from reelforge.core.errors import InvalidInput
from reelforge.core.orchestration import ensure_work_pool, ready, video_deployment

PERSONALISATION_EVENT = "reelforge.personalisation.requested"


class DeploymentInfo(BaseModel):
    id: uuid.UUID
    name: str  # flow/deployment
    work_pool: str
    schedule: str | None = None
    trigger: str | None = None


def _apply(flow: Any, name: str, pool: str, **options: Any) -> uuid.UUID:
    from prefect.deployments.runner import EntrypointType

    ensure_work_pool(pool)
    deployment = flow.to_deployment(
        name=name,
        work_pool_name=pool,
        entrypoint_type=EntrypointType.MODULE_PATH,
        **options,
    )
    return deployment.apply()


def deploy_video() -> DeploymentInfo:
    """The video flow on the gpu pool (what campaigns on workers use)."""
    from flows.video import video_flow

    settings = ready()
    deployment_id = _apply(
        video_flow,
        settings.gpu_pool,
        settings.gpu_pool,
        description="One video: enhance, check, generate, grade, brand, check, publish.",
        tags=["reelforge"],
    )
    return DeploymentInfo(id=deployment_id, name=video_deployment(), work_pool=settings.gpu_pool)


def deploy_ad() -> uuid.UUID:
    """The ad flow on the gpu pool (storyboard ads submitted over the HTTP API)."""
    from flows.ad import ad_flow

    settings = ready()
    return _apply(
        ad_flow,
        f"ads-{settings.gpu_pool}",
        settings.gpu_pool,
        description="A storyboard ad: shots, transitions, end card, captions (docs/ads.md).",
        tags=["reelforge", "api"],
    )


def deploy_versions() -> uuid.UUID:
    """The versions flow on the gpu pool (video jobs with takes for a review, over HTTP)."""
    from flows.versions import versions_flow

    settings = ready()
    return _apply(
        versions_flow,
        f"versions-{settings.gpu_pool}",
        settings.gpu_pool,
        description="A job's takes, checked, previewed and scored for a review (docs/review.md).",
        tags=["reelforge", "api"],
    )


def deployment_name(spec: CampaignSpec) -> str:
    return f"{spec.tenant}-{spec.name}"


def deploy_campaign(spec: CampaignSpec) -> DeploymentInfo:
    """The campaign on its cron schedule (cpu pool); its videos go to the video deployment."""
    from prefect.schedules import Cron

    from flows.campaign import campaign_flow
    from reelforge.campaigns.report import register

    if spec.schedule is None:
        raise InvalidInput(
            f"campaign {spec.name} has no schedule: add schedule: {{cron: ..., timezone: ...}} "
            "or use `reelforge campaign run`"
        )
    settings = ready()
    deploy_video()
    register(spec)
    name = deployment_name(spec)
    deployment_id = _apply(
        campaign_flow,
        name,
        settings.cpu_pool,
        schedules=[Cron(spec.schedule.cron, timezone=spec.schedule.timezone)],
        parameters={"spec": spec.model_dump(mode="json"), "executor": "pool"},
        description=f"Campaign {spec.name} of {spec.tenant}: {len(spec.products)} products.",
        tags=["reelforge", f"tenant:{spec.tenant}"],
    )
    return DeploymentInfo(
        id=deployment_id,
        name=f"campaign/{name}",
        work_pool=settings.cpu_pool,
        schedule=f"{spec.schedule.cron} ({spec.schedule.timezone})",
    )


def campaign_resource(spec: CampaignSpec) -> str:
    return f"reelforge.campaign.{spec.tenant}.{spec.name}"


def deploy_personalise(spec: CampaignSpec) -> DeploymentInfo:
    """Personalised runs of a campaign, started by its personalisation events (gpu pool)."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    from flows.personalise import personalise_flow

    if spec.personalisation is None:
        raise InvalidInput(
            f"campaign {spec.name} has no personalisation section: add personalisation: "
            "{text: 'Hi {first_name}! ...'}"
        )
    settings = ready()
    name = deployment_name(spec)
    trigger = DeploymentEventTrigger(
        name=f"personalise-{name}",
        expect={PERSONALISATION_EVENT},
        match={"prefect.resource.id": campaign_resource(spec)},
        parameters={"request": "{{ event.payload }}"},
    )
    deployment_id = _apply(
        personalise_flow,
        name,
        settings.gpu_pool,
        parameters={"spec": spec.model_dump(mode="json")},
        triggers=[trigger],
        description=f"Personalised videos of campaign {spec.name} ({spec.tenant}).",
        tags=["reelforge", f"tenant:{spec.tenant}"],
    )
    return DeploymentInfo(
        id=deployment_id,
        name=f"personalise/{name}",
        work_pool=settings.gpu_pool,
        trigger=f"{PERSONALISATION_EVENT} on {campaign_resource(spec)}",
    )


async def _emit_all(events: list[Any]) -> None:
    from prefect.events.clients import get_events_client

    async with get_events_client() as client:
        for event in events:
            await client.emit(event)


def request_personalisation(
    spec: CampaignSpec, requests: list[PersonalisationRequest]
) -> list[uuid.UUID]:
    """Emit one personalisation event per request (delivered before this returns).

    The payload (user id, SKU, the user's fields) is stored in Prefect's event log: send only
    what the overlay needs."""
    from prefect.events import Event
    from prefect.utilities.asyncutils import run_coro_as_sync

    ready()
    resource = {"prefect.resource.id": campaign_resource(spec), "reelforge.tenant": spec.tenant}
    events = [
        Event(
            event=PERSONALISATION_EVENT,
            resource=resource,
            payload=request.model_dump(mode="json"),
        )
        for request in requests
    ]
    run_coro_as_sync(_emit_all(events))  # also from inside a running event loop
    return [event.id for event in events]
