"""Prometheus metrics: jobs by status, stage durations, GPU seconds, request latency.

Job and stage figures are read from PostgreSQL at scrape time, so every API process reports
the same truth, whichever process accepted a job or ran a stage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from db.lineage import gpu_seconds
from db.models import Activity, ActivityStatus
from db.session import session_scope

STAGE_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
_bucket_sql = ", ".join(
    f"count(*) FILTER (WHERE d <= {b}) AS b{i}" for i, b in enumerate(STAGE_BUCKETS)
)
STAGE_SQL = text(f"""
SELECT stage, count(*) AS n, coalesce(sum(d), 0) AS total, {_bucket_sql}
FROM (SELECT stage, extract(epoch FROM ended_at - started_at) AS d
      FROM activities WHERE ended_at IS NOT NULL AND status = 'succeeded') s
GROUP BY stage
""")
QUEUE_WAIT_SQL = text(f"""
SELECT count(*) AS n, coalesce(sum(d), 0) AS total, {_bucket_sql}
FROM (SELECT DISTINCT ON (flow_run_id) CAST(parameters->>'queue_wait_s' AS float8) AS d
      FROM activities WHERE flow_run_id IS NOT NULL AND parameters ? 'queue_wait_s'
      ORDER BY flow_run_id) w
""")
JOBS_SQL = text("SELECT kind, status, count(*) FROM video_jobs GROUP BY kind, status")
GPU_SQL = select(func.coalesce(func.sum(gpu_seconds()), 0)).where(
    Activity.stage == "generate", Activity.status == ActivityStatus.succeeded
)


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("reelforge_jobs", "API jobs by kind and status.", labels=["kind", "status"])  # fmt: skip
        stages = HistogramMetricFamily(
            "reelforge_stage_duration_seconds",
            "Durations of finished stage runs (lineage activities).",
            labels=["stage"],
        )
        gpu = CounterMetricFamily(
            "reelforge_gpu_seconds",
            "GPU time of finished generations (the generator's own timing per video).",
        )
        queue_wait = HistogramMetricFamily(
            "reelforge_queue_wait_seconds",
            "How long flow runs waited to start (due -> started), as lineage records it.",
        )
        up = GaugeMetricFamily("reelforge_metrics_database_up", "1 if the database answered.")
        try:
            with session_scope() as session:
                for kind, status, n in session.execute(JOBS_SQL):
                    jobs.add_metric([kind, status], n)
                for row in session.execute(STAGE_SQL):
                    m = row._mapping
                    stages.add_metric([m["stage"]], _buckets(m), float(m["total"]))
                gpu.add_metric([], float(session.scalar(GPU_SQL) or 0))
                waits = session.execute(QUEUE_WAIT_SQL).one()._mapping
                queue_wait.add_metric([], _buckets(waits), float(waits["total"]))
            up.add_metric([], 1)
        except Exception:
            up.add_metric([], 0)
        yield from (jobs, stages, gpu, queue_wait, up)


def _buckets(row: Any) -> list[tuple[str, float]]:
    """Cumulative histogram buckets from a row of ``count(*) FILTER (d <= bound)`` columns."""
    return [(str(b), row[f"b{i}"]) for i, b in enumerate(STAGE_BUCKETS)] + [("+Inf", row["n"])]


def build_registry() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    latency = Histogram(
        "reelforge_api_request_seconds",
        "API request latency.",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    )
    return registry, latency
