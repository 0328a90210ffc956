"""The long robustness sweep: tests/sweep.py's dates with more seeds, longer windows and bigger
fleets. Prints, per end date, the combinations, sessions, problems found, wall and CPU seconds,
and CPU seconds per simulated charger-day (this process: simulator, collector and Dagster; the
PostgreSQL server's own CPU is not in it), a unit that stays comparable on a noisy machine;
exits 1 if any invariant failed. Needs a PostgreSQL: $DATABASE_URL, else the embedded default.

    .venv/bin/python bench/sweep.py [--seeds 6] [--days 7] [--per-fleet 4] [--dates 0,1,2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: see bench/checks.py

from chargeops.db import create_database, drop_database, resolve_database_url, upgrade  # noqa: E402
from chargeops.settings import Settings  # noqa: E402
from tests import sweep  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=6, help="seeds per end date")
    ap.add_argument("--days", type=float, default=7, help="simulated days per combination")
    ap.add_argument("--per-fleet", type=int, default=4, help="charge points per seed")
    ap.add_argument("--dates", help="indexes into tests/sweep.py DATES (default: all)")
    args = ap.parse_args()
    dates = sweep.DATES
    if args.dates:
        dates = [sweep.DATES[int(i)] for i in args.dates.split(",")]
    server = os.environ.get("DATABASE_URL") or resolve_database_url(
        Settings(database_url=None, data_dir=Path(".data"))
    )
    total_problems = 0
    print(f"{'end date':10} {'combos':>6} {'sessions':>8} {'problems':>8} {'wall s':>7} "
          f"{'cpu s':>7} {'cpu s / charger-day':>19}  why")  # fmt: skip
    for end, why in dates:
        name = f"chargeops_sweep_{uuid.uuid4().hex[:8]}"
        url = create_database(server, name)
        try:
            upgrade(url)
            combos = [c for c in sweep.combos(seeds_per_date=args.seeds) if c.end == end]
            wall, cpu = time.perf_counter(), time.process_time()
            with tempfile.TemporaryDirectory() as tmp:
                out = sweep.run_date(
                    url, Path(tmp), end, combos, days=args.days, per_fleet=args.per_fleet
                )
                problems = sweep.invariants(url, out)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            drop_database(server, name)
        charger_days = len(combos) * args.per_fleet * args.days
        total_problems += len(problems)
        print(
            f"{end!s:10} {len(combos):>6} {out.truth.height:>8} {len(problems):>8} {wall:>7.1f} "
            f"{cpu:>7.1f} {cpu / charger_days:>19.3f}  {why}"
        )
        for p in problems[:10]:
            print(f"    {p}")
    print("every invariant held" if not total_problems else f"{total_problems} problems")
    return 1 if total_problems else 0


if __name__ == "__main__":
    sys.exit(main())
