"""Lineage queries on a generated graph of ~1,000,000 assets.

    python -m benchmarks.bench_lineage [--chains 166667] [--samples 1000]

Builds the graph server-side (generate_series) in a separate database on the configured
PostgreSQL, then times the real query functions in db.lineage: the upstream chain of a
published video, the downstream impact of a LUT, and of a (canary) model version.
Goal: p95 under 5 ms for the upstream chain of a published video.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from benchmarks.machine import machine_line
from db import lineage
from db.migrate import upgrade_head
from reelforge.core.reports import DEFAULT_PATH, write_section
from reelforge.core.settings import get_settings

BENCH_DB = "reelforge_bench"
LUTS, LOGOS, TRACKS = 200, 50, 20
CANARY_EVERY = 1000  # one chain in 1000 uses the canary model version

BUILD_SQL = [
    "INSERT INTO tenants (id, slug, name) VALUES (:tenant, 'bench', 'bench')",
    # Shared inputs: one checkpoint per model version, LUTs, logos, music.
    """INSERT INTO assets (tenant_id, kind, sha256, size_bytes, uri, media_type, media)
       SELECT :tenant, k.kind, md5(k.kind || g) || md5(g || k.kind), 1000, 's3://b/' || k.kind || g,
              'application/octet-stream', jsonb_build_object('n', g)
       FROM (VALUES ('lut', :luts), ('logo', :logos), ('music', :tracks), ('model_checkpoint', 2))
            AS k(kind, n), generate_series(1, k.n) g""",
    """CREATE TEMP TABLE chain AS SELECT g AS i,
         gen_random_uuid() AS prompt, gen_random_uuid() AS enhanced, gen_random_uuid() AS clip,
         gen_random_uuid() AS r1, gen_random_uuid() AS r2, gen_random_uuid() AS thumb,
         gen_random_uuid() AS a_enh, gen_random_uuid() AS a_gen, gen_random_uuid() AS a_post,
         1 + g % :luts AS lut, 1 + g % :logos AS logo, 1 + g % :tracks AS music,
         CASE WHEN g % :canary = 0 THEN 2 ELSE 1 END AS model
       FROM generate_series(1, :chains) g""",
    """CREATE TEMP TABLE shared AS SELECT kind, (media->>'n')::int AS n, id FROM assets
       WHERE kind IN ('lut', 'logo', 'music', 'model_checkpoint')""",
    """INSERT INTO assets (id, tenant_id, kind, sha256, size_bytes, uri, media_type)
       SELECT x.id, :tenant, x.kind, md5(x.tag || c.i) || md5(c.i || x.tag), 1000,
              's3://b/' || x.id, 'video/mp4'
       FROM chain c CROSS JOIN LATERAL (VALUES
         (c.prompt, 'prompt', 'p'), (c.enhanced, 'enhanced_prompt', 'e'), (c.clip, 'raw_clip', 'c'),
         (c.r1, 'rendition', 'r1'), (c.r2, 'rendition', 'r2'), (c.thumb, 'thumbnail', 't'))
         AS x(id, kind, tag)""",
    """INSERT INTO activities (id, tenant_id, stage, code_version, model_version, status,
                               started_at, ended_at)
       SELECT x.id, :tenant, x.stage, 'bench', x.model, 'succeeded', now(), now()
       FROM chain c CROSS JOIN LATERAL (VALUES
         (c.a_enh, 'enhance', NULL), (c.a_gen, 'generate', 'wan2.2-v' || c.model),
         (c.a_post, 'postprocess', NULL)) AS x(id, stage, model)""",
    """INSERT INTO generated (asset_id, activity_id)
       SELECT x.a, x.b FROM chain c CROSS JOIN LATERAL (VALUES (c.enhanced, c.a_enh),
         (c.clip, c.a_gen), (c.r1, c.a_post), (c.r2, c.a_post), (c.thumb, c.a_post)) AS x(a, b)""",
    """INSERT INTO used (activity_id, asset_id, role)
       SELECT x.act, x.asset, x.role FROM chain c
       JOIN shared l ON l.kind = 'lut' AND l.n = c.lut
       JOIN shared lg ON lg.kind = 'logo' AND lg.n = c.logo
       JOIN shared m ON m.kind = 'music' AND m.n = c.music
       JOIN shared ck ON ck.kind = 'model_checkpoint' AND ck.n = c.model
       CROSS JOIN LATERAL (VALUES (c.a_enh, c.prompt, 'prompt'), (c.a_gen, c.enhanced, 'prompt'),
         (c.a_gen, ck.id, 'model'), (c.a_post, c.clip, 'input'), (c.a_post, l.id, 'lut'),
         (c.a_post, lg.id, 'logo'), (c.a_post, m.id, 'music')) AS x(act, asset, role)""",
    # Derivations follow from used x generated, exactly as record_activity writes them.
    """INSERT INTO derived_from (asset_id, source_id, activity_id, role)
       SELECT g.asset_id, u.asset_id, u.activity_id, u.role
       FROM used u JOIN generated g ON g.activity_id = u.activity_id""",
    """INSERT INTO safety_verdicts (tenant_id, asset_id, gate, passed, policy_version)
       SELECT :tenant, r, 'visual', true, 'bench' FROM chain c, LATERAL (VALUES (c.r1), (c.r2)) v(r)""",
    """UPDATE assets SET published_at = now(), published_uri = 's3://pub/' || id
       WHERE kind = 'rendition'""",
    "ANALYZE",
]


def _percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return statistics.median(ordered), p95


def _time(fn, args: list) -> tuple[float, float, int]:
    samples, sizes = [], []
    for arg in args:
        start = time.perf_counter()
        result = fn(arg)
        samples.append((time.perf_counter() - start) * 1000)
        sizes.append(len(result))
    p50, p95 = _percentiles(samples)
    return p50, p95, int(statistics.median(sizes))


def _drop(url, create: bool = False) -> None:
    admin = dict(host=url.host, port=url.port, user=url.username, password=url.password)
    with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def _build(url, bench_url: str, chains: int):
    _drop(url, create=True)
    upgrade_head(bench_url)
    engine = create_engine(bench_url)
    tenant = uuid.uuid4()
    params = dict(
        tenant=tenant, luts=LUTS, logos=LOGOS, tracks=TRACKS, chains=chains, canary=CANARY_EVERY
    )
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in BUILD_SQL:
            conn.execute(text(statement), params)
    return engine, tenant, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=166_667, help="6 assets per chain")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=DEFAULT_PATH, help="BENCHMARKS.md to edit")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument(
        "--keep-db", action="store_true", help=f"keep the {BENCH_DB} database afterwards"
    )
    args = parser.parse_args()

    url = make_url(get_settings().sqlalchemy_url)
    bench_url = url.set(database=BENCH_DB).render_as_string(hide_password=False)
    engine, tenant, build_s = _build(url, bench_url, args.chains)

    with Session(engine) as session:
        assets = session.scalar(text("SELECT count(*) FROM assets"))
        edges = session.scalar(text("SELECT count(*) FROM derived_from"))
        videos = list(session.scalars(text("SELECT id FROM assets WHERE published_at IS NOT NULL")))
        luts = list(session.scalars(text("SELECT id FROM assets WHERE kind = 'lut'")))
        rng = random.Random(0)
        sample_videos = rng.sample(videos, min(args.samples, len(videos)))
        sample_luts = rng.sample(luts, min(50, len(luts)))
        # Warm the cache as a long-running API process would be.
        for video in sample_videos[:50]:
            lineage.upstream(session, video)
        up = _time(lambda v: lineage.upstream(session, v), sample_videos)
        down = _time(lambda a: lineage.downstream(session, a), sample_luts)
        canary = _time(
            lambda m: lineage.downstream_of_model(session, tenant, m), ["wan2.2-v2"] * 20
        )
    engine.dispose()
    if not args.keep_db:
        _drop(url)

    rows = [
        ("upstream chain of a published video", up, "p95 < 5 ms"),
        ("downstream impact of a LUT", down, "-"),
        ("downstream impact of a canary model version", canary, "-"),
    ]
    table = "\n".join(
        f"| {name} | {p50:.2f} | {p95:.2f} | {nodes} | {goal} | "
        + ("met" if goal.startswith("p95") and p95 < 5 else ("missed" if goal != "-" else "-"))
        + " |"
        for name, (p50, p95, nodes), goal in rows
    )
    markdown = f"""## Lineage queries (issue 2)

Machine: {machine_line()}. PostgreSQL: embedded 18 (default settings).
Graph: {assets:,} assets, {edges:,} derived-from edges, built in {build_s:.0f} s.
Command: `python -m benchmarks.bench_lineage --chains {args.chains} --samples {args.samples}`

| query | p50 ms | p95 ms | nodes returned (median) | goal | |
|---|---|---|---|---|---|
{table}
"""
    print(markdown)
    if args.json:
        result = {
            "assets": assets,
            "edges": edges,
            "build_s": round(build_s, 1),
            "chains": args.chains,
            "samples": len(sample_videos),
        }
        for key, (p50, p95, nodes) in (("upstream", up), ("downstream_lut", down),
                                        ("downstream_model", canary)):  # fmt: skip
            result[key] = {"p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "nodes": nodes}
        args.json.write_text(json.dumps(result, indent=1))
    if not args.no_write:
        write_section("lineage", markdown, path=args.out)


if __name__ == "__main__":
    main()
