"""`chargeops demo`: the main job in one command, as clear stages with a progress display each.

database (DATABASE_URL or the embedded default) -> migrations -> sites and charge points ->
collector -> simulated fleet over real OCPP websockets -> Dagster: analytics, payments against a
local Stripe, predictive maintenance, reports -> summary. The fleet and the collector share a
simulated clock, so connection and heartbeat times follow network time, not the few minutes of
wall time the demo takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from chargeops.settings import Settings

if TYPE_CHECKING:  # the pipelines are imported lazily, when the demo reaches them
    from pipelines.runner import DagsterRunner


@dataclass
class DemoOptions:
    charge_points: int = 20
    days: float = 14
    seed: int = 42
    reset: bool | None = None  # None: reset only the embedded default database
    fleet_file: str | None = None
    end: date | None = None  # the last simulated day; None: yesterday (UTC)


def fleet_start(end: date, days: float) -> datetime:
    """The simulated period ends at midnight UTC after `end`: one seed and end date always give
    the same fleet, whatever day the demo runs."""
    return datetime.combine(end + timedelta(days=1), clock_time(0), tzinfo=UTC) - timedelta(
        days=days
    )


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def run_demo(settings: Settings, options: DemoOptions, console: Console | None = None) -> dict:
    from chargeops.completeness import DAILY_ASSETS, gaps, lines
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

    t = stage("1/10 database")
    embedded = not settings.database_url
    with console.status("starting the embedded PostgreSQL" if embedded else "connecting"):
        url = resolve_database_url(settings)
    console.print(
        f"database: {describe(url)}"
        + (f" (embedded, {settings.data_dir / 'pg'})" if embedded else "")
    )
    timings["database"] = time.perf_counter() - t

    t = stage("2/10 migrations")
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

    t = stage("3/10 sites and charge points")
    end = options.end or yesterday()
    if options.fleet_file:
        fleet = load_fleet(options.fleet_file)
        if options.end:
            fleet = dataclasses.replace(fleet, start=fleet_start(options.end, fleet.days))
    else:
        fleet = default_fleet(
            options.charge_points,
            days=options.days,
            seed=options.seed,
            start=fleet_start(end, options.days),
        )
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
    from chargeops.periods import record_data_start

    # the Dagster partitions start at the first simulated day (here and in `make ui`); a reset
    # cleared the raw tables, so what an earlier run recorded goes
    record_data_start(settings.data_dir, analytics_days(fleet.start, fleet.days)[0], replace=reset)
    timings["registry"] = time.perf_counter() - t

    t = stage("4/10 collector and simulated fleet")
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

    t = stage("5/10 analytics (Dagster)")
    days = analytics_days(fleet.start, fleet.days)
    from pipelines.runner import DagsterRunner

    dagster = DagsterRunner(url, settings, console)
    dagster.analytics(days)
    timings["analytics"] = time.perf_counter() - t

    t = stage("6/10 payments (local Stripe, reconciliation)")
    payments = run_payments(dagster, url, days, options.seed, console)
    timings["payments"] = time.perf_counter() - t

    t = stage("7/10 predictive maintenance")
    maintenance = run_maintenance(dagster, days, console)
    timings["maintenance"] = time.perf_counter() - t

    t = stage("8/10 reports")
    reports = dagster.reports(days)
    timings["reports"] = time.perf_counter() - t

    t = stage("9/10 operator dashboard")
    dashboards = dagster.dashboards(days)
    timings["dashboard"] = time.perf_counter() - t

    t = stage("10/10 summary")
    incomplete = gaps(url, days[0], days[-1], DAILY_ASSETS)
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
            "daily asset partitions ok": f"{len(days) * len(DAILY_ASSETS) - len(incomplete)}"
            f" / {len(days) * len(DAILY_ASSETS)}",
            "sessions reconstructed": q("SELECT count(*) FROM analytics.sessions"),
            "sessions priced (expected revenue)": q("SELECT count(*) FROM analytics.expected_revenue"),
            "mean port uptime (%)": round(q("SELECT coalesce(avg(uptime_pct), 0) FROM analytics.uptime_daily"), 2),
            "net CO2 saved (kg)": round(q("SELECT coalesce(sum(net_saving_g), 0) / 1000.0 FROM analytics.emissions_site_day"), 1),
            "Stripe payments synced": q("SELECT count(*) FROM stripe_payment_intent"),
            "reconciliation lines": q("SELECT count(*) FROM analytics.reconciliation_lines"),
            "reconciliation exceptions": q("SELECT count(*) FROM analytics.reconciliation_lines WHERE category <> 'matched'"),
            "reconciliation categories present": len(payments["categories"]),
            "maintenance PR-AUC model / baseline": " / ".join(
                f"{m['pr_auc']:.3f}" if m.get("pr_auc") is not None else "n/a"
                for m in (maintenance["model"], maintenance["baseline"])
            ),
            "connectors at risk (latest day)": at_risk_figure(q, maintenance["card"], days[-1]),
            "report files written": reports["files"],
            "operator dashboards written (day + week)": dashboards["dashboards"],
            "dashboards mailed": q("SELECT count(*) FROM dashboard_delivery"),
            "failed checks or runs": dagster.failures,
            "check warnings": len(dagster.warnings),
            "quarantined values (ingest / reconstruction)": f"{q('SELECT count(*) FROM quarantine')}"
            f" / {q('SELECT count(*) FROM analytics.quarantine')}",
        }  # fmt: skip
    table = Table(title="chargeops demo")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in figures.items():
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    console.print(table)
    if incomplete:
        console.print("[red]incomplete partitions (what depends on them did not run):")
        for line in lines(incomplete):
            console.print(f"[red]  {line}")
    else:
        console.print(f"every daily asset is complete for {days[0]}..{days[-1]}")
    total = time.perf_counter() - t_start
    console.print(
        f"Dagster UI: `chargeops --data-dir {settings.data_dir} ui` (`make ui` for the default "
        f"folder; DAGSTER_HOME={dagster.home}) shows these materialisations"
    )
    console.print(
        f"data: {describe(url)} (raw tables and schema analytics), local state in "
        f"{settings.data_dir}.  took {total:.0f} s "
        f"(simulation {timings['simulation']:.0f} s for {fleet.days:g} simulated days)"
    )
    timings["summary"] = time.perf_counter() - t
    return {
        "figures": figures,
        "timings": timings,
        "health": health,
        "summary": summary,
        "incomplete": incomplete,
        "days": days,
    }


def analytics_days(start, days: float) -> list:
    """The UTC days a simulated period touches."""
    from datetime import timedelta

    first = start.date()
    last = (start + timedelta(days=days) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Environment variables set for the block, then restored (or removed) as they were."""
    import os

    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_payments(dagster: DagsterRunner, url: str, days: list, seed: int, console: Console) -> dict:
    """A local server speaking Stripe's API, seeded with a payment per priced session and a share
    of realistic discrepancies; the real SDK syncs it (job `stripe_sync`), then every day is
    reconciled (job `reconciliation_daily`)."""
    from pipelines.payments.seed import seeded_local_stripe

    with seeded_local_stripe(url, seed=seed, discrepancy_share=0.1) as (server, truth):
        console.print(
            f"local Stripe at {server.base_url}: {truth.height} seeded payments and discrepancies"
        )
        # the code location's own StripeResource reads the key from STRIPE_API_KEY (a dg.EnvVar),
        # as a run launched from the UI does: a key passed as a value would be kept in the run's
        # snapshot in Dagster's storage
        with _environ(STRIPE_API_KEY=server.api_key, CHARGEOPS_STRIPE_API_BASE=server.base_url):
            dagster.run("Stripe sync", "stripe_sync", [("stripe_payments", None)])
    dagster.run("reconciliation", "reconciliation_daily", [(str(d), d.isoformat()) for d in days])
    from chargeops.db import connect

    with connect(url) as conn:
        rows = conn.execute(
            "SELECT category, count(*) FROM analytics.reconciliation_lines "
            "GROUP BY category ORDER BY count(*) DESC, category"
        ).fetchall()
    categories = dict(rows)
    console.print("reconciliation: " + ", ".join(f"{c} {n}" for c, n in categories.items()))
    exceptions = sorted(dagster.settings.reports_path.glob("*/reconciliation_exceptions.csv"))
    console.print(f"exceptions CSV: {len(exceptions)} files under {dagster.settings.reports_path}")
    return {"categories": categories}


def run_maintenance(dagster: DagsterRunner, days: list, console: Console) -> dict:
    """Maintenance features for every day, one training against the baseline (job
    `maintenance_weekly`), then a risk score per connector for every day (jobs
    `maintenance_features_daily` and `maintenance_scores_daily`: the halves of
    `maintenance_daily`, so every day has its features before the training)."""
    from models import artifacts

    daily = [(str(d), d.isoformat()) for d in days]
    dagster.run("features", "maintenance_features_daily", daily)
    dagster.run("training", "maintenance_weekly", [("maintenance_model", None)])
    dagster.run("scores", "maintenance_scores_daily", daily)
    store = dagster.resources()["model_store"]
    card = artifacts.load_card(store.path()) or {}
    metrics = card.get("metrics") or {}
    model, baseline = metrics.get("model") or {}, metrics.get("baseline") or {}
    if model.get("pr_auc") is not None and baseline.get("pr_auc") is not None:
        console.print(
            "holdout PR-AUC model {:.3f} vs baseline {:.3f}, ROC-AUC {:.3f} vs {:.3f}".format(
                model.get("pr_auc") or 0,
                baseline.get("pr_auc") or 0,
                model.get("roc_auc") or 0,
                baseline.get("roc_auc") or 0,
            )  # fmt: skip
        )
    for note in card.get("notes") or []:
        console.print(f"[dim]{note}")
    return {"model": model, "baseline": baseline, "card": card}


def at_risk_figure(q, card: dict, day) -> str:
    """How many connectors the dashboard lists at risk on `day`, and from which rule."""
    from reports.dashboard_data import at_risk_query, model_verdict

    source, _ = model_verdict(card or None)
    n = q(f"SELECT count(*) FROM ({at_risk_query(source, day)}) a")
    return f"{n} ({'model' if source == 'model' else 'baseline rule: faults in 7 days'})"
