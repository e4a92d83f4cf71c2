"""Prometheus metrics: jobs by status, stage durations, GPU-seconds, request latency.

Job and stage figures are read from PostgreSQL at scrape time, so every API process reports
the same truth, whichever process accepted a job or ran a stage.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import text

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
JOBS_SQL = text("SELECT kind, status, count(*) FROM video_jobs GROUP BY kind, status")


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("reelforge_jobs", "API jobs by kind and status.", labels=["kind", "status"])  # fmt: skip
        stages = HistogramMetricFamily(
            "reelforge_stage_duration_seconds",
            "Durations of finished stage runs (lineage activities).",
            labels=["stage"],
        )
        gpu = CounterMetricFamily(
            "reelforge_gpu_seconds", "Seconds spent in the generate stage (GPU time)."
        )
        up = GaugeMetricFamily("reelforge_metrics_database_up", "1 if the database answered.")
        try:
            with session_scope() as session:
                for kind, status, n in session.execute(JOBS_SQL):
                    jobs.add_metric([kind, status], n)
                gpu_total = 0.0
                for row in session.execute(STAGE_SQL):
                    m = row._mapping
                    buckets = [(str(b), m[f"b{i}"]) for i, b in enumerate(STAGE_BUCKETS)]
                    buckets.append(("+Inf", m["n"]))
                    stages.add_metric([m["stage"]], buckets, float(m["total"]))
                    if m["stage"] == "generate":
                        gpu_total = float(m["total"])
                gpu.add_metric([], gpu_total)
            up.add_metric([], 1)
        except Exception:
            up.add_metric([], 0)
        yield from (jobs, stages, gpu, up)


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
