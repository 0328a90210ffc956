"""Data-quality checks (Great Expectations 1.x suites) on the raw and derived tables, as Dagster
asset checks. Blocking checks stop a run before bad data reaches downstream assets."""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import great_expectations as gx
import polars as pl

from chargeops.frames import read_table
from pipelines import assets, status
from pipelines.analytics import frames
from pipelines.analytics.plausibility import POWER_MARGIN
from pipelines.partitions import partition_day
from pipelines.quality import combine, validate
from pipelines.raw import day_bounds
from pipelines.resources import DatabaseResource

E = gx.expectations
CLOCK_SKEW_MIN = 5.0  # minutes a row may be stamped after it arrived before it is skew


def _now_plus(minutes: int = 5) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def _raw_time_span(url: str, day: date) -> pl.DataFrame:
    """Per charge point, the earliest and latest meter/status timestamp received in the day and
    how far ahead of its arrival the charger's clock put a row."""
    d0, d1 = day_bounds(day)
    return read_table(
        url,
        f"""SELECT r.charge_point_id, min(r.ts) AS first_ts, max(r.ts) AS last_ts,
                   max(extract(epoch FROM r.ts - r.received_at))::double precision / 60
                       AS max_ahead_min,
                   cp.registered_at
            FROM (SELECT charge_point_id, ts, received_at FROM meter_value
                  WHERE received_at >= '{d0.isoformat()}' AND received_at < '{d1.isoformat()}'
                  UNION ALL
                  SELECT charge_point_id, ts, received_at FROM status_event
                  WHERE received_at >= '{d0.isoformat()}' AND received_at < '{d1.isoformat()}') r
            JOIN charge_point cp USING (charge_point_id)
            GROUP BY r.charge_point_id, cp.registered_at""",
        {"charge_point_id": pl.String, "first_ts": frames.TS, "last_ts": frames.TS,
         "max_ahead_min": pl.Float64, "registered_at": frames.TS},
    )  # fmt: skip


def _quarantined(url: str, day: date) -> int:
    d0, d1 = day_bounds(day)
    return int(
        read_table(
            url,
            f"SELECT count(*) AS n FROM quarantine WHERE received_at >= '{d0.isoformat()}' "
            f"AND received_at < '{d1.isoformat()}'",
            {"n": pl.Int64},
        ).item()
        or 0
    )


def check_raw_timestamps_not_in_future(url: str, day: date) -> dg.AssetCheckResult:
    """Clock skew: rows stamped more than CLOCK_SKEW_MIN after they arrived. A warning: the
    collector quarantines rows stamped far ahead (`ingest.quarantine`), so what is left is a
    clock somewhat fast, which moves a charger's own rows and nobody else's."""
    df = _raw_time_span(url, day)
    return validate(
        "raw_timestamps_future",
        df,
        [E.ExpectColumnValuesToBeBetween(column="max_ahead_min", max_value=CLOCK_SKEW_MIN)],
        severity=dg.AssetCheckSeverity.WARN,
        ids=["charge_point_id"],
        extra={
            "charge_points_with_skew": int((df["max_ahead_min"] > CLOCK_SKEW_MIN).sum()),
            "quarantined_at_ingest": _quarantined(url, day),
        },
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
        ids=["charge_point_id"],
    )


SESSION_IDS = ["session_id", "charge_point_id", "evse_id", "connector_id"]


def _day_sessions(url: str, day: date) -> pl.DataFrame:
    return read_table(
        url,
        f"""SELECT s.session_id, s.charge_point_id, s.evse_id, s.connector_id, s.start_ts,
                   s.end_ts, s.energy_wh, s.duration_min, s.failed_attempt, s.missing_stop,
                   s.quarantined_steps, s.peak_power_w, cp.max_power_w
            FROM analytics.sessions s LEFT JOIN charge_point cp USING (charge_point_id)
            WHERE s.day = '{day}'""",
        {"session_id": pl.String, "charge_point_id": pl.String, "evse_id": pl.Int32,
         "connector_id": pl.Int32, "start_ts": frames.TS, "end_ts": frames.TS,
         "energy_wh": pl.Float64, "duration_min": pl.Float64, "failed_attempt": pl.Boolean,
         "missing_stop": pl.Boolean, "quarantined_steps": pl.Int32, "peak_power_w": pl.Float64,
         "max_power_w": pl.Float64},
    )  # fmt: skip


def check_sessions_valid(url: str, day: date) -> dg.AssetCheckResult:
    """What cannot be true of a session: two rows for one key, an end before the start, energy
    negative or not a number."""
    df = _day_sessions(url, day).with_columns(
        energy_finite=pl.col("energy_wh").is_null() | pl.col("energy_wh").is_finite()
    )
    return validate(
        "sessions",
        df,
        [
            E.ExpectColumnValuesToBeUnique(column="session_id"),
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="end_ts",
                column_B="start_ts",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
            E.ExpectColumnValuesToBeBetween(column="energy_wh", min_value=0),
            E.ExpectColumnValuesToBeInSet(column="energy_finite", value_set=[True]),
        ],
        ids=SESSION_IDS,
    )


def check_sessions_unusual(url: str, day: date) -> dg.AssetCheckResult:
    """Unusual but real: zero-length or zero-energy sessions (failed attempts), starts ahead of
    the clock, peak power above the charger's rating, values quarantined. Counted and sampled."""
    limit = pl.col("max_power_w") * POWER_MARGIN
    df = _day_sessions(url, day).with_columns(
        has_length=(pl.col("duration_min") > 0) | pl.col("duration_min").is_null(),
        has_energy=(pl.col("energy_wh") > 0) | pl.col("energy_wh").is_null(),
        within_rating=(pl.col("peak_power_w") <= limit).fill_null(True),
        no_quarantine=pl.col("quarantined_steps").fill_null(0) == 0,
    )
    return validate(
        "sessions_unusual",
        df,
        [
            E.ExpectColumnValuesToBeInSet(column="has_length", value_set=[True]),
            E.ExpectColumnValuesToBeInSet(column="has_energy", value_set=[True]),
            E.ExpectColumnValuesToBeBetween(column="start_ts", max_value=_now_plus()),
            E.ExpectColumnValuesToBeInSet(column="within_rating", value_set=[True]),
            E.ExpectColumnValuesToBeInSet(column="no_quarantine", value_set=[True]),
        ],
        severity=dg.AssetCheckSeverity.WARN,
        ids=SESSION_IDS,
        extra={
            "failed_attempts": int(df["failed_attempt"].fill_null(False).sum()),
            "zero_length": int((~df["has_length"]).sum()),
            "zero_energy": int((~df["has_energy"]).sum()),
            "missing_stops": int(df["missing_stop"].fill_null(False).sum()),
            "quarantined_steps": int(df["quarantined_steps"].fill_null(0).sum()),
            "quarantined_values": int(
                read_table(
                    url,
                    f"SELECT count(*) AS n FROM analytics.quarantine WHERE day = '{day}'",
                    {"n": pl.Int64},
                ).item()
                or 0
            ),
        },
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
        df.select("charge_point_id", "transaction_id", "ts", "value", "previous", "ok"),
        [E.ExpectColumnValuesToBeInSet(column="ok", value_set=[True])],
        severity=dg.AssetCheckSeverity.WARN,
        ids=["charge_point_id", "transaction_id", "ts", "value", "previous"],
        extra={"resets_flagged": int(df["reset"].sum())},
    )


def check_utilisation_minutes_sum_to_hour(url: str, day: date) -> dg.AssetCheckResult:
    minutes = [c for c in frames.UTILISATION if c.startswith("minutes_")]
    df = read_table(
        url,
        f"SELECT charge_point_id, evse_id, connector_id, hour_ts, "
        f"{' + '.join(minutes)} AS total_minutes, occupancy_ratio "
        f"FROM analytics.utilisation_hourly WHERE day = '{day}'",
        {"charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
         "hour_ts": frames.TS, "total_minutes": pl.Float64, "occupancy_ratio": pl.Float64},
    )  # fmt: skip
    return validate(
        "utilisation",
        df,
        [
            E.ExpectColumnValuesToBeBetween(
                column="total_minutes", min_value=59.999, max_value=60.001
            ),
            E.ExpectColumnValuesToBeBetween(column="occupancy_ratio", min_value=0, max_value=1),
        ],
        ids=["charge_point_id", "evse_id", "connector_id", "hour_ts"],
    )


def check_uptime_within_bounds(url: str, day: date) -> dg.AssetCheckResult:
    df = read_table(
        url,
        f"SELECT charge_point_id, evse_id, connector_id, uptime_pct, outage_minutes, "
        f"excluded_minutes FROM analytics.uptime_daily WHERE day = '{day}'",
        {"charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
         "uptime_pct": pl.Float64, "outage_minutes": pl.Float64, "excluded_minutes": pl.Float64},
    )  # fmt: skip
    return validate(
        "uptime",
        df,
        [
            E.ExpectColumnValuesToBeBetween(column="uptime_pct", min_value=0, max_value=100),
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="outage_minutes", column_B="excluded_minutes", or_equal=True
            ),
        ],
        ids=["charge_point_id", "evse_id", "connector_id"],
    )


def check_energy_adds_up(url: str, day: date) -> dg.AssetCheckResult:
    """Energy is never negative or non-finite, each site's day is the sum of its connectors',
    and the site's load curve adds up to it (to a watt-hour)."""
    connectors = read_table(
        url,
        f"SELECT charge_point_id, evse_id, connector_id, energy_kwh "
        f"FROM analytics.energy_connector_day WHERE day = '{day}'",
        {"charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
         "energy_kwh": pl.Float64},
    ).with_columns(finite=pl.col("energy_kwh").is_finite())  # fmt: skip
    sites = read_table(
        url,
        f"""SELECT s.site_id, s.energy_kwh,
                   (SELECT coalesce(sum(c.energy_kwh), 0) FROM analytics.energy_connector_day c
                    WHERE c.day = s.day AND c.site_id = s.site_id) AS connectors_kwh,
                   (SELECT coalesce(sum(l.energy_kwh), 0) FROM analytics.load_curve l
                    WHERE l.day = s.day AND l.site_id = s.site_id) AS curve_kwh
            FROM analytics.energy_site_day s WHERE s.day = '{day}'""",
        {"site_id": pl.String, "energy_kwh": pl.Float64, "connectors_kwh": pl.Float64,
         "curve_kwh": pl.Float64},
    ).with_columns(
        off_connectors=(pl.col("energy_kwh") - pl.col("connectors_kwh")).abs(),
        off_curve=(pl.col("energy_kwh") - pl.col("curve_kwh")).abs(),
    )  # fmt: skip
    by_connector = validate(
        "energy",
        connectors,
        [
            E.ExpectColumnValuesToBeBetween(column="energy_kwh", min_value=0),
            E.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]),
        ],
        ids=["charge_point_id", "evse_id", "connector_id"],
    )
    by_site = validate(
        "energy_sites",
        sites,
        [
            E.ExpectColumnValuesToBeBetween(column="off_connectors", max_value=0.001),
            E.ExpectColumnValuesToBeBetween(column="off_curve", max_value=0.001),
        ],
        ids=["site_id", "energy_kwh", "connectors_kwh", "curve_kwh"],
    )
    return combine(by_connector, by_site)


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
    run: Callable[[str, date], dg.AssetCheckResult], *, asset, blocking: bool = False, **spec
) -> dg.AssetChecksDefinition:
    """A Dagster asset check around a plain check function of (database URL, day), partitioned
    like its asset, so the day that fails is the day shown failed. A blocking check that fails
    marks its asset's day failed in analytics.partition_status (`pipelines.status`), so later
    runs and reports know, as Dagster's own run does."""
    name = run.__name__.removeprefix("check_")
    asset_name = asset.key.to_user_string()

    @dg.asset_check(
        name=name, asset=asset, blocking=blocking, partitions_def=asset.partitions_def, **spec
    )
    def _check(
        context: dg.AssetCheckExecutionContext, database: DatabaseResource
    ) -> dg.AssetCheckResult:
        url, day = database.resolved_url(), partition_day(context)
        result = run(url, day)
        if blocking and not result.passed:
            status.record(
                url, asset_name, day, "failed", status.check_detail(name), context.run.run_id
            )
        elif blocking:
            status.clear_check_failure(url, asset_name, day, name)
        return result

    return _check


CHECKS = [
    _asset_check(
        check_raw_timestamps_not_in_future,
        asset=assets.connector_states,
        description="Clock skew: no raw meter/status row received in the day is stamped more than "
        f"{CLOCK_SKEW_MIN:g} minutes after it arrived. A warning: rows stamped far ahead are "
        "quarantined at ingest (table quarantine), so one fast clock moves only its own rows.",
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
        description="What cannot be true: a session key twice, an end before the start, energy "
        "negative or not finite. Failure samples name session, charger and connector.",
    ),
    _asset_check(
        check_sessions_unusual,
        asset=assets.sessions,
        description="Unusual but real, counted and sampled (a warning): zero-length and zero-energy "
        "sessions (failed attempts), starts ahead of the clock, peak power above the rating, "
        "values quarantined by the reconstruction (analytics.quarantine).",
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
        check_energy_adds_up,
        asset=assets.energy,
        blocking=True,
        description="Energy is never negative or non-finite; each site's day is the sum of its "
        "connectors' and of its 15-minute load curve.",
    ),
]
