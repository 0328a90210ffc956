"""The daily data-quality checks over a range of days: the real ACN-Data JPL file imported into a
scratch database, `analytics_daily` and `reconciliation_daily` run for N of its days (so every
checked table has its rows), then every daily check function timed on those days twice in one
process: (a) one call per day, as a single-partition run calls it, and (b) one call for the whole
range, as a backfill run of up to 31 days calls it. Prints CPU seconds per check-day for both and
the ratio (process_time). Asserts nothing.

    .venv/bin/python bench/checks.py [--days 10] [--repeat 3] [--keep] [--reuse]

`--keep` leaves the scratch database `chargeops_bench_checks` for a later `--reuse` (which skips
the import and the analytics). Uses DATABASE_URL's server or the embedded default.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (whose modules could shadow a package's name)
ACN = ROOT.parent / "shared" / "data" / "acn-jpl-2021" / "acndata_sessions.json"
FIRST = date(2021, 6, 1)  # inside the file's span (2021-05-01 .. 2021-09-14)
NAME = "chargeops_bench_checks"


def days_of(n: int) -> list[date]:
    return [FIRST + timedelta(days=i) for i in range(n)]


def fill(url: str, data: Path, days: list[date]) -> None:
    """Import the ACN file (its rows as if received live), price its site, run the daily
    analytics and the reconciliation (no Stripe payments: every line is an exception) for
    `days`."""
    import psycopg

    from chargeops.cli import main as cli
    from chargeops.db import upgrade
    from chargeops.settings import Settings
    from pipelines.runner import DagsterRunner

    upgrade(url)
    os.environ["DATABASE_URL"] = url
    assert cli(["import", "acn", str(ACN)]) == 0
    with psycopg.connect(url, autocommit=True) as conn:
        # the import stamps its rows as received now: received live instead, so the raw checks
        # (which read what arrived in a day) have each day's rows
        for table in ("meter_value", "status_event"):
            conn.execute(f"UPDATE {table} SET received_at = ts")
        # a price, so sessions have revenue and the reconciliation lines
        conn.execute(
            """INSERT INTO tariff (tariff_id, site_id, currency, energy_price_per_kwh, tax_rate,
                   prices_include_tax, valid_from) SELECT site_id || '-std', site_id, 'USD',
                   0.30, 0.0725, true, '2021-01-01+00' FROM site"""
        )
    runner = DagsterRunner(url, Settings(database_url=url, data_dir=data), ephemeral=True)
    runner.analytics(days)
    runner.run("reconciliation", "reconciliation_daily", [(str(d), d.isoformat()) for d in days])


def check_functions() -> list:
    """Every plain check function of a daily asset: (url, days) -> {day: AssetCheckResult}."""
    import pipelines.definitions  # noqa: F401  (defines every check)
    from pipelines.quality import DAILY_CHECK_FUNCTIONS

    return list(DAILY_CHECK_FUNCTIONS)


def rows(url: str, days: list[date]) -> dict[str, int]:
    import psycopg

    tables = ["sessions", "utilisation_hourly", "uptime_daily", "energy_connector_day",
              "expected_revenue", "emissions_session_day", "reconciliation_lines"]  # fmt: skip
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(
                f"SELECT count(*) FROM analytics.{t} WHERE day BETWEEN %s AND %s",
                (days[0], days[-1]),
            ).fetchone()[0]
            for t in tables
        }


def time_checks(url: str, days: list[date], repeat: int) -> list[tuple[str, float, float, int]]:
    """Per check: (name, CPU s per check-day calling it per day, ... calling it once for the
    range, the days it fails)."""
    out = []
    for fn in check_functions():
        failed = sum(not r.passed for r in fn(url, days).values())  # warm: suites built
        per_day = whole = 0.0
        for _ in range(repeat):
            cpu = time.process_time()
            for d in days:
                fn(url, [d])
            per_day += time.process_time() - cpu
            cpu = time.process_time()
            fn(url, days)
            whole += time.process_time() - cpu
        n = repeat * len(days)
        out.append((fn.__name__.removeprefix("check_"), per_day / n, whole / n, failed))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10, help="days checked (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--reuse", action="store_true", help="use a kept scratch database")
    args = parser.parse_args()
    os.environ["CHARGEOPS_PARTITIONS_START"] = "2021-05-01"
    from chargeops.db import create_database, drop_database, resolve_database_url, with_database
    from chargeops.settings import Settings

    data = Path(tempfile.mkdtemp(prefix="chargeops-bench-checks-"))
    server = os.environ.get("DATABASE_URL") or resolve_database_url(
        Settings(database_url=None, data_dir=data)
    )
    days = days_of(args.days)
    if args.reuse:
        url = with_database(server, NAME)
    else:
        drop_database(server, NAME)
        url = create_database(server, NAME)
    try:
        if not args.reuse:
            fill(url, data, days)
        print(f"{len(days)} days {days[0]}..{days[-1]}; rows: {rows(url, days)}")
        results = time_checks(url, days, args.repeat)
        width = max(len(r[0]) for r in results)
        print(
            f"{'check':<{width}}  per-day call  range call  ratio  failing days"
            "  (CPU ms per check-day)"
        )
        for name, a, b, failed in results:
            print(
                f"{name:<{width}}  {1000 * a:12.1f}  {1000 * b:10.1f}  {a / b:5.1f}x  {failed:12}"
            )
        a = sum(r[1] for r in results)
        b = sum(r[2] for r in results)
        print(
            f"{'all ' + str(len(results)):<{width}}  {1000 * a:12.1f}  {1000 * b:10.1f}  "
            f"{a / b:5.1f}x  ({a:.3f} vs {b:.3f} CPU s per day for every check)"
        )
    finally:
        if not args.keep:
            drop_database(server, NAME)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
