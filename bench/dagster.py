"""A partition and a backfill launched from the Dagster UI against the same work in process. On
one scratch database holding the real ACN-Data JPL file (`chargeops import acn`):

  (a) one `analytics_daily` partition in process (`DagsterRunner.analytics`, after a warm-up;
      the median of --repeat runs), its events recorded in an instance as `chargeops backfill`
      does (and, for reference, in memory);
  (b) the same partition launched through the GraphQL API of a running `dg dev` (tmp
      DAGSTER_HOME, DATABASE_URL set), as the UI's Materialize does, from submit to success
      (the median of --repeat launches);
  (c) a backfill of N days (default 30) of the job's assets launched the same way
      (launchPartitionBackfill, run by the daemon), from submit to the end of its last run;
  (d) the in-process loop over the same N days (`DagsterRunner.analytics`, as `chargeops
      backfill` runs it);

and prints the times and the ratios against the goals: one partition <= 2x in-process + 5 s, the
backfill <= 1.5x the in-process loop. Also the code location's import time and dg dev's time to a
loaded location. Asserts nothing.

    .venv/bin/python bench/dagster.py [--days 30] [--repeat 3] [--skip-backfill]

Uses DATABASE_URL's server (scratch database `chargeops_bench_dagster`) or the embedded default.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# run as a script, this file's folder is first on sys.path, where its name would shadow `dagster`
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
ACN = ROOT.parent / "shared" / "data" / "acn-jpl-2021" / "acndata_sessions.json"
FIRST = date(2021, 6, 1)  # inside the file's span (2021-05-01 .. 2021-09-14)
JOB = "analytics_daily"


def _import_seconds() -> float:
    """A fresh interpreter's `import pipelines.definitions` (what each run process pays)."""
    code = "import time; t = time.perf_counter(); import pipelines.definitions; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values) + " s"


def received_earlier(url: str, hours: int = 2) -> None:
    """The imported rows as received `hours` ago. Received just now, they are late data for every
    imported day, and the late-data sensor (on by default, looking back an hour on its first
    tick) would queue a run per day ahead of what the bench launches."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("meter_value", "status_event", "transaction_event"):
            conn.execute(
                f"UPDATE {table} SET received_at = received_at - make_interval(hours => %s)",
                (hours,),
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days of the backfill (default 30)")
    parser.add_argument("--skip-backfill", action="store_true", help="only (a) and (b)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b) (median)")
    parser.add_argument(
        "--instance", type=Path, help="dagster.yaml to use (default: deploy/dagster.yaml)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the tmp folder (dg dev's log)")
    args = parser.parse_args()
    os.environ["CHARGEOPS_PARTITIONS_START"] = "2021-05-01"
    from chargeops.cli import main as cli
    from chargeops.db import create_database, drop_database, resolve_database_url, upgrade
    from chargeops.settings import Settings
    from chargeops.ui import DevServer, dev_command
    from pipelines.runner import DagsterRunner

    tmp = Path(tempfile.mkdtemp(prefix="chargeops-bench-dagster-"))
    data = tmp / "data"
    server = os.environ.get("DATABASE_URL") or resolve_database_url(
        Settings(database_url=None, data_dir=data)
    )
    name = "chargeops_bench_dagster"
    drop_database(server, name)
    url = create_database(server, name)
    figures: dict[str, float] = {}
    try:
        upgrade(url)
        os.environ["DATABASE_URL"] = url
        assert cli(["import", "acn", str(ACN)]) == 0
        received_earlier(url)
        figures["import"] = _import_seconds()
        print(f"import pipelines.definitions in a fresh process: {figures['import']:.1f} s")

        # (a) and (d): in process, as `chargeops backfill` runs them (the run events recorded
        # in an instance under the data folder, as the UI's are), and with the events in memory
        settings = Settings(database_url=url, data_dir=data)
        runners = {"recorded": DagsterRunner(url, settings), "in memory": None}
        runners["in memory"] = DagsterRunner(url, settings, ephemeral=True)
        days = [FIRST + timedelta(days=i) for i in range(args.days)]
        for label, runner in runners.items():
            runner.analytics([FIRST - timedelta(days=1)])  # warm: imports, first connections
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                runner.analytics([FIRST])
                times.append(time.perf_counter() - t)
            figures.setdefault("a", statistics.median(times))
            print(
                f"(a) one partition in process, events {label}: median "
                f"{statistics.median(times):.1f} s of {_list(times)}"
            )
            if not args.skip_backfill:
                t = time.perf_counter()
                runner.analytics(days)
                figures.setdefault("d", time.perf_counter() - t)
                print(
                    f"(d) {args.days} days in process, events {label}: "
                    f"{time.perf_counter() - t:.1f} s"
                )
            print(f"in-process failures ({label}): {runner.failures}")

        # (b) and (c): through the UI's GraphQL API
        home = tmp / "dagster"
        home.mkdir()
        if args.instance:
            shutil.copyfile(args.instance, home / "dagster.yaml")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DATABASE_URL": url,
            "CHARGEOPS_DATA_DIR": str(data),
        }
        print(
            f"starting {' '.join(Path(c).name for c in dev_command()[:2])} (log {tmp / 'dev.log'})"
        )
        with DevServer(env, tmp / "dev.log", timeout=300) as ui:
            figures["load"] = ui.load_seconds
            print(f"dev server: code location {ui.location!r} loaded in {ui.load_seconds:.1f} s")
            stopped, terminated = ui.pause_automation()
            print(
                f"automation turned off for the bench: {len(stopped)} schedules and sensors, "
                f"{terminated} runs they had requested terminated"
            )
            times, runs, waits = [], [], []
            for _ in range(args.repeat):
                submit = time.time()
                run = ui.wait_run(ui.launch_partition(JOB, FIRST.isoformat()))
                times.append(time.time() - submit)
                runs.append((run["endTime"] or 0) - (run["startTime"] or 0))
                waits.append((run["startTime"] or submit) - submit)
                assert run["status"] == "SUCCESS", run
            figures["b"] = statistics.median(times)
            print(
                f"(b) one partition through GraphQL, submit to success: median "
                f"{figures['b']:.1f} s of {_list(times)} (queued and starting {_list(waits)}, "
                f"the run's own start to end {_list(runs)})"
            )
            if not args.skip_backfill:
                assets = ui.job_assets(JOB)
                submit = time.time()
                backfill_id = ui.launch_backfill(assets, [d.isoformat() for d in days])
                done = ui.wait_backfill(backfill_id, timeout=4 * 3600)
                figures["c"] = done["last_run_end"] - submit
                # from the first run's creation: what is left once Dagster's backfill daemon,
                # which looks for new backfills every 30 s (a constant of dagster 1.13), took it
                figures["c_run"] = done["last_run_end"] - min(
                    r["creationTime"] or submit for r in done["runs"]
                )
                statuses = sorted({r["status"] for r in done["runs"]})
                created = min(r["creationTime"] or submit for r in done["runs"])
                started = min(r["startTime"] or created for r in done["runs"])
                print(
                    f"(c) {args.days}-day backfill of {len(assets)} assets through GraphQL: "
                    f"{figures['c']:.1f} s submit to the end of its last run, "
                    f"{len(done['runs'])} runs ({', '.join(statuses)}): the daemon's backfill "
                    f"loop made the first run after {created - submit:.1f} s, queued and started "
                    f"in {started - created:.1f} s, runs {done['last_run_end'] - started:.1f} s; "
                    f"the backfill said {done['status']} after {done['over_at'] - submit:.1f} s"
                )
    finally:
        drop_database(server, name)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    goal_b = 2 * figures["a"] + 5
    print(
        f"one partition: UI {figures['b']:.1f} s vs in process (recorded) {figures['a']:.1f} s = "
        f"{figures['b'] / figures['a']:.1f}x; goal <= 2x + 5 s = {goal_b:.1f} s: "
        f"{'met' if figures['b'] <= goal_b else 'missed'}"
    )
    if "c" in figures:
        ratio = figures["c"] / figures["d"]
        print(
            f"{args.days}-day backfill: UI {figures['c']:.1f} s vs in-process loop (recorded) "
            f"{figures['d']:.1f} s = {ratio:.2f}x; goal <= 1.5x: {'met' if ratio <= 1.5 else 'missed'}"
        )
        print(
            f"{args.days}-day backfill from its first run's creation (after the daemon's loop): "
            f"{figures['c_run']:.1f} s = {figures['c_run'] / figures['d']:.2f}x the in-process loop"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
