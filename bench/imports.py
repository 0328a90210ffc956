"""Import benchmark: peak memory of `chargeops import chargepoint` against the file's size.

Generates ChargePoint-style session exports of the given sizes (2-hour sessions on many ports,
in a temporary folder), imports each with the CLI in a child process into a scratch database
(`chargeops_bench_imports`, emptied before each run) and prints the child's peak RSS
(`ru_maxrss` from wait4), its wall time and the ratio of peak RSS to file size. `--tree DIR`
runs another checkout's code (e.g. the commit before streaming, unpacked with `git archive`)
for a before/after comparison. Asserts nothing.

    .venv/bin/python bench/imports.py [--mb 20 200] [--tree /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project, not bench/ (bench/dagster.py would shadow `dagster`)

from chargeops.db import create_database, resolve_database_url, upgrade  # noqa: E402
from chargeops.settings import Settings  # noqa: E402

HEADER = (
    "Station Name,MAC Address,Org Name,Start Date,Start Time Zone,End Date,End Time Zone,"
    "Charging Time (hh:mm:ss),Energy (kWh),Port Type,Port Number,Plug Type,Address 1,City,"
    "Country,Ended By,Plug In Event Id,User ID,System S/N,Model Number"
)
STATIONS = 500  # x 2 ports; sessions follow each other on a port (2 h, then 1 h free)


def generate(path: Path, megabytes: float) -> int:
    """A file of about `megabytes` MB; returns its rows."""
    target = int(megabytes * 1e6)
    t0 = datetime(2024, 1, 1)
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        while f.tell() < target:
            station, port = n % STATIONS, 1 + (n // STATIONS) % 2
            start = t0 + timedelta(hours=3 * (n // (2 * STATIONS)))
            end = start + timedelta(hours=2)
            f.write(
                f"PALO ALTO CA / BENCH #{station},00:0D:6F:00:{station // 256:02X}:{station % 256:02X},"
                f"City of Palo Alto,{start:%m/%d/%Y %H:%M},UTC,{end:%m/%d/%Y %H:%M},UTC,"
                f"1:30:00,{5 + n % 20}.25,Level 2,{port},J1772,{station} Bench Ave,Palo Alto,"
                f"United States,Plug Out at Vehicle,{n},{n % 9000},1.21E+11,CT4020-HD-GW\n"
            )
            n += 1
    return n


def scratch_database() -> str:
    server = resolve_database_url(Settings())
    url = create_database(server, "chargeops_bench_imports", replace=True)
    upgrade(url)
    return url


def empty(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE meter_value, status_event, transaction, connector, evse, charge_point, "
            "site, import_batch CASCADE"
        )


def run_import(tree: Path, url: str, path: Path) -> tuple[float, float, int]:
    """(peak RSS MB, seconds, exit code) of `chargeops import chargepoint path` from `tree`."""
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(tree)}
    code = "import sys; from chargeops.cli import main; sys.exit(main(sys.argv[1:]))"
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "import", "chargepoint", str(path)],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.monotonic() - started, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[20, 200], help="file sizes (MB)")
    ap.add_argument("--tree", type=Path, default=ROOT, help="checkout whose code runs")
    args = ap.parse_args()
    url = scratch_database()
    print(f"code: {args.tree}")
    print(
        f"{'file MB':>8} {'rows':>9} {'peak RSS MB':>12} {'RSS/file':>9} {'seconds':>8} {'exit':>5}"
    )
    with tempfile.TemporaryDirectory(prefix="chargeops-bench-imports-") as tmp:
        for mb in args.mb:
            path = Path(tmp) / f"export_{mb:g}mb.csv"
            rows = generate(path, mb)
            size = path.stat().st_size / 1e6
            empty(url)
            rss, seconds, code = run_import(args.tree, url, path)
            print(f"{size:8.1f} {rows:9,} {rss:12.0f} {rss / size:9.2f} {seconds:8.1f} {code:5}")
            path.unlink()
    empty(url)


if __name__ == "__main__":
    main()
