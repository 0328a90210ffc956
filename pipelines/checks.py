"""Data-quality checks (Great Expectations 1.x suites) on the raw and derived tables, as Dagster
asset checks. Blocking checks stop a run before bad data reaches downstream assets."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import great_expectations as gx
import polars as pl

from chargeops.frames import read_table
from pipelines import assets
from pipelines.analytics import frames
from pipelines.partitions import partition_day
from pipelines.quality import validate
from pipelines.raw import day_bounds
from pipelines.resources import DatabaseResource

E = gx.expectations


def _now_plus(minutes: int = 5) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def _raw_time_span(url: str, day: date) -> pl.DataFrame:
    """Per charge point, the earliest and latest meter/status timestamp received in the day."""
    d0, d1 = day_bounds(day)
    return read_table(
        url,
        f"""SELECT r.charge_point_id, min(r.ts) AS first_ts, max(r.ts) AS last_ts,
                   cp.registered_at
            FROM (SELECT charge_point_id, ts FROM meter_value
                  WHERE received_at >= '{d0.isoformat()}' AND received_at < '{d1.isoformat()}'
                  UNION ALL
                  SELECT charge_point_id, ts FROM status_event
                  WHERE received_at >= '{d0.isoformat()}' AND received_at < '{d1.isoformat()}') r
            JOIN charge_point cp USING (charge_point_id)
            GROUP BY r.charge_point_id, cp.registered_at""",
        {"charge_point_id": pl.String, "first_ts": frames.TS, "last_ts": frames.TS,
         "registered_at": frames.TS},
    )  # fmt: skip


def check_raw_timestamps_not_in_future(url: str, day: date) -> dg.AssetCheckResult:
    return validate(
        "raw_timestamps_future",
        _raw_time_span(url, day),
        [E.ExpectColumnValuesToBeBetween(column="last_ts", max_value=_now_plus())],
    )


def check_raw_timestamps_after_registration(url: str, day: date) -> dg.AssetCheckResult:
    return validate(
        "raw_timestamps_registration",
        _raw_time_span(url, day),
        [
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="first_ts", column_B="registered_at", or_equal=True
            )
        ],
        severity=dg.AssetCheckSeverity.WARN,
    )


def check_sessions_valid(url: str, day: date) -> dg.AssetCheckResult:
    df = read_table(
        url,
        f"SELECT session_id, start_ts, end_ts, energy_wh FROM analytics.sessions WHERE day = '{day}'",
        {"session_id": pl.String, "start_ts": frames.TS, "end_ts": frames.TS,
         "energy_wh": pl.Float64},
    )  # fmt: skip
    return validate(
        "sessions",
        df,
        [
            E.ExpectColumnValuesToBeUnique(column="session_id"),
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="end_ts", column_B="start_ts", ignore_row_if="either_value_is_missing"
            ),
            E.ExpectColumnValuesToBeBetween(column="energy_wh", min_value=0),
            E.ExpectColumnValuesToBeBetween(column="start_ts", max_value=_now_plus()),
        ],
    )


def check_meter_registers_monotonic(url: str, day: date) -> dg.AssetCheckResult:
    df = read_table(
        url,
        f"""SELECT m.charge_point_id, m.transaction_id, m.ts, m.value,
                   lag(m.value) OVER (PARTITION BY m.charge_point_id, m.transaction_id
                                      ORDER BY m.ts) AS previous
            FROM analytics.sessions s JOIN meter_value m
              ON m.charge_point_id = s.charge_point_id AND m.transaction_id = s.transaction_id
            WHERE s.day = '{day}' AND m.measurand = 'Energy.Active.Import.Register'
              AND m.phase = '' AND m.ts >= s.start_ts - interval '1 minute'""",
        {"charge_point_id": pl.String, "transaction_id": pl.String, "ts": frames.TS,
         "value": pl.Float64, "previous": pl.Float64},
    )  # fmt: skip
    df = df.filter(pl.col("previous").is_not_null()).with_columns(
        reset=(pl.col("value") < pl.col("previous") * 0.1),
    )
    df = df.with_columns(ok=(pl.col("value") >= pl.col("previous")) | pl.col("reset"))
    return validate(
        "meter_registers",
        df.select("transaction_id", "value", "previous", "ok"),
        [E.ExpectColumnValuesToBeInSet(column="ok", value_set=[True])],
        severity=dg.AssetCheckSeverity.WARN,
        extra={"resets_flagged": int(df["reset"].sum())},
    )


def check_utilisation_minutes_sum_to_hour(url: str, day: date) -> dg.AssetCheckResult:
    minutes = [c for c in frames.UTILISATION if c.startswith("minutes_")]
    df = read_table(
        url,
        f"SELECT {' + '.join(minutes)} AS total_minutes, occupancy_ratio "
        f"FROM analytics.utilisation_hourly WHERE day = '{day}'",
        {"total_minutes": pl.Float64, "occupancy_ratio": pl.Float64},
    )
    return validate(
        "utilisation",
        df,
        [
            E.ExpectColumnValuesToBeBetween(
                column="total_minutes", min_value=59.999, max_value=60.001
            ),
            E.ExpectColumnValuesToBeBetween(column="occupancy_ratio", min_value=0, max_value=1),
        ],
    )


def check_uptime_within_bounds(url: str, day: date) -> dg.AssetCheckResult:
    df = read_table(
        url,
        f"SELECT uptime_pct, outage_minutes, excluded_minutes FROM analytics.uptime_daily "
        f"WHERE day = '{day}'",
        {"uptime_pct": pl.Float64, "outage_minutes": pl.Float64, "excluded_minutes": pl.Float64},
    )
    return validate(
        "uptime",
        df,
        [
            E.ExpectColumnValuesToBeBetween(column="uptime_pct", min_value=0, max_value=100),
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="outage_minutes", column_B="excluded_minutes", or_equal=True
            ),
        ],
    )


def check_energy_non_negative(url: str, day: date) -> dg.AssetCheckResult:
    df = read_table(
        url,
        f"SELECT energy_kwh FROM analytics.energy_connector_day WHERE day = '{day}'",
        {"energy_kwh": pl.Float64},
    )
    return validate(
        "energy", df, [E.ExpectColumnValuesToBeBetween(column="energy_kwh", min_value=0)]
    )


def check_expected_revenue_adds_up(url: str, day: date) -> dg.AssetCheckResult:
    df = read_table(
        url,
        f"""SELECT session_id, gross_amount, net_amount + tax_amount AS net_plus_tax,
                   energy_amount + time_amount + idle_amount + session_fee_amount AS components,
                   CASE WHEN t.prices_include_tax THEN gross_amount ELSE net_amount END AS subtotal
            FROM analytics.expected_revenue e JOIN tariff t USING (tariff_id)
            WHERE e.day = '{day}'""",
        {"session_id": pl.String, "gross_amount": pl.Int64, "net_plus_tax": pl.Int64,
         "components": pl.Int64, "subtotal": pl.Int64},
    )  # fmt: skip
    return validate(
        "expected_revenue",
        df,
        [
            E.ExpectColumnValuesToBeUnique(column="session_id"),
            E.ExpectColumnValuesToBeBetween(column="gross_amount", min_value=0),
            E.ExpectColumnPairValuesToBeEqual(column_A="gross_amount", column_B="net_plus_tax"),
            E.ExpectColumnPairValuesToBeEqual(column_A="components", column_B="subtotal"),
        ],
    )


def _asset_check(
    run: Callable[[str, date], dg.AssetCheckResult], **spec
) -> dg.AssetChecksDefinition:
    """A Dagster asset check around a plain check function of (database URL, day)."""

    @dg.asset_check(name=run.__name__.removeprefix("check_"), **spec)
    def _check(
        context: dg.AssetCheckExecutionContext, database: DatabaseResource
    ) -> dg.AssetCheckResult:
        return run(database.resolved_url(), partition_day(context))

    return _check


CHECKS = [
    _asset_check(
        check_raw_timestamps_not_in_future,
        asset=assets.connector_states,
        blocking=True,
        description="Raw meter/status timestamps received in the day are not in the future: a "
        "charger with a clock ahead would put energy and outages on days that have not happened.",
    ),
    _asset_check(
        check_raw_timestamps_after_registration,
        asset=assets.connector_states,
        description="Raw timestamps are not before the charger's registration. A warning, not a "
        "block: an auto-registered charger may deliver messages it queued before first contact.",
    ),
    _asset_check(
        check_sessions_valid,
        asset=assets.sessions,
        blocking=True,
        description="Sessions: keys unique, end after start, energy non-negative, not in the future.",
    ),
    _asset_check(
        check_meter_registers_monotonic,
        asset=assets.sessions,
        description="Energy registers never decrease within a transaction, except at a reset (the "
        "register falls below 10% of its last value): resets are flagged in the metadata, not failed.",
    ),
    _asset_check(
        check_utilisation_minutes_sum_to_hour,
        asset=assets.utilisation,
        blocking=True,
        description="Each connector-hour's minutes add up to the hour; ratios within 0..1.",
    ),
    _asset_check(
        check_uptime_within_bounds,
        asset=assets.uptime,
        blocking=True,
        description="Uptime within 0..100; excluded minutes never exceed outage minutes.",
    ),
    _asset_check(
        check_expected_revenue_adds_up,
        asset=assets.expected_revenue,
        blocking=True,
        description="Each session priced once; gross = net + tax and the components add up to the "
        "subtotal; no negative amounts.",
    ),
    _asset_check(
        check_energy_non_negative,
        asset=assets.energy,
        blocking=True,
        description="Energy is never negative.",
    ),
]
