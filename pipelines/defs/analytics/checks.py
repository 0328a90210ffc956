"""Data-quality checks on the raw and derived tables, as Dagster asset checks. Blocking checks
stop a run before bad data reaches downstream assets.

Each check function takes the days of a run and reads their rows at once (a `day` column),
validates them once (`pipelines.quality.Validation`: Great Expectations 1.x for column bounds,
uniqueness per day and pair comparisons, plain polars for what is computed in polars) and returns
a result per day; `daily_check` makes the Dagster asset check of it."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl

from chargeops.frames import read_table
from pipelines.analytics import frames
from pipelines.analytics.plausibility import POWER_MARGIN
from pipelines.defs.analytics import assets
from pipelines.quality import CheckResults, Rule, Validation, by_day, combine_days, daily_check
from pipelines.quality import days_sql as _days
from pipelines.raw import day_bounds, ts_literal

CLOCK_SKEW_MIN = 5.0  # minutes a row may be stamped after it arrived before it is skew
WARN = dg.AssetCheckSeverity.WARN
SESSION_IDS = ["session_id", "charge_point_id", "evse_id", "connector_id"]
CONNECTOR_IDS = ["charge_point_id", "evse_id", "connector_id"]


def _now_plus(minutes: int = 5) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def _received(days: list[date]) -> str:
    """`received_at` within the days' UTC bounds (the whole range: one index range scan)."""
    return (
        f"received_at >= {ts_literal(day_bounds(min(days))[0])} "
        f"AND received_at < {ts_literal(day_bounds(max(days))[1])}"
    )


def _raw_time_span(url: str, days: list[date]) -> pl.DataFrame:
    """Per day received and charge point, the earliest and latest meter/status timestamp and how
    far ahead of its arrival the charger's clock put a row."""
    return read_table(
        url,
        f"""SELECT r.day, r.charge_point_id, min(r.ts) AS first_ts, max(r.ts) AS last_ts,
                   max(extract(epoch FROM r.ts - r.received_at))::double precision / 60
                       AS max_ahead_min,
                   cp.registered_at
            FROM (SELECT (received_at AT TIME ZONE 'UTC')::date AS day, charge_point_id, ts,
                         received_at
                  FROM meter_value WHERE {_received(days)}
                  UNION ALL
                  SELECT (received_at AT TIME ZONE 'UTC')::date, charge_point_id, ts, received_at
                  FROM status_event WHERE {_received(days)}) r
            JOIN charge_point cp USING (charge_point_id)
            GROUP BY r.day, r.charge_point_id, cp.registered_at""",
        {"day": pl.Date, "charge_point_id": pl.String, "first_ts": frames.TS,
         "last_ts": frames.TS, "max_ahead_min": pl.Float64, "registered_at": frames.TS},
    )  # fmt: skip


def _quarantined(url: str, days: list[date]) -> dict[date, int]:
    df = read_table(
        url,
        f"SELECT (received_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM quarantine "
        f"WHERE {_received(days)} GROUP BY 1",
        {"day": pl.Date, "n": pl.Int64},
    )
    return dict(df.iter_rows())


RAW_FUTURE = Validation(
    "raw_timestamps_future",
    lambda E: [E.ExpectColumnValuesToBeBetween(column="max_ahead_min", max_value=CLOCK_SKEW_MIN)],
    ids=["charge_point_id"],
    severity=WARN,
)


def check_raw_timestamps_not_in_future(url: str, days: list[date]) -> CheckResults:
    """Clock skew: rows stamped more than CLOCK_SKEW_MIN after they arrived. A warning: the
    collector quarantines rows stamped far ahead (`ingest.quarantine`), so what is left is a
    clock somewhat fast, which moves a charger's own rows and nobody else's."""
    df = _raw_time_span(url, days)
    extra = by_day(
        df, days, charge_points_with_skew=(pl.col("max_ahead_min") > CLOCK_SKEW_MIN).sum()
    )
    quarantined = _quarantined(url, days)
    for day, figures in extra.items():
        figures["quarantined_at_ingest"] = quarantined.get(day, 0)
    return RAW_FUTURE.run(df, days, extra=extra)


RAW_REGISTRATION = Validation(
    "raw_timestamps_registration",
    lambda E: [
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="first_ts", column_B="registered_at", or_equal=True
        )
    ],
    ids=["charge_point_id"],
    severity=WARN,
)


def check_raw_timestamps_after_registration(url: str, days: list[date]) -> CheckResults:
    return RAW_REGISTRATION.run(_raw_time_span(url, days), days)


def _sessions(url: str, days: list[date]) -> pl.DataFrame:
    return read_table(
        url,
        f"""SELECT s.day, s.session_id, s.charge_point_id, s.evse_id, s.connector_id, s.start_ts,
                   s.end_ts, s.energy_wh, s.duration_min, s.failed_attempt, s.missing_stop,
                   s.quarantined_steps, s.peak_power_w, cp.max_power_w
            FROM analytics.sessions s LEFT JOIN charge_point cp USING (charge_point_id)
            WHERE {_days(days, "s.day")}""",
        {"day": pl.Date, "session_id": pl.String, "charge_point_id": pl.String,
         "evse_id": pl.Int32, "connector_id": pl.Int32, "start_ts": frames.TS,
         "end_ts": frames.TS, "energy_wh": pl.Float64, "duration_min": pl.Float64,
         "failed_attempt": pl.Boolean, "missing_stop": pl.Boolean,
         "quarantined_steps": pl.Int32, "peak_power_w": pl.Float64, "max_power_w": pl.Float64},
    )  # fmt: skip


SESSIONS_VALID = Validation(
    "sessions",
    lambda E: [
        E.ExpectCompoundColumnsToBeUnique(column_list=["day", "session_id"]),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="end_ts",
            column_B="start_ts",
            or_equal=True,
            ignore_row_if="either_value_is_missing",
        ),
        E.ExpectColumnValuesToBeBetween(column="energy_wh", min_value=0),
    ],
    rules=[
        Rule("energy_finite", "energy_wh", pl.col("energy_wh").is_finite()),
    ],
    ids=SESSION_IDS,
)


def check_sessions_valid(url: str, days: list[date]) -> CheckResults:
    """What cannot be true of a session: two rows for one key, an end before the start, energy
    negative or not a number."""
    return SESSIONS_VALID.run(_sessions(url, days), days)


SESSIONS_UNUSUAL = Validation(
    "sessions_unusual",
    lambda E: [
        E.ExpectColumnValuesToBeBetween(column="start_ts", max_value={"$PARAMETER": "now_plus_5"})
    ],
    rules=[
        Rule("has_length", "duration_min", pl.col("has_length")),
        Rule("has_energy", "energy_wh", pl.col("has_energy")),
        Rule("within_rating", "peak_power_w", pl.col("within_rating")),
        Rule("no_quarantine", "quarantined_steps", pl.col("no_quarantine")),
    ],
    ids=SESSION_IDS,
    severity=WARN,
)


def check_sessions_unusual(url: str, days: list[date]) -> CheckResults:
    """Unusual but real: zero-length or zero-energy sessions (failed attempts), starts ahead of
    the clock, peak power above the charger's rating, values quarantined. Counted and sampled."""
    limit = pl.col("max_power_w") * POWER_MARGIN
    df = _sessions(url, days).with_columns(
        has_length=(pl.col("duration_min") > 0) | pl.col("duration_min").is_null(),
        has_energy=(pl.col("energy_wh") > 0) | pl.col("energy_wh").is_null(),
        within_rating=(pl.col("peak_power_w") <= limit).fill_null(True),
        no_quarantine=pl.col("quarantined_steps").fill_null(0) == 0,
    )
    extra = by_day(
        df,
        days,
        failed_attempts=pl.col("failed_attempt").fill_null(False).sum(),
        zero_length=(~pl.col("has_length")).sum(),
        zero_energy=(~pl.col("has_energy")).sum(),
        missing_stops=pl.col("missing_stop").fill_null(False).sum(),
        quarantined_steps=pl.col("quarantined_steps").fill_null(0).sum(),
    )
    quarantined = dict(
        read_table(
            url,
            f"SELECT day, count(*) AS n FROM analytics.quarantine WHERE {_days(days)} GROUP BY 1",
            {"day": pl.Date, "n": pl.Int64},
        ).iter_rows()
    )
    for day, figures in extra.items():
        figures["quarantined_values"] = quarantined.get(day, 0)
    return SESSIONS_UNUSUAL.run(df, days, parameters={"now_plus_5": _now_plus()}, extra=extra)


METER_REGISTERS = Validation(
    "meter_registers",
    rules=[Rule("register_not_decreasing", "value", pl.col("ok"))],
    ids=["charge_point_id", "transaction_id", "ts", "value", "previous"],
    severity=WARN,
)


def check_meter_registers_monotonic(url: str, days: list[date]) -> CheckResults:
    df = read_table(
        url,
        f"""SELECT s.day, m.charge_point_id, m.transaction_id, m.ts, m.value,
                   lag(m.value) OVER (PARTITION BY s.day, m.charge_point_id, m.transaction_id
                                      ORDER BY m.ts) AS previous
            FROM analytics.sessions s JOIN meter_value m
              ON m.charge_point_id = s.charge_point_id AND m.transaction_id = s.transaction_id
            WHERE {_days(days, "s.day")} AND m.measurand = 'Energy.Active.Import.Register'
              AND m.phase = '' AND m.ts >= s.start_ts - interval '1 minute'""",
        {"day": pl.Date, "charge_point_id": pl.String, "transaction_id": pl.String,
         "ts": frames.TS, "value": pl.Float64, "previous": pl.Float64},
    )  # fmt: skip
    df = df.filter(pl.col("previous").is_not_null()).with_columns(
        reset=(pl.col("value") < pl.col("previous") * 0.1),
    )
    df = df.with_columns(ok=(pl.col("value") >= pl.col("previous")) | pl.col("reset"))
    extra = by_day(df, days, resets_flagged=pl.col("reset").sum())
    return METER_REGISTERS.run(df, days, extra=extra)


UTILISATION = Validation(
    "utilisation",
    lambda E: [
        E.ExpectColumnValuesToBeBetween(column="total_minutes", min_value=59.999, max_value=60.001),
        E.ExpectColumnValuesToBeBetween(column="occupancy_ratio", min_value=0, max_value=1),
    ],
    ids=[*CONNECTOR_IDS, "hour_ts"],
)


def check_utilisation_minutes_sum_to_hour(url: str, days: list[date]) -> CheckResults:
    minutes = [c for c in frames.UTILISATION if c.startswith("minutes_")]
    df = read_table(
        url,
        f"SELECT day, charge_point_id, evse_id, connector_id, hour_ts, "
        f"{' + '.join(minutes)} AS total_minutes, occupancy_ratio "
        f"FROM analytics.utilisation_hourly WHERE {_days(days)}",
        {"day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32,
         "connector_id": pl.Int32, "hour_ts": frames.TS, "total_minutes": pl.Float64,
         "occupancy_ratio": pl.Float64},
    )  # fmt: skip
    return UTILISATION.run(df, days)


UPTIME = Validation(
    "uptime",
    lambda E: [
        E.ExpectColumnValuesToBeBetween(column="uptime_pct", min_value=0, max_value=100),
        E.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="outage_minutes", column_B="excluded_minutes", or_equal=True
        ),
    ],
    ids=CONNECTOR_IDS,
)


def check_uptime_within_bounds(url: str, days: list[date]) -> CheckResults:
    df = read_table(
        url,
        f"SELECT day, charge_point_id, evse_id, connector_id, uptime_pct, outage_minutes, "
        f"excluded_minutes FROM analytics.uptime_daily WHERE {_days(days)}",
        {"day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32,
         "connector_id": pl.Int32, "uptime_pct": pl.Float64, "outage_minutes": pl.Float64,
         "excluded_minutes": pl.Float64},
    )  # fmt: skip
    return UPTIME.run(df, days)


ENERGY = Validation(
    "energy",
    lambda E: [E.ExpectColumnValuesToBeBetween(column="energy_kwh", min_value=0)],
    rules=[Rule("energy_finite", "energy_kwh", pl.col("energy_kwh").is_finite())],
    ids=CONNECTOR_IDS,
)
ENERGY_SITES = Validation(
    "energy_sites",
    rules=[
        Rule("site = its connectors (1 Wh)", "off_connectors", pl.col("off_connectors") <= 0.001),
        Rule("site = its load curve (1 Wh)", "off_curve", pl.col("off_curve") <= 0.001),
    ],
    ids=["site_id", "energy_kwh", "connectors_kwh", "curve_kwh"],
)


def check_energy_adds_up(url: str, days: list[date]) -> CheckResults:
    """Energy is never negative or non-finite, each site's day is the sum of its connectors',
    and the site's load curve adds up to it (to a watt-hour)."""
    connectors = read_table(
        url,
        f"SELECT day, charge_point_id, evse_id, connector_id, energy_kwh "
        f"FROM analytics.energy_connector_day WHERE {_days(days)}",
        {"day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32,
         "connector_id": pl.Int32, "energy_kwh": pl.Float64},
    )  # fmt: skip
    sites = read_table(
        url,
        f"""SELECT s.day, s.site_id, s.energy_kwh,
                   (SELECT coalesce(sum(c.energy_kwh), 0) FROM analytics.energy_connector_day c
                    WHERE c.day = s.day AND c.site_id = s.site_id) AS connectors_kwh,
                   (SELECT coalesce(sum(l.energy_kwh), 0) FROM analytics.load_curve l
                    WHERE l.day = s.day AND l.site_id = s.site_id) AS curve_kwh
            FROM analytics.energy_site_day s WHERE {_days(days, "s.day")}""",
        {"day": pl.Date, "site_id": pl.String, "energy_kwh": pl.Float64,
         "connectors_kwh": pl.Float64, "curve_kwh": pl.Float64},
    ).with_columns(
        off_connectors=(pl.col("energy_kwh") - pl.col("connectors_kwh")).abs(),
        off_curve=(pl.col("energy_kwh") - pl.col("curve_kwh")).abs(),
    )  # fmt: skip
    return combine_days(ENERGY.run(connectors, days), ENERGY_SITES.run(sites, days))


EXPECTED_REVENUE = Validation(
    "expected_revenue",
    lambda E: [
        E.ExpectCompoundColumnsToBeUnique(column_list=["day", "session_id"]),
        E.ExpectColumnValuesToBeBetween(column="gross_amount", min_value=0),
        E.ExpectColumnPairValuesToBeEqual(column_A="gross_amount", column_B="net_plus_tax"),
        E.ExpectColumnPairValuesToBeEqual(column_A="components", column_B="subtotal"),
    ],
    ids=["session_id"],
)


def check_expected_revenue_adds_up(url: str, days: list[date]) -> CheckResults:
    df = read_table(
        url,
        f"""SELECT e.day, session_id, gross_amount, net_amount + tax_amount AS net_plus_tax,
                   energy_amount + time_amount + idle_amount + session_fee_amount AS components,
                   CASE WHEN t.prices_include_tax THEN gross_amount ELSE net_amount END AS subtotal
            FROM analytics.expected_revenue e JOIN tariff t USING (tariff_id)
            WHERE {_days(days, "e.day")}""",
        {"day": pl.Date, "session_id": pl.String, "gross_amount": pl.Int64,
         "net_plus_tax": pl.Int64, "components": pl.Int64, "subtotal": pl.Int64},
    )  # fmt: skip
    return EXPECTED_REVENUE.run(df, days)


CHECKS = [
    daily_check(
        check_raw_timestamps_not_in_future,
        asset=assets.connector_states,
        description="Clock skew: no raw meter/status row received in the day is stamped more than "
        f"{CLOCK_SKEW_MIN:g} minutes after it arrived. A warning: rows stamped far ahead are "
        "quarantined at ingest (table quarantine), so one fast clock moves only its own rows.",
    ),
    daily_check(
        check_raw_timestamps_after_registration,
        asset=assets.connector_states,
        description="Raw timestamps are not before the charger's registration. A warning, not a "
        "block: an auto-registered charger may deliver messages it queued before first contact.",
    ),
    daily_check(
        check_sessions_valid,
        asset=assets.sessions,
        blocking=True,
        description="What cannot be true: a session key twice, an end before the start, energy "
        "negative or not finite. Failure samples name session, charger and connector.",
    ),
    daily_check(
        check_sessions_unusual,
        asset=assets.sessions,
        description="Unusual but real, counted and sampled (a warning): zero-length and zero-energy "
        "sessions (failed attempts), starts ahead of the clock, peak power above the rating, "
        "values quarantined by the reconstruction (analytics.quarantine).",
    ),
    daily_check(
        check_meter_registers_monotonic,
        asset=assets.sessions,
        description="Energy registers never decrease within a transaction, except at a reset (the "
        "register falls below 10% of its last value): resets are flagged in the metadata, not failed.",
    ),
    daily_check(
        check_utilisation_minutes_sum_to_hour,
        asset=assets.utilisation,
        blocking=True,
        description="Each connector-hour's minutes add up to the hour; ratios within 0..1.",
    ),
    daily_check(
        check_uptime_within_bounds,
        asset=assets.uptime,
        blocking=True,
        description="Uptime within 0..100; excluded minutes never exceed outage minutes.",
    ),
    daily_check(
        check_expected_revenue_adds_up,
        asset=assets.expected_revenue,
        blocking=True,
        description="Each session priced once; gross = net + tax and the components add up to the "
        "subtotal; no negative amounts.",
    ),
    daily_check(
        check_energy_adds_up,
        asset=assets.energy,
        blocking=True,
        description="Energy is never negative or non-finite; each site's day is the sum of its "
        "connectors' and of its 15-minute load curve.",
    ),
]
