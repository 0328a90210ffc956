"""Peak usage: per site, day and local (weekday, hour), the raw material of hour-of-day x weekday
views, and the busiest sites and slots over any number of days.

Rules (the README quotes them):

- Every row stands for UTC hours of the day: each UTC hour is labelled with the site's local
  weekday (1 = Monday) and hour of that hour's start, converted with the site's time zone
  (``sites.timezone``; UTC when missing). In a half-hour zone (e.g. Asia/Kolkata) UTC 10:00 is
  15:30 local, so the row is local hour 15. On a fall-back day two UTC hours share a local hour
  and are added together in one row (twice the connector-hours); on a spring-forward day the
  skipped local hour has no row.
- connector_hours: the number of connector-hour rows of the UTILISATION frame;
  occupied_hours = (minutes_charging + minutes_suspended + minutes_occupied_other) / 60 and
  charging_hours = minutes_charging / 60, summed.
- energy_kwh: the load curve's 15-minute intervals summed into their UTC hour.
- sessions_started: sessions whose start_ts is in the day, counted in the UTC hour containing
  their start (so labelled like the rest of the row).
- `day` is the UTC partition day; the local weekday can differ from it near midnight. A row's
  local date is the one of day - 1, day, day + 1 with its local weekday
  (`chargeops.local_days.peak_local_day`), so readers can take whole local days of rows.
- busiest: sites ranked by occupancy ratio = sum(occupied_hours) / sum(connector_hours) over all
  the days given, each with its busiest (weekday, hour) slot by the same ratio.
"""

from __future__ import annotations

import polars as pl

from pipelines.analytics.frames import PEAK_USAGE, TS, RawWindow
from pipelines.analytics.uptime import as_utc, conform, window_day

_SUMS = ["connector_hours", "occupied_hours", "charging_hours", "energy_kwh", "sessions_started"]


def _hour_labels(window: RawWindow, zones: list[str]) -> pl.DataFrame:
    """(timezone, hour_ts, local_weekday, local_hour) for every UTC hour of the day and zone.
    Loops over the distinct time zones only."""
    hours = pl.datetime_range(
        as_utc(window.day_start),
        as_utc(window.day_end),
        "1h",
        closed="left",
        time_unit="us",
        time_zone="UTC",
        eager=True,
    ).alias("hour_ts")
    frames = [
        pl.DataFrame({"hour_ts": hours}).select(
            pl.lit(zone, pl.String).alias("timezone"),
            "hour_ts",
            local_weekday=pl.col("hour_ts").dt.convert_time_zone(zone).dt.weekday().cast(pl.Int8),
            local_hour=pl.col("hour_ts").dt.convert_time_zone(zone).dt.hour().cast(pl.Int8),
        )
        for zone in zones
    ]
    schema = {"timezone": pl.String, "hour_ts": TS, "local_weekday": pl.Int8, "local_hour": pl.Int8}
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


def peak_usage(
    utilisation_hourly: pl.DataFrame,
    load_curve: pl.DataFrame,
    sessions: pl.DataFrame,
    window: RawWindow,
) -> pl.DataFrame:
    """Per site, day, local weekday and local hour (schema PEAK_USAGE); see the module rules.
    `utilisation_hourly` follows UTILISATION, `load_curve` LOAD_CURVE, `sessions` SESSIONS."""
    ds, de = as_utc(window.day_start), as_utc(window.day_end)
    cp_site = window.charge_points.select("charge_point_id", site_of_cp="site_id")

    def in_day(col: str) -> pl.Expr:
        return (pl.col(col) >= ds) & (pl.col(col) < de)

    occupied = (
        pl.col("minutes_charging") + pl.col("minutes_suspended") + pl.col("minutes_occupied_other")
    )
    util = (
        utilisation_hourly.filter(in_day("hour_ts"))
        .join(cp_site, on="charge_point_id", how="left")
        .group_by(pl.coalesce("site_id", "site_of_cp").alias("site_id"), "hour_ts")
        .agg(
            connector_hours=pl.len().cast(pl.Float64),
            occupied_hours=occupied.sum() / 60.0,
            charging_hours=pl.col("minutes_charging").sum() / 60.0,
        )
    )
    energy = (
        load_curve.filter(in_day("interval_start"))
        .group_by("site_id", hour_ts=pl.col("interval_start").dt.truncate("1h"))
        .agg(pl.col("energy_kwh").sum())
    )
    started = (
        sessions.filter(in_day("start_ts"))
        .join(cp_site, on="charge_point_id", how="left")
        .group_by(
            pl.coalesce("site_id", "site_of_cp").alias("site_id"),
            hour_ts=pl.col("start_ts").dt.truncate("1h"),
        )
        .agg(sessions_started=pl.col("session_id").n_unique().cast(pl.Int64))
    )
    hourly = (
        pl.concat([util, energy, started], how="diagonal_relaxed")
        .drop_nulls("site_id")
        .group_by("site_id", "hour_ts")
        .agg(pl.col(_SUMS).sum())  # sum() of an all-null group is 0
        .join(window.sites.select("site_id", "timezone"), on="site_id", how="left")
        .with_columns(pl.col("timezone").fill_null("UTC"))
    )
    labels = _hour_labels(window, hourly["timezone"].unique().sort().to_list())
    out = (
        hourly.join(labels, on=["timezone", "hour_ts"])
        .group_by("site_id", "local_weekday", "local_hour")
        .agg(pl.col(_SUMS).sum())
        .with_columns(pl.lit(window_day(window), pl.Date).alias("day"))
        .sort("site_id", "local_weekday", "local_hour")
    )
    return conform(out, PEAK_USAGE)


def busiest(peak: pl.DataFrame, n: int = 10) -> pl.DataFrame:
    """The `n` busiest sites of a PEAK_USAGE frame covering any number of days, each with its
    busiest (local weekday, local hour) slot.

    Busy = occupancy ratio = occupied_hours / connector_hours, summed over the whole frame (never
    an average of daily ratios); ties go to more connector-hours, then to the smaller key. Sites
    with no connector-hours are left out. Columns: site_id, days (distinct days present),
    connector_hours, occupied_hours, charging_hours, energy_kwh, sessions_started,
    occupancy_ratio, charging_ratio, busiest_weekday, busiest_hour, busiest_occupancy_ratio."""

    def ratios(keys: list[str]) -> pl.DataFrame:
        return (
            peak.group_by(keys)
            .agg(pl.col("day").n_unique().cast(pl.Int64).alias("days"), pl.col(_SUMS).sum())
            .filter(pl.col("connector_hours") > 0)
            .with_columns(
                occupancy_ratio=pl.col("occupied_hours") / pl.col("connector_hours"),
                charging_ratio=pl.col("charging_hours") / pl.col("connector_hours"),
            )
            .sort(
                ["occupancy_ratio", "connector_hours", *keys],
                descending=[True, True] + [False] * len(keys),
            )
        )

    slots = (
        ratios(["site_id", "local_weekday", "local_hour"])
        .unique(subset="site_id", keep="first", maintain_order=True)
        .select(
            "site_id",
            busiest_weekday="local_weekday",
            busiest_hour="local_hour",
            busiest_occupancy_ratio="occupancy_ratio",
        )
    )
    return ratios(["site_id"]).head(n).join(slots, on="site_id", how="left", maintain_order="left")
