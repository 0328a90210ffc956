"""Stripe ingestion benchmark: N sessions' payments seeded into the local Stripe server, then a
full sync with the real SDK (pages of 100) into PostgreSQL, then an incremental re-sync with
nothing new; prints objects, requests, wall time and objects per second. Asserts nothing.

    .venv/bin/python bench/stripe_sync.py [--sessions 5000]

Uses DATABASE_URL's server (scratch database `chargeops_bench_stripe`) or the embedded default.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)

from chargeops.db import create_database, resolve_database_url, upgrade  # noqa: E402
from chargeops.settings import Settings  # noqa: E402
from pipelines.payments.local_stripe import LocalStripe  # noqa: E402
from pipelines.payments.seed import seed_payments  # noqa: E402
from pipelines.payments.sync import StripeConfig, run_sync  # noqa: E402


def sessions(n: int) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "session_id": [f"BCP-{i % 500:04d}:{i}" for i in range(n)],
            "charge_point_id": [f"BCP-{i % 500:04d}" for i in range(n)],
            "transaction_id": [str(i) for i in range(n)],
            "site_id": [f"S{i % 40}" for i in range(n)],
            "currency": [("EUR", "GBP", "USD", "JPY")[i % 4] for i in range(n)],
            "gross_amount": [800 + (i * 37) % 4000 for i in range(n)],
            "end_ts": [start + timedelta(minutes=3 * i) for i in range(n)],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=5000)
    args = parser.parse_args()
    server_url = resolve_database_url(Settings.from_env())
    url = create_database(server_url, "chargeops_bench_stripe", replace=True)
    upgrade(url)
    with LocalStripe() as server:
        t = time.perf_counter()
        seed_payments(server, sessions(args.sessions), seed=1, discrepancy_share=0.1)
        seeded = time.perf_counter() - t
        config = StripeConfig(api_key=server.api_key, api_base=server.base_url)
        t = time.perf_counter()
        full = run_sync(url, config, progress=False)
        full_s = time.perf_counter() - t
        full_requests = len(server.requests)
        t = time.perf_counter()
        again = run_sync(url, config, progress=False)
        again_s = time.perf_counter() - t
    objects = sum(full.upserted.values())
    print(f"sessions: {args.sessions}, seeded in {seeded:.2f} s")
    print(f"full sync: {objects} objects {full.upserted}")
    print(f"  {full_requests} requests, {full_s:.2f} s, {objects / full_s:,.0f} objects/s")
    print(
        f"re-sync (nothing new, 3-day overlap): {sum(again.upserted.values())} objects, "
        f"{len(server.requests) - full_requests} requests, {again_s:.2f} s"
    )


if __name__ == "__main__":
    main()
