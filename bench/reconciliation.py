"""Reconciliation benchmark: the pure matching (pipelines/payments/reconcile.py) on N sessions
of one day, each paid once, one in ten a cent short; prints the time of each step and the
categories. Asserts nothing; no database.

    .venv/bin/python bench/reconciliation.py [--sessions 50000]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: see bench/checks.py

from pipelines.payments import reconcile as logic  # noqa: E402


def frames(n: int, seed: int = 0) -> tuple[pl.DataFrame, logic.StripeFrames]:
    rng = random.Random(seed)
    at = datetime(2025, 5, 1, 12, tzinfo=UTC)
    ids = [f"s{i}" for i in range(n)]
    gross = [rng.randint(100, 5000) for _ in range(n)]
    short = [int(i % 10 == 0) for i in range(n)]
    expected = pl.DataFrame(
        {"session_id": ids, "site_id": [f"S{i % 50}" for i in range(n)], "currency": ["EUR"] * n,
         "minor_unit_exponent": [2] * n, "gross_amount": gross},
        schema=logic.EXPECTED,
    )  # fmt: skip
    pis = pl.DataFrame(
        {"id": [f"pi{i}" for i in range(n)], "created": [at] * n, "amount": gross,
         "amount_received": gross, "currency": ["eur"] * n, "status": ["succeeded"] * n,
         "session_id": ids, "site_id": ["S"] * n, "session_known": [True] * n},
        schema=logic.PAYMENT_INTENTS,
    )  # fmt: skip
    charges = pl.DataFrame(
        {"id": [f"ch{i}" for i in range(n)], "payment_intent": [f"pi{i}" for i in range(n)],
         "amount_captured": [g - s for g, s in zip(gross, short, strict=True)],
         "status": ["succeeded"] * n, "currency": ["eur"] * n},
        schema=logic.CHARGES,
    )  # fmt: skip
    bts = pl.DataFrame(
        {"id": [f"txn{i}" for i in range(n)], "source": [f"ch{i}" for i in range(n)],
         "fee": [30] * n, "net": [g - 30 - s for g, s in zip(gross, short, strict=True)],
         "payout": [None] * n, "currency": ["eur"] * n},
        schema=logic.BALANCE_TRANSACTIONS,
    )  # fmt: skip
    empty = logic.StripeFrames(
        pis, charges, pl.DataFrame(schema=logic.REFUNDS), pl.DataFrame(schema=logic.DISPUTES), bts
    )
    return expected, empty


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=50_000)
    n = ap.parse_args().sessions
    expected, stripe = frames(n)
    t0 = time.perf_counter()
    totals = logic.payment_totals(stripe)
    t1 = time.perf_counter()
    lines = logic.reconcile(expected, totals, date(2025, 5, 1))
    t2 = time.perf_counter()
    logic.site_day(lines)
    t3 = time.perf_counter()
    print(
        f"{n:,} sessions: payment totals {t1 - t0:.3f} s, matching {t2 - t1:.3f} s, "
        f"per-site totals {t3 - t2:.3f} s; {n / (t3 - t0):,.0f} sessions/s"
    )
    print("categories:", dict(lines["category"].value_counts().sort("category").iter_rows()))


if __name__ == "__main__":
    main()
