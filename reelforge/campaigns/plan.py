"""Campaign planning and reporting (plain functions; the flow is flows/campaign.py).

A campaign is planned into one ``ProductPlan`` per product: its video jobs (one per
rendition) and a cache key over everything that decides its output (the jobs' contents,
brand files by their bytes, the model version and the pipeline's code digest). The product
task is cached on that key across runs, so a product whose inputs did not change is neither
generated nor published again; its earlier result (published URIs) comes back instead.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from reelforge.campaigns.spec import CampaignSpec
from reelforge.core.caching import digest, package_digest
from reelforge.core.jobs import VideoJob, VideoResult
from tasks.styles import find_style

Executor = Literal["local", "pool"]
PIPELINE_MODULES = (
    "flows.video",
    "tasks.inputs",
    "tasks.enhance.stage",
    "tasks.safety.stage",
    "tasks.generate.stage",
    "tasks.postprocess.stage",
    "tasks.publish.stage",
)


class ProductPlan(BaseModel):
    sku: str
    name: str
    jobs: list[VideoJob]
    cache_key: str
    versions: int = 1  # takes, with review (one review per product: docs/review.md)
    review: bool = False
    review_timeout: str | None = None


class ProductVideo(BaseModel):
    rendition: str
    asset_id: uuid.UUID
    uri: str
    sha256: str
    flow_run_id: uuid.UUID | None
    generation_cached: bool

    @classmethod
    def of(cls, job: VideoJob, result: VideoResult) -> ProductVideo:
        return cls(
            rendition=f"{job.aspect} {job.quality} {job.fps}fps",
            asset_id=result.video.asset_id,
            uri=result.video.uri,
            sha256=result.video.sha256,
            flow_run_id=result.flow_run_id,
            generation_cached=result.generation_cached,
        )


class ProductResult(BaseModel):
    sku: str
    name: str
    status: Literal["made", "cached", "would-make", "failed", "awaiting_review"]
    videos: list[ProductVideo] = Field(default_factory=list)
    error: str | None = None
    review_id: uuid.UUID | None = None  # review: required (published when it is approved)


class CampaignReport(BaseModel):
    campaign: str
    tenant: str
    dry_run: bool
    products: int
    made: int = 0
    cached: int = 0
    would_make: int = 0
    failed: int = 0
    videos: int = 0
    generated: int = 0
    gpu_seconds: float = 0.0  # of the generations this run made
    results: list[ProductResult]
    flow_run_id: uuid.UUID | None = None


def pipeline_digest() -> str:
    """Code version of everything a product's videos go through."""
    return digest(*(package_digest(module) for module in PIPELINE_MODULES))


def plan_products(spec: CampaignSpec, model_version: str) -> list[ProductPlan]:
    code = pipeline_digest()
    plans = []
    for product in spec.products:
        jobs = spec.jobs(product)
        # A style is keyed by its file, not its name: a name registered again makes new videos.
        styles = sorted({find_style(j.tenant, j.style).sha256 for j in jobs if j.style})
        review = {"versions": spec.versions, "review": spec.review is not None,
                  "review_timeout": spec.review_timeout}  # fmt: skip
        parts = (jobs, model_version, code, *styles, *([review] if review["review"] else []))
        key = f"product-{digest('product', *parts)}"
        plans.append(
            ProductPlan(sku=product.sku, name=product.name, jobs=jobs, cache_key=key, **review)
        )
    return plans


def summarise(
    spec: CampaignSpec, results: list[ProductResult], *, dry_run: bool, gpu_seconds: float = 0.0
) -> CampaignReport:
    made = [r for r in results if r.status == "made"]
    return CampaignReport(
        campaign=spec.name,
        tenant=spec.tenant,
        dry_run=dry_run,
        products=len(results),
        made=len(made),
        cached=sum(r.status == "cached" for r in results),
        would_make=sum(r.status == "would-make" for r in results),
        failed=sum(r.status == "failed" for r in results),
        videos=sum(len(r.videos) for r in results if r.status in ("made", "cached")),
        generated=sum(not v.generation_cached for r in made for v in r.videos),
        gpu_seconds=gpu_seconds,
        results=results,
    )


def report_rows(report: CampaignReport, presign) -> list[dict[str, str]]:
    """One row per video (or per product without videos), with a link to each published one."""
    rows = []
    for result in report.results:
        base = {"sku": result.sku, "name": result.name, "status": result.status}
        if not result.videos:
            rows.append(base | {"rendition": "", "link": "", "error": result.error or ""})
        for video in result.videos:
            link = presign(video.uri)
            rows.append(base | {"rendition": video.rendition, "link": link, "error": ""})
    return rows


def report_markdown(report: CampaignReport, rows: list[dict[str, str]]) -> str:
    head = (
        f"### Campaign {report.campaign} ({report.tenant})\n\n"
        f"{report.products} products: {report.made} made, {report.cached} from cache, "
        f"{report.failed} failed; {report.generated} clips generated"
        + (f"; dry run: {report.would_make} would be made" if report.dry_run else "")
        + "\n\n"
    )
    links = [
        f"- {row['sku']} {row['rendition']}: [video]({row['link']})" for row in rows if row["link"]
    ]
    return head + "\n".join(links)
