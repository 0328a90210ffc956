"""The robustness sweep: the simulated fleet over real OCPP, then every asset through the code
location's jobs (as the demo runs them), for many (seed, end date) combinations with faults,
missing stops, meter resets and offline periods at their maximum, and the invariants checked
against the asset tables, the raw rows, the simulator's ground truth and the written files.

Each combination simulates 1.5 days ending at midnight after its end date: the end date whole
(the clock change, the leap day, 1 January) and the afternoon before it.

Combinations: for each end date in DATES (both European and both US clock changes, a new year,
a leap day, an ordinary day), SEEDS_PER_DATE seeds, each its own small fleet with its own
charger ids, simulated one after the other into one database; then each day of the date's
window is materialised once for all of them. The test (`tests/test_robustness_sweep.py`) runs
the short version; `bench/sweep.py` runs longer windows and more seeds.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl
import psycopg
from rich.console import Console

from chargeops.completeness import DAILY_ASSETS, gaps
from chargeops.demo import analytics_days, fleet_start, run_maintenance, run_payments
from chargeops.frames import read_table
from chargeops.settings import Settings
from ingest.clock import SimClock
from ingest.registry import register_fleet
from ingest.server import Collector
from ingest.simulator import default_fleet, run_fleet

# (end date, why it is here)
DATES = [
    (date(2026, 3, 8), "US clocks go forward (second Sunday of March)"),
    (date(2026, 3, 29), "European clocks go forward (last Sunday of March)"),
    (date(2026, 10, 25), "European clocks go back (last Sunday of October)"),
    (date(2026, 11, 1), "US clocks go back (first Sunday of November)"),
    (date(2026, 1, 1), "a new year: 31 December and 1 January"),
    (date(2024, 2, 29), "a leap day"),
]
SEEDS_PER_DATE = 4
# at their maximum: probabilities at 1 (every session of the first seed of a date loses its stop,
# half of the others' do, so both kinds are checked), rates at several per charger and day
# (the day before each date is an ordinary day)
FAULTS = {
    "fault_rate_per_day": 4.0,
    "offline_rate_per_day": 4.0,
    "reboot_rate_per_day": 2.0,
    "meter_reset_prob": 1.0,
    "failed_start_prob": 0.3,
}


@dataclass(frozen=True)
class Combo:
    seed: int
    end: date
    missing_stop_prob: float


@dataclass
class Outcome:
    end: date
    days: list[date]
    combos: list[Combo]
    failures: list[str]
    warnings: list[str]
    truth: pl.DataFrame  # the simulator's sessions of every combo of the date
    reports: Path
    problems: list[str] = field(default_factory=list)
    dashboard_day: date | None = None  # the daily dashboard's (local) day


def combos(dates=DATES, seeds_per_date: int = SEEDS_PER_DATE) -> list[Combo]:
    out = []
    for i, (end, _) in enumerate(dates):
        for k in range(seeds_per_date):
            out.append(
                Combo(seed=1000 + 17 * i + k, end=end, missing_stop_prob=1.0 if k == 0 else 0.5)
            )
    return out


def fleet_of(combo: Combo, index: int, days: float, per_fleet: int):
    """A small fleet: `per_fleet` charger templates (rotating with `index`, so a date's four seeds
    together cover US, British and German sites, AC and DC, 1.6 and 2.0.1), ids suffixed with
    the seed so several seeds share one database."""
    base = default_fleet(9, days=days, seed=combo.seed, start=fleet_start(combo.end, days))
    chosen = [cp for i, cp in enumerate(base.charge_points) if i % 4 == index % 4][:per_fleet]
    cps = [
        dataclasses.replace(cp, charge_point_id=f"{cp.charge_point_id}-{combo.seed}")
        for cp in chosen
    ]
    sites = {cp.site_id for cp in cps}
    return dataclasses.replace(
        base,
        charge_points=cps,
        sites=[s for s in base.sites if s.site_id in sites],
        missing_stop_prob=combo.missing_stop_prob,
        validate_messages=False,
        batch_window_s=600,  # inside the 15-minute heartbeat and the 30-minute offline timeout
        **FAULTS,
    ).validate()


def truth_frame(summaries) -> pl.DataFrame:
    rows = [
        {
            "charge_point_id": s.charge_point_id,
            "start_ts": s.start.replace(microsecond=0),
            "energy_wh": float(s.energy_wh),
            "missing_stop": s.missing_stop,
            "has_stop": s.stop is not None,
        }
        for summary in summaries
        for s in summary.sessions
    ]
    schema = {"charge_point_id": pl.String, "start_ts": pl.Datetime("us", "UTC"),
              "energy_wh": pl.Float64, "missing_stop": pl.Boolean, "has_stop": pl.Boolean}  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def run_date(
    url: str,
    data_dir: Path,
    end: date,
    date_combos: list[Combo],
    *,
    days: float = 1.5,
    per_fleet: int = 2,
    console: Console | None = None,
) -> Outcome:
    """Simulate every combo of one end date, then run every stage as the demo does."""
    from pipelines.resources import DashboardResource
    from pipelines.runner import DagsterRunner

    console = console or Console(quiet=True)
    settings = Settings(database_url=url, data_dir=data_dir, auto_register=True)
    fleets = [fleet_of(combo, i, days, per_fleet) for i, combo in enumerate(date_combos)]
    with psycopg.connect(url) as conn:
        for fleet in fleets:
            register_fleet(conn, fleet)

    async def simulate(fleet):
        # each seed its own collector and simulated clock; the seeds run side by side
        clock = SimClock(fleet.start)
        collector_settings = settings.override(host="127.0.0.1", port=0)
        async with Collector(collector_settings, url, clock=clock) as collector:
            summary = await run_fleet(fleet, collector.url(), clock=clock, progress=False)
            await collector.writer.flush()
            return summary

    async def simulate_all():
        return await asyncio.gather(*(simulate(f) for f in fleets))

    summaries = asyncio.run(simulate_all())
    first = fleet_of(date_combos[0], 0, days, per_fleet)
    window = analytics_days(first.start, days)
    dagster = DagsterRunner(url, settings, console, ephemeral=True)
    dagster.analytics(window)
    run_payments(dagster, url, window, date_combos[0].seed, console)
    run_maintenance(dagster, window, console)
    dagster.reports(window)
    # one audience (the whole network) keeps the PNG rendering to one set of charts per period
    recipients = data_dir / "recipients.yaml"
    recipients.write_text(
        "operators:\n  - name: Sweep network\n    sites: all\n    to: [ops@example.com]\n"
    )
    written = dagster.dashboards(
        window, dashboard_recipients=DashboardResource(recipients_file=str(recipients))
    )
    errors = sum(s.errors for s in summaries)
    failures = list(dagster.failed) + ([f"{errors} OCPP errors"] if errors else [])
    return Outcome(
        end=end,
        days=window,
        combos=date_combos,
        failures=failures,
        warnings=list(dagster.warnings),
        truth=truth_frame(summaries),
        reports=settings.reports_path,
        dashboard_day=written["day"],
    )


# -- invariants -----------------------------------------------------------------------------------
def invariants(url: str, out: Outcome) -> list[str]:
    """What must hold after every combination; each problem as one line (empty: all hold)."""
    from tests import readback

    problems: list[str] = []
    first, last = out.days[0], out.days[-1]
    between = f"day BETWEEN '{first}' AND '{last}'"
    problems += [f"run or blocking check failed: {f}" for f in out.failures]
    problems += [
        f"incomplete: {g.asset} {g.day} {g.detail}" for g in gaps(url, first, last, DAILY_ASSETS)
    ]
    sessions = read_table(
        url,
        f"""SELECT s.session_id, s.charge_point_id, s.start_ts, s.end_ts, s.energy_wh,
                   s.energy_source, s.end_source, s.missing_stop, s.meter_reset,
                   s.quarantined_steps, s.failed_attempt, s.duration_min,
                   t.meter_stop_wh - t.meter_start_wh AS meter_wh
            FROM analytics.sessions s JOIN transaction t USING (charge_point_id, transaction_id)
            WHERE s.{between}""",
        {"session_id": pl.String, "charge_point_id": pl.String, "start_ts": pl.Datetime("us", "UTC"),
         "end_ts": pl.Datetime("us", "UTC"), "energy_wh": pl.Float64, "energy_source": pl.String,
         "end_source": pl.String, "missing_stop": pl.Boolean, "meter_reset": pl.Boolean,
         "quarantined_steps": pl.Int32, "failed_attempt": pl.Boolean, "duration_min": pl.Float64,
         "meter_wh": pl.Float64},
    )  # fmt: skip
    # every simulated session that started in the window is a session, once
    d0 = pl.datetime(first.year, first.month, first.day, time_zone="UTC")
    d1 = pl.datetime(last.year, last.month, last.day, time_zone="UTC") + pl.duration(days=1)
    truth = out.truth.filter(pl.col("start_ts").is_between(d0, d1, closed="left"))
    if sessions.height != truth.height:
        problems.append(f"{sessions.height} sessions reconstructed, {truth.height} simulated")
    bad_end = sessions.filter(pl.col("end_ts") < pl.col("start_ts"))
    problems += [f"session {r} ends before it starts" for r in bad_end["session_id"]]
    zero = sessions.filter((pl.col("duration_min") == 0) & ~pl.col("failed_attempt"))
    problems += [f"zero-length session {r} not flagged" for r in zero["session_id"]]
    # session energy = register rises: the meter's difference where the chain is clean, else the
    # sum of the register's rises (recomputed here in SQL)
    meter = sessions.filter(pl.col("energy_source") == "meter")
    off = meter.filter((pl.col("energy_wh") - pl.col("meter_wh")).abs() > 1e-6)
    problems += [f"session {r} energy is not meter stop - start" for r in off["session_id"]]
    rises = read_table(
        url,
        f"""WITH s AS (SELECT charge_point_id, transaction_id, session_id, start_ts
                       FROM analytics.sessions WHERE {between} AND energy_source = 'samples'
                         AND quarantined_steps = 0),
             chain AS (
               SELECT s.session_id, 0 AS ord, t.start_ts AS ts, t.meter_start_wh AS value
               FROM s JOIN transaction t USING (charge_point_id, transaction_id)
               WHERE t.meter_start_wh IS NOT NULL
               UNION ALL
               SELECT s.session_id, 1, m.ts, max(m.value) FROM s JOIN meter_value m
                 ON m.charge_point_id = s.charge_point_id AND m.transaction_id = s.transaction_id
               WHERE m.measurand = 'Energy.Active.Import.Register' AND m.phase = ''
                 AND m.ts >= s.start_ts - interval '1 day'
               GROUP BY 1, 2, 3
               UNION ALL
               SELECT s.session_id, 2, t.stop_ts, t.meter_stop_wh
               FROM s JOIN transaction t USING (charge_point_id, transaction_id)
               WHERE t.meter_stop_wh IS NOT NULL AND t.stop_ts IS NOT NULL),
             steps AS (SELECT session_id, value - lag(value) OVER (PARTITION BY session_id
                                                   ORDER BY ord, ts) AS step FROM chain)
           SELECT session_id, coalesce(sum(greatest(step, 0)), 0) AS rises
           FROM steps GROUP BY 1""",
        {"session_id": pl.String, "rises": pl.Float64},
    )
    joined = sessions.join(rises, on="session_id", how="inner").filter(
        (pl.col("energy_wh") - pl.col("rises")).abs() > 1e-6
    )
    problems += [f"session {r} energy is not its register rises" for r in joined["session_id"]]
    # against the simulator: a session that stopped, without a reset, delivered what it was told
    exact = sessions.filter(
        (pl.col("end_source") == "stop")
        & ~pl.col("meter_reset")
        & (pl.col("quarantined_steps") == 0)
    ).with_columns(pl.col("start_ts").dt.truncate("1s"))
    vs = exact.join(truth, on=["charge_point_id", "start_ts"], how="inner", suffix="_truth")
    wrong = vs.filter((pl.col("energy_wh") - pl.col("energy_wh_truth")).abs() > 1e-6)
    problems += [f"session {r} energy differs from the simulator's" for r in wrong["session_id"]]
    if exact.height and vs.height < exact.height:
        problems.append(f"only {vs.height} of {exact.height} stopped sessions match the simulator")
    # utilisation: 60 minutes per connector-hour, 24 hours per connector and UTC day
    with psycopg.connect(url) as conn:
        q = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        minutes = [c for c in ("available", "charging", "suspended", "occupied_other", "faulted",
                               "unavailable", "offline", "unknown")]  # fmt: skip
        total = " + ".join(f"minutes_{c}" for c in minutes)
        n = q(f"SELECT count(*) FROM analytics.utilisation_hourly WHERE {between} "
              f"AND abs({total} - 60) > 1e-6")  # fmt: skip
        if n:
            problems.append(f"{n} connector-hours do not add up to 60 minutes")
        n = q(f"""SELECT count(*) FROM (SELECT 1 FROM analytics.utilisation_hourly WHERE {between}
                   GROUP BY day, charge_point_id, evse_id, connector_id HAVING count(*) <> 24) x""")
        if n:
            problems.append(f"{n} connector-days without 24 hours")
        n = q(
            f"SELECT count(*) FROM analytics.uptime_daily WHERE {between} "
            "AND NOT uptime_pct BETWEEN 0 AND 100"
        )
        if n:
            problems.append(f"{n} port-days with uptime outside 0..100")
        n = q(f"SELECT count(*) FROM analytics.sessions WHERE {between} AND energy_wh = 'Infinity'")
        if n:
            problems.append(f"{n} sessions with infinite energy")
    problems += readback.compare(url, out.reports, first, last, out.dashboard_day)
    return problems
