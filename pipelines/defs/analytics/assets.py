"""The core analytics assets: thin wrappers that read a day of raw rows, call the pure logic in
`pipelines.analytics`, replace the day in schema `analytics` and report what they wrote."""

import functools
from datetime import date, timedelta

import dagster as dg
import polars as pl

from chargeops.frames import read_table
from pipelines.analytics import energy as energy_logic
from pipelines.analytics import frames
from pipelines.analytics import peak as peak_logic
from pipelines.analytics import revenue as revenue_logic
from pipelines.analytics import sessions as sessions_logic
from pipelines.analytics import states as states_logic
from pipelines.analytics import uptime as uptime_logic
from pipelines.analytics import utilisation as utilisation_logic
from pipelines.metadata import number, numbers, preview, table_metadata
from pipelines.partitions import DAILY_BACKFILL, daily
from pipelines.raw import REGISTER, read_window
from pipelines.resources import DatabaseResource
from pipelines.status import each_day
from pipelines.store import replace_partition, with_day

GROUP = "analytics"


# every analytics asset: one UTC day per partition, computed with polars, stored in PostgreSQL;
# `code_version` is bumped with an asset's logic, so the UI shows which days are stale
daily_asset = functools.partial(
    dg.asset, partitions_def=daily, group_name=GROUP, kinds={"polars", "postgres"}, code_version="1"
)
# those whose body runs `status.each_day`: a backfill runs a month of days per run
ranged_asset = functools.partial(daily_asset, backfill_policy=DAILY_BACKFILL)


def _read_day(url: str, table: str, schema: dict, day: date) -> pl.DataFrame:
    cols = ", ".join(schema)
    return read_table(url, f"SELECT {cols} FROM analytics.{table} WHERE day = '{day}'", schema)


def _reference_window(url: str, day: date):
    """A window with only the reference tables (sites, charge points, connectors, exclusions)."""
    return read_window(url, day, meter=None, statuses=False, connections=False, transactions=False)


def _drop_day(schema: dict) -> dict:
    return {k: v for k, v in schema.items() if k != "day"}


@ranged_asset(
    description="Per connector, the intervals of the day in each state (available, charging, "
    "suspended, occupied, faulted, unavailable, offline), from statuses and connection events.",
)
def connector_states(context: dg.AssetExecutionContext, database: DatabaseResource):
    url = database.resolved_url()

    def compute(day: date) -> dict:
        window = read_window(url, day, meter="day", transactions=True)
        states = states_logic.connector_states(window)
        written = replace_partition(url, day, {"connector_states": with_day(states, day)})
        by_state = states.group_by("state").agg(
            ((pl.col("end_ts") - pl.col("start_ts")).dt.total_seconds().sum() / 3600).alias("hours")
        )
        return {
            **table_metadata(states),
            "rows": written["connector_states"],
            "connectors": states.select("charge_point_id", "evse_id", "connector_id").n_unique(),
            **numbers(dict(by_state.iter_rows()), "hours_"),
            "raw_status_rows": window.status.height,
        }

    return each_day(context, url, compute)


@ranged_asset(
    description="One row per charging session that started in the day, reconstructed from "
    "transactions and meter values of both OCPP versions; a session without a stop ends at the "
    "best evidence (status, EV departed, next transaction, last sample); failed attempts, missing "
    "stops and meter resets flagged; values that cannot be physical go to analytics.quarantine.",
)
def sessions(context: dg.AssetExecutionContext, database: DatabaseResource):
    url = database.resolved_url()

    def compute(day: date) -> dict:
        window = read_window(url, day, meter="sessions", connections=False)
        built = sessions_logic.reconstruct(window)
        df = built.sessions
        written = replace_partition(
            url, day, {"sessions": with_day(df, day), "quarantine": built.quarantine}
        )
        by_end = df.group_by("end_source").len().sort("end_source", nulls_last=True)
        return {
            **table_metadata(
                df,
                preview=[
                    "session_id",
                    "site_id",
                    "start_ts",
                    "end_ts",
                    "energy_wh",
                    "energy_source",
                ],
            ),
            "sessions": written["sessions"],
            "energy_kwh": number(float(df["energy_wh"].sum() or 0) / 1000, 3),
            "missing_stops": int(df["missing_stop"].sum()),
            **numbers({str(k or "open"): int(n) for k, n in by_end.iter_rows()}, "ends_by_"),
            "failed_attempts": int(df["failed_attempt"].sum()),
            "meter_resets": int(df["meter_reset"].sum()),
            "energy_mismatches": int(df["energy_mismatch"].sum()),
            "quarantined_values": written["quarantine"],
            "quarantine": preview(
                built.quarantine, 10, ["charge_point_id", "transaction_id", "ts", "reason"]
            ),
        }

    return each_day(context, url, compute)


@ranged_asset(
    deps=[connector_states],
    description="Per connector and hour: minutes available, charging, suspended, occupied, "
    "faulted, unavailable and offline, and utilisation ratios.",
)
def utilisation(context: dg.AssetExecutionContext, database: DatabaseResource):
    url = database.resolved_url()

    def compute(day: date) -> dict:
        states = _read_day(url, "connector_states", frames.STATES, day)
        window = _reference_window(url, day)
        hourly = utilisation_logic.utilisation_hourly(states, window)
        site_day = utilisation_logic.utilisation_site_day(hourly).filter(
            pl.col("site_id").is_not_null()
        )
        written = replace_partition(
            url,
            day,
            {
                "utilisation_hourly": with_day(hourly, day),
                "utilisation_site_day": with_day(site_day, day),
            },
        )
        return {
            **table_metadata(hourly),
            "rows": written["utilisation_hourly"],
            "occupancy_ratio": number(hourly["occupancy_ratio"].mean() or 0, 4),
            "charging_ratio": number(hourly["charging_ratio"].mean() or 0, 4),
            "per_site": preview(site_day, 20),
        }

    return each_day(context, url, compute)


@ranged_asset(
    deps=[connector_states],
    description="Uptime per port under 23 CFR 680.116(b) with excluded outage minutes, the outage "
    "list, and the UK Public Charge Point Regulations 2023 reliability of rapid charge points.",
)
def uptime(context: dg.AssetExecutionContext, database: DatabaseResource):
    url = database.resolved_url()

    def compute(day: date) -> dict:
        states = _read_day(url, "connector_states", frames.STATES, day)
        window = _reference_window(url, day)
        outages = uptime_logic.outages(states, window)
        daily_uptime = uptime_logic.uptime_daily(outages, window)
        uk = uptime_logic.uk_reliability_daily(states, window)
        written = replace_partition(
            url,
            day,
            {
                "uptime_daily": with_day(daily_uptime, day),
                "outages": with_day(outages, day),
                "uk_reliability_daily": with_day(uk, day),
            },
        )
        below = daily_uptime.filter(pl.col("uptime_pct") < 97.0)
        return {
            **table_metadata(daily_uptime),
            "ports": written["uptime_daily"],
            "outages": written["outages"],
            "mean_uptime_pct": number(daily_uptime["uptime_pct"].mean() or 100, 3),
            "ports_below_97pct": below.height,
            "rapid_charge_points": written["uk_reliability_daily"],
            "outage_preview": preview(outages.sort("duration_min", descending=True)),
        }

    return each_day(context, url, compute)


@ranged_asset(
    deps=[sessions],
    description="kWh per connector, site and day; 15-minute load curves per site; peak demand.",
)
def energy(context: dg.AssetExecutionContext, database: DatabaseResource):
    url = database.resolved_url()

    def compute(day: date) -> dict:
        window = read_window(
            url, day, meter="day", statuses=False, connections=False, measurands=(REGISTER,)
        )
        overlapping = read_table(
            url,
            f"SELECT {', '.join(_drop_day(frames.SESSIONS))} FROM analytics.sessions "
            f"WHERE day BETWEEN '{day - timedelta(days=7)}' AND '{day}'",
            _drop_day(frames.SESSIONS),
        )
        curve = energy_logic.load_curve(window)
        per_connector = energy_logic.energy_connector_day(window, overlapping)
        per_site = energy_logic.energy_site_day(curve, per_connector)
        replace_partition(
            url,
            day,
            {
                "load_curve": with_day(curve, day),
                "energy_connector_day": with_day(per_connector, day),
                "energy_site_day": with_day(per_site, day),
            },
        )
        return {
            **table_metadata(per_connector),
            "energy_kwh": number(per_connector["energy_kwh"].sum() or 0, 3),
            "peak_demand_kw": number(per_site["peak_demand_kw"].max() or 0),
            "sites": per_site.height,
            "per_site": preview(per_site, 20),
        }

    return each_day(context, url, compute)


@ranged_asset(
    deps=[utilisation, energy, sessions],
    description="Hour-of-day by weekday occupancy, energy and session starts per site (local "
    "time); the view analytics.peak_usage_profile aggregates any number of days.",
)
def peak_usage(context: dg.AssetExecutionContext, database: DatabaseResource):
    url = database.resolved_url()

    def compute(day: date) -> dict:
        hourly = _read_day(url, "utilisation_hourly", frames.UTILISATION, day)
        curve = _read_day(url, "load_curve", frames.LOAD_CURVE, day)
        day_sessions = _read_day(url, "sessions", frames.SESSIONS, day)
        window = _reference_window(url, day)
        peak = peak_logic.peak_usage(hourly, curve, day_sessions, window)
        written = replace_partition(url, day, {"peak_usage": with_day(peak, day)})
        return {
            **table_metadata(peak),
            "rows": written["peak_usage"],
            "sessions": int(day_sessions.height),
            "busiest": preview(peak_logic.busiest(peak, 5)),
        }

    return each_day(context, url, compute)


@ranged_asset(
    deps=[sessions],
    description="What each session that started in the day owes under the tariff in force at its "
    "start, in the currency's minor units, with the breakdown (energy, time, idle, fee, tax); an "
    "imported session without a tariff at the fee its export gives (tariff_id 'imported').",
)
def expected_revenue(context: dg.AssetExecutionContext, database: DatabaseResource):
    url = database.resolved_url()

    def compute(day: date) -> dict:
        day_sessions = _read_day(url, "sessions", frames.SESSIONS, day)
        # numeric prices come through ADBC as an extension type: read them as double precision
        cols = ", ".join(
            f"{c}::double precision AS {c}" if t == pl.Float64 else c
            for c, t in revenue_logic.TARIFFS.items()
        )
        tariffs = read_table(url, f"SELECT {cols} FROM tariff", revenue_logic.TARIFFS)
        fees = read_table(
            url,
            "SELECT session_id, currency, amount FROM import_payment WHERE session_id IN "
            f"(SELECT session_id FROM analytics.sessions WHERE day = '{day}')",
            revenue_logic.IMPORTED_FEES,
        )
        owed = revenue_logic.expected_revenue(day_sessions, tariffs, fees)
        written = replace_partition(url, day, {"expected_revenue": with_day(owed, day)})
        totals = owed.group_by("currency").agg(pl.col("gross_amount").sum()).sort("currency")
        return {
            **table_metadata(owed, preview=["session_id", "tariff_id", "currency", "gross_amount"]),
            "sessions_priced": written["expected_revenue"],
            "sessions_without_tariff_or_open": day_sessions.height - owed.height,
            "sessions_at_imported_fee": int(
                (owed["tariff_id"] == revenue_logic.IMPORTED_TARIFF).sum()
            ),
            **numbers(dict(totals.iter_rows()), "gross_minor_units_"),
        }

    return each_day(context, url, compute)


ASSETS = [connector_states, sessions, utilisation, uptime, energy, peak_usage, expected_revenue]
