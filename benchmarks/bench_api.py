"""Load benchmark of POST /v1/videos: 1,000 submissions against one API process.

Starts `reelforge serve --no-dispatch` (jobs stay queued: nothing is generated), sends the
submissions from an httpx async load generator with bounded concurrency, then checks that
every accepted job exists in the database. Tenants have a bound of waiting jobs, so some
answers are the intended 429s.

    .venv/bin/python benchmarks/bench_api.py [--requests 1000] [--concurrency 16] [--tenants 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _load(url: str, keys: list[str], n: int, concurrency: int) -> list[tuple[int, float, str | None]]:  # fmt: skip
    import httpx

    sem = asyncio.Semaphore(concurrency)
    out: list[tuple[int, float, str | None]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def one(i: int) -> None:
            key = keys[i % len(keys)]
            body = {"prompt": f"a red ball number {i} rolls to the left", "seed": i}
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/videos", json=body, headers={"Authorization": f"Bearer {key}"})  # fmt: skip
                    job = r.json().get("id") if r.status_code == 202 else None
                    out.append((r.status_code, time.perf_counter() - t0, job))
                except httpx.HTTPError as exc:
                    out.append((0, time.perf_counter() - t0, type(exc).__name__))

        await asyncio.gather(*(one(i) for i in range(n)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--max-queued", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to edit")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    import httpx
    from sqlalchemy import delete, func, select

    from db.models import JobRecord
    from db.session import session_scope
    from reelforge.api.keys import create_key

    tenants = []
    with session_scope() as session:
        for _ in range(args.tenants):
            key, record = create_key(session, f"bench-{uuid.uuid4().hex[:10]}")
            tenants.append((key, record.tenant_id))
    port = _port()
    env = {**os.environ, "REELFORGE_API_MAX_QUEUED": str(args.max_queued)}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "reelforge"),
            "serve",
            "--port",
            str(port),
            "--no-dispatch",
        ],
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        asyncio.run(_load(url, [k for k, _ in tenants], 50, args.concurrency))  # warm-up
        with session_scope() as session:
            session.execute(delete(JobRecord).where(JobRecord.tenant_id.in_([t for _, t in tenants])))  # fmt: skip
        started = time.perf_counter()
        results = asyncio.run(_load(url, [k for k, _ in tenants], args.requests, args.concurrency))
        wall = time.perf_counter() - started
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(20)
    accepted = [job for code, _, job in results if code == 202]
    codes: dict[int, int] = {}
    for code, _, _ in results:
        codes[code] = codes.get(code, 0) + 1
    lat = sorted(t for _, t, _ in results)
    lat_ok = sorted(t for code, t, _ in results if code == 202)
    p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    with session_scope() as session:
        ids = [uuid.UUID(j) for j in accepted]
        found = session.scalar(select(func.count()).select_from(JobRecord).where(JobRecord.id.in_(ids)))  # fmt: skip
        total = session.scalar(
            select(func.count())
            .select_from(JobRecord)
            .where(JobRecord.tenant_id.in_([t for _, t in tenants]))
        )
        session.execute(delete(JobRecord).where(JobRecord.tenant_id.in_([t for _, t in tenants])))  # fmt: skip
    unexpected = {c: n for c, n in codes.items() if c not in (202, 429)}
    lines = [
        f"- {args.requests} POST /v1/videos, {args.concurrency} concurrent, {args.tenants} tenants "
        f"(bound {args.max_queued} waiting jobs each), one `reelforge serve --no-dispatch` process",
        f"- p50 {p(lat, 0.5):.1f} ms, p95 {p(lat, 0.95):.1f} ms, p99 {p(lat, 0.99):.1f} ms, "
        f"max {lat[-1] * 1000:.1f} ms (all answers); accepted only: p95 {p(lat_ok, 0.95):.1f} ms "
        f"(goal: p95 < 50 ms)",
        f"- throughput {args.requests / wall:.0f} requests/s ({wall:.2f} s in all); mean "
        f"{statistics.mean(lat) * 1000:.1f} ms",
        f"- answers: {', '.join(f'{c}: {n}' for c, n in sorted(codes.items()))}; unexpected: "
        f"{unexpected or 'none'}",
        f"- nothing lost: {found} of {len(accepted)} accepted jobs are in the database "
        f"({total} rows for these tenants in all)",
    ]
    print("\n".join(lines))
    if args.json:
        result = {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "tenants": args.tenants,
            "p50_ms": round(p(lat, 0.5), 2),
            "p95_ms": round(p(lat, 0.95), 2),
            "p99_ms": round(p(lat, 0.99), 2),
            "p95_accepted_ms": round(p(lat_ok, 0.95), 2) if lat_ok else None,
            "requests_per_s": round(args.requests / wall, 1),
            "codes": {str(c): n for c, n in sorted(codes.items())},
            "unexpected": sum(unexpected.values()),
            "accepted": len(accepted),
            "found": found,
            "total_rows": total,
        }
        args.json.write_text(json.dumps(result, indent=1))
    from benchmarks.machine import machine_line
    from reelforge.core.reports import DEFAULT_PATH, write_section

    command = (
        f"Command: `python -m benchmarks.bench_api --requests {args.requests} "
        f"--concurrency {args.concurrency} --tenants {args.tenants} "
        f"--max-queued {args.max_queued}`"
    )
    write_section(
        "api-submissions",
        "\n".join(["## HTTP API: job submissions", "", machine_line(), "", command, "", *lines]),
        path=args.out or DEFAULT_PATH,
    )
    if unexpected or found != len(accepted) or total != len(accepted):
        sys.exit(1)


if __name__ == "__main__":
    main()
