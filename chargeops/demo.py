"""`chargeops demo`: the main job in one command, as clear stages with a progress display each.

database (DATABASE_URL or the embedded default) -> migrations -> sites and charge points ->
collector -> simulated fleet over real OCPP websockets -> summary. The fleet and the collector
share a simulated clock, so connection and heartbeat times follow network time, not the few
minutes of wall time the demo takes. Later stages (Dagster materialisation, reports) join here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from chargeops.settings import Settings


@dataclass
class DemoOptions:
    charge_points: int = 20
    days: float = 14
    seed: int = 42
    reset: bool | None = None  # None: reset only the embedded default database
    fleet_file: str | None = None


def run_demo(settings: Settings, options: DemoOptions, console: Console | None = None) -> dict:
    from chargeops.db import RAW_TABLES, connect, describe, resolve_database_url, upgrade
    from ingest.clock import SimClock
    from ingest.registry import register_fleet
    from ingest.server import Collector
    from ingest.simulator import default_fleet, load_fleet, run_fleet

    console = console or Console()
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def stage(name: str):
        console.rule(f"[bold]{name}")
        return time.perf_counter()

    t = stage("1/6 database")
    embedded = not settings.database_url
    with console.status("starting the embedded PostgreSQL" if embedded else "connecting"):
        url = resolve_database_url(settings)
    console.print(
        f"database: {describe(url)}"
        + (f" (embedded, {settings.data_dir / 'pg'})" if embedded else "")
    )
    timings["database"] = time.perf_counter() - t

    t = stage("2/6 migrations")
    applied = upgrade(url, timescaledb=settings.timescaledb)
    console.print("applied " + ", ".join(applied) if applied else "schema up to date")
    reset = embedded if options.reset is None else options.reset
    with connect(url, autocommit=True) as conn:
        if reset:
            conn.execute(f"TRUNCATE {', '.join(RAW_TABLES)} CASCADE")
            console.print("cleared the raw tables of an earlier demo run")
        mode = conn.execute("SELECT chargeops_storage()").fetchone()[0]
    console.print(f"storage: {mode}")
    timings["migrations"] = time.perf_counter() - t

    t = stage("3/6 sites and charge points")
    if options.fleet_file:
        fleet = load_fleet(options.fleet_file)
    else:
        fleet = default_fleet(options.charge_points, days=options.days, seed=options.seed)
        # the collector validates every frame; the simulated chargers need not validate their
        # own, and 5-minute lockstep windows keep the shared clock well inside the 15-minute
        # heartbeat while cutting the number of round-trip barriers fivefold
        fleet = dataclasses.replace(fleet, validate_messages=False, batch_window_s=300)
    with connect(url) as conn:
        register_fleet(conn, fleet)
    versions = {
        v: sum(cp.ocpp_version == v for cp in fleet.charge_points) for v in ("1.6", "2.0.1")
    }
    console.print(
        f"{len(fleet.sites)} sites, {len(fleet.charge_points)} charge points "
        f"(OCPP 1.6J: {versions['1.6']}, 2.0.1: {versions['2.0.1']}), "
        f"{fleet.days:g} days from {fleet.start:%Y-%m-%d}, seed {fleet.seed}"
    )
    timings["registry"] = time.perf_counter() - t

    t = stage("4/6 collector and simulated fleet")
    clock = SimClock(fleet.start)
    collector_settings = settings.override(host="127.0.0.1", port=0, auto_register=True)

    async def simulate():
        async with Collector(collector_settings, url, clock=clock) as collector:
            console.print(f"collector listening on {collector.url()}/{{chargePointId}}")
            summary = await run_fleet(fleet, collector.url(), clock=clock, progress=True)
            await collector.writer.flush()
            return summary, collector.health()

    summary, health = asyncio.run(simulate())
    timings["simulation"] = time.perf_counter() - t

    t = stage("5/6 analytics (Dagster)")
    days = analytics_days(fleet.start, fleet.days)
    check_failures = materialise(url, settings.data_dir, days, console)
    timings["analytics"] = time.perf_counter() - t

    t = stage("6/6 summary")
    with connect(url) as conn:
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        figures = {
            "charge points": q("SELECT count(*) FROM charge_point"),
            "connectors": q("SELECT count(*) FROM connector WHERE connector_id > 0"),
            "OCPP messages (in + out)": q("SELECT count(*) FROM ocpp_message"),
            "meter values": q("SELECT count(*) FROM meter_value"),
            "sessions (transactions)": q("SELECT count(*) FROM transaction"),
            "sessions without a stop": q("SELECT count(*) FROM transaction WHERE stop_ts IS NULL"),
            "energy delivered (kWh)": round(
                q("""SELECT coalesce(sum(meter_stop_wh - meter_start_wh), 0) / 1000.0 FROM transaction
                     WHERE meter_stop_wh >= meter_start_wh"""), 1),
            "fault status events": q("SELECT count(*) FROM status_event WHERE status = 'Faulted'"),
            "late (offline-queued) messages": summary.late_messages,
            "CALLERRORs / unanswered": summary.errors,
            "analytics partitions materialised": len(days),
            "sessions reconstructed": q("SELECT count(*) FROM analytics.sessions"),
            "sessions priced (expected revenue)": q("SELECT count(*) FROM analytics.expected_revenue"),
            "mean port uptime (%)": round(q("SELECT coalesce(avg(uptime_pct), 0) FROM analytics.uptime_daily"), 2),
            "failed data-quality checks": check_failures,
        }  # fmt: skip
    table = Table(title="chargeops demo")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in figures.items():
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    console.print(table)
    total = time.perf_counter() - t_start
    console.print(
        f"Dagster UI: DAGSTER_HOME={dagster_home(settings.data_dir)} .venv/bin/dagster dev  "
        "(or `make ui`) shows these materialisations"
    )
    console.print(
        f"data: {describe(url)} (raw tables and schema analytics), local state in "
        f"{settings.data_dir}.  took {total:.0f} s "
        f"(simulation {timings['simulation']:.0f} s for {fleet.days:g} simulated days)"
    )
    timings["summary"] = time.perf_counter() - t
    return {"figures": figures, "timings": timings, "health": health, "summary": summary}


def analytics_days(start, days: float) -> list:
    """The UTC days a simulated period touches."""
    from datetime import timedelta

    first = start.date()
    last = (start + timedelta(days=days) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def dagster_home(data_dir) -> str:
    return str((data_dir / "dagster").resolve())


def materialise(url: str, data_dir, days: list, console: Console) -> int:
    """Materialise every analytics asset and check for each day, recorded in a persistent Dagster
    instance under the data folder so that `dagster dev` shows the runs. Returns failed checks."""
    import os
    import shutil
    from pathlib import Path

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    home = Path(dagster_home(data_dir))
    home.mkdir(parents=True, exist_ok=True)
    config = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if config.is_file() and not (home / "dagster.yaml").exists():
        shutil.copy(config, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)

    import dagster as dg

    from pipelines.assets import ASSETS
    from pipelines.checks import CHECKS
    from pipelines.resources import DatabaseResource

    failures = 0
    with dg.DagsterInstance.get() as instance, Progress(
        TextColumn("materialising"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[day]}"),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        task = progress.add_task("days", total=len(days), day="")
        for day in days:
            progress.update(task, day=str(day))
            result = dg.materialize(
                [*ASSETS, *CHECKS],
                partition_key=day.isoformat(),
                resources={"database": DatabaseResource(url=url)},
                instance=instance,
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            for evaluation in result.get_asset_check_evaluations():
                if not evaluation.passed:
                    failures += 1
                    console.print(f"[yellow]check {evaluation.check_name} failed for {day}")
            if not result.success:
                console.print(f"[red]analytics run for {day} failed")
                failures += 1
            progress.advance(task)
    return failures
