"""How fast a frozen database path becomes the spool path, and what a charger sees meanwhile.

An in-process collector reaches PostgreSQL through the tests' TCP proxy; a probe charger sends
MeterValues back to back. The path is frozen (no RST: bytes just stop), then thawed. Printed per
`db_timeout`: the longest wait for an answer after the freeze (seconds), the answers received in
the frozen window, the probe's p50/p99 before and while frozen and their ratio, and whether every
acknowledged message was then stored exactly once. Asserts nothing.

    .venv/bin/python bench/faults.py [--timeouts 2 5] [--frozen 12]

Uses DATABASE_URL's server (a scratch database is created there), or the embedded default.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)

from chargeops.db import create_database, drop_database, resolve_database_url, upgrade  # noqa: E402
from chargeops.settings import Settings  # noqa: E402
from ingest.server import Collector  # noqa: E402
from tests.netutil import RetryingChargePoint, meter_payload, proxied_url, proxy_for  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def one_run(url: str, db_timeout: float, frozen_s: float) -> dict:
    proxy = proxy_for(url)
    base = datetime.now(UTC).replace(microsecond=0)
    cp_id = f"FRZ-{uuid.uuid4().hex[:6]}"
    lat_before: list[float] = []
    lat_frozen: list[float] = []
    k = 0
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(port=0, auto_register=True, data_dir=Path(tmp), db_timeout=db_timeout)
        try:
            async with Collector(settings, proxied_url(url, proxy)) as col:
                cp = RetryingChargePoint(col.url(), cp_id)

                async def send(into: list[float]) -> None:
                    nonlocal k
                    t = time.perf_counter()
                    ts = (base + timedelta(seconds=k)).isoformat().replace("+00:00", "Z")
                    await cp.call("MeterValues", meter_payload(1, ts, float(k)), timeout=120)
                    into.append(time.perf_counter() - t)
                    k += 1

                end = time.monotonic() + 3
                while time.monotonic() < end:
                    await send(lat_before)
                proxy.freeze()
                end = time.monotonic() + frozen_s
                while time.monotonic() < end:
                    await send(lat_frozen)
                timeouts = col.health()["database_timeouts"]
                proxy.thaw()
                await col.writer.flush()
                for _ in range(300):
                    if col.health()["spool_segments"] == 0 and col.writer.online:
                        break
                    await asyncio.sleep(0.1)
                await cp.close()
        finally:
            proxy.close()
    with psycopg.connect(url) as conn:
        stored, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT ts) FROM meter_value WHERE charge_point_id = %s",
            (cp_id,),
        ).fetchone()
    return {
        "db_timeout": db_timeout,
        "first_answer_after_freeze_s": max(lat_frozen) if lat_frozen else float("nan"),
        "answers_while_frozen": len(lat_frozen),
        "p50_before_ms": 1000 * statistics.median(lat_before),
        "p99_before_ms": 1000 * _pct(lat_before, 0.99),
        "p50_frozen_ms": 1000 * statistics.median(lat_frozen) if lat_frozen else float("nan"),
        "database_timeouts": timeouts,
        "acked": k,
        "stored_once": stored == distinct == k,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeouts", type=float, nargs="+", default=[2.0, 5.0])
    ap.add_argument("--frozen", type=float, default=12.0, help="seconds the path stays frozen")
    args = ap.parse_args()
    server = resolve_database_url(Settings.from_env())
    name = f"chargeops_bench_faults_{uuid.uuid4().hex[:6]}"
    url = create_database(server, name)
    upgrade(url)
    try:
        for db_timeout in args.timeouts:
            r = asyncio.run(one_run(url, db_timeout, args.frozen))
            print(
                f"db_timeout {r['db_timeout']:.0f} s: frozen path -> spool after "
                f"{r['first_answer_after_freeze_s']:.2f} s; {r['answers_while_frozen']} answers in "
                f"{args.frozen:.0f} s frozen; p50 {r['p50_before_ms']:.1f} ms before, "
                f"{r['p50_frozen_ms']:.1f} ms frozen ({r['p50_frozen_ms'] / r['p50_before_ms']:.1f}x); "
                f"timeouts {r['database_timeouts']}; {r['acked']} acknowledged, stored exactly "
                f"once: {r['stored_once']}"
            )
    finally:
        drop_database(server, name)


if __name__ == "__main__":
    main()
