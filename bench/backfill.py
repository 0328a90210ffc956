"""Backfill of imported history: the real ACN-Data JPL file imported into a scratch database,
then `analytics_daily` for N of its days in process (as `chargeops backfill` runs it), twice in
one run: each ADBC read opening its own connection (as before) and reusing the process's idle
ones (`chargeops.frames.connect`). Prints CPU and wall seconds per day, connections opened per
day, and the ratios. Asserts nothing.

    .venv/bin/python bench/backfill.py [--days 6]

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
sys.path.insert(0, str(ROOT))
ACN = ROOT.parent / "shared" / "data" / "acn-jpl-2021" / "acndata_sessions.json"
FIRST = date(2021, 6, 1)  # inside the file's span (2021-05-01 .. 2021-09-14)


class _NoReuse(dict):
    """An idle pool that keeps nothing: every `connect` opens a connection (the old way)."""

    def setdefault(self, key, default=None):
        return []


def _days(runner, days: list[date]) -> tuple[float, float, int]:
    from chargeops import frames

    opened = frames.OPENED["connections"]
    cpu, wall = time.process_time(), time.perf_counter()
    runner.analytics(days)
    return (
        (time.process_time() - cpu) / len(days),
        (time.perf_counter() - wall) / len(days),
        (frames.OPENED["connections"] - opened) // len(days),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6, help="days per pass (default 6)")
    args = parser.parse_args()
    os.environ["CHARGEOPS_PARTITIONS_START"] = "2021-05-01"
    from chargeops import frames
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
        pooled = frames._idle
        frames._idle = _NoReuse()
        before = _days(runner, days[: args.days])
        frames._idle = pooled
        after = _days(runner, days[args.days :])
        for label, (cpu, wall, opened) in (("one per read", before), ("reused", after)):
            print(
                f"{label:>13}: {cpu:.2f} CPU s/day, {wall:.2f} wall s/day, "
                f"{opened} connections opened/day"
            )
        print(
            f"ratio (one per read / reused): CPU {before[0] / after[0]:.2f}x, "
            f"wall {before[1] / after[1]:.2f}x; at the reused rate a year (365 days) takes "
            f"{365 * after[1] / 60:.1f} min, the 2-minute goal needs {120 / 365:.2f} s/day"
        )
        print(f"failed runs or checks: {runner.failures}")
    finally:
        drop_database(server, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
