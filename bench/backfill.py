"""Backfill of imported history: the real ACN-Data JPL file imported into a scratch database,
then `analytics_daily` in process, twice over N days in one run: one run per day (as before) and
runs of a month of days each (`BackfillPolicy.multi_run`, as `chargeops backfill` and a Dagster
backfill now run it); then every day of the file (137) as `chargeops backfill` runs it (2 workers), with the runs'
events in memory and in the data folder's on-disk Dagster instance. Prints CPU and wall seconds
per day, the ratios, and the time a year of daily partitions (321, the issue's workplace site)
takes at the measured rate. Asserts nothing.

    .venv/bin/python bench/backfill.py [--days 10] [--no-all]

Uses DATABASE_URL's server (scratch database `chargeops_bench_backfill`) or the embedded default.
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
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)
ACN = ROOT.parent / "shared" / "data" / "acn-jpl-2021" / "acndata_sessions.json"
FIRST = date(2021, 6, 1)  # inside the file's span (2021-05-01 .. 2021-09-14)


YEAR = 321  # daily partitions of the workplace site's year (issue 17)
LAST = date(2021, 9, 14)


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the backfill's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed(run, days: list[date]) -> tuple[float, float]:
    cpu, wall = _cpu(), time.perf_counter()
    run(days)
    return (_cpu() - cpu) / len(days), (time.perf_counter() - wall) / len(days)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10, help="days per pass (default 10)")
    parser.add_argument(
        "--no-all", dest="all", action="store_false", help="skip the whole file's 137 days"
    )
    args = parser.parse_args()
    os.environ["CHARGEOPS_PARTITIONS_START"] = "2021-05-01"
    from chargeops.cli import main as cli
    from chargeops.db import create_database, drop_database, resolve_database_url, upgrade
    from chargeops.settings import Settings
    from pipelines.runner import DagsterRunner

    data = Path(tempfile.mkdtemp(prefix="chargeops-bench-backfill-"))
    server = os.environ.get("DATABASE_URL") or resolve_database_url(
        Settings(database_url=None, data_dir=data)
    )
    name = "chargeops_bench_backfill"
    drop_database(server, name)
    url = create_database(server, name)
    try:
        upgrade(url)
        os.environ["DATABASE_URL"] = url
        assert cli(["import", "acn", str(ACN)]) == 0
        runner = DagsterRunner(url, Settings(database_url=url, data_dir=data), ephemeral=True)
        runner.analytics([FIRST - timedelta(days=1)])  # warm: imports, first connections
        days = [FIRST + timedelta(days=i) for i in range(2 * args.days)]

        def one_per_day(ds: list[date]) -> None:
            runner.run("analytics", "analytics_daily", [(str(d), d.isoformat()) for d in ds])

        before = _timed(one_per_day, days[: args.days])
        after = _timed(runner.analytics, days[args.days :])
        for label, (cpu, wall) in (("a run per day", before), ("a run per range", after)):
            print(f"{label:>15}: {cpu:.3f} CPU s/day, {wall:.3f} wall s/day")
        print(
            f"ratio (per day / per range): CPU {before[0] / after[0]:.2f}x, "
            f"wall {before[1] / after[1]:.2f}x"
        )
        if args.all:
            every = [
                date(2021, 5, 1) + timedelta(days=i)
                for i in range((LAST - date(2021, 5, 1)).days + 1)
            ]
            # as `chargeops backfill` runs it: two workers (its default on two cores); first with
            # the runs' events in memory (the computation and Dagster's execution), then kept in
            # the data folder's Dagster instance, the SQLite event log `make ui` shows
            for label, ephemeral in (("events in memory", True), ("on-disk instance", False)):
                runner = DagsterRunner(
                    url, Settings(database_url=url, data_dir=data), ephemeral=ephemeral, workers=2
                )
                cpu, wall = _timed(runner.analytics, every)
                print(
                    f"all {len(every)} days, 2 workers, {label}: {wall * len(every):.1f} s wall "
                    f"({wall:.3f} s/day, {cpu:.3f} CPU s/day with the workers'); a year of {YEAR} "
                    f"daily partitions at this rate: {YEAR * wall / 60:.2f} min "
                    f"(goal 2 min: {120 / YEAR:.3f} s/day)"
                )
        print(f"runs: {runner.runs}; failed runs or checks: {runner.failures}")
    finally:
        drop_database(server, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
