"""Connector-hour utilisation from state intervals, and its per-site daily roll-up.

Minutes are counted exactly: every interval boundary is placed on a grid of 2^-30 minute
(about 0.06 microseconds) measured from the start of its hour, and a state's minutes in an hour are
sums of differences of those grid points. The eight minutes columns of an hour are therefore
multiples of 2^-30 whose integer counts add up to 60 * 2^30, so they sum to exactly 60.0 in
floating point, in any order. Time an hour's intervals do not cover counts as unknown.
"""

from __future__ import annotations

import polars as pl

from pipelines.analytics.frames import TS, UTILISATION, RawWindow
from pipelines.analytics.states import KEY, connector_list, day_bounds

STATE_NAMES = [
    "available",
    "charging",
    "suspended",
    "occupied_other",
    "faulted",
    "unavailable",
    "offline",
    "unknown",
]
OCCUPIED = ["charging", "suspended", "occupied_other"]
_GRID = 2**30  # grid points per minute
_HOUR_UNITS = 60 * _GRID

UTILISATION_SITE_DAY = {  # per site and UTC day
    "day": pl.Date, "site_id": pl.String,
    "connectors": pl.Int64,            # distinct connectors (rows of the hourly frame / 24)
    "connector_hours": pl.Float64,     # connector-hours in the day (connectors x 24)
    "available_hours": pl.Float64, "charging_hours": pl.Float64,
    "suspended_hours": pl.Float64, "occupied_other_hours": pl.Float64,
    "faulted_hours": pl.Float64, "unavailable_hours": pl.Float64,
    "offline_hours": pl.Float64, "unknown_hours": pl.Float64,
    "occupied_hours": pl.Float64,      # charging + suspended + occupied_other
    "occupancy_ratio": pl.Float64,     # occupied_hours / connector_hours (null if no hours)
    "charging_ratio": pl.Float64,      # charging_hours / connector_hours (null if no hours)
}  # fmt: skip


def _grid(ts: pl.Expr, hour: pl.Expr) -> pl.Expr:
    """Position of `ts` in its hour, in grid units (2^-30 minute), rounded."""
    us = (ts - hour).dt.total_microseconds().cast(pl.Float64)
    return (us * (_GRID / 60e6)).round(0).cast(pl.Int64)


def utilisation_hourly(states: pl.DataFrame, window: RawWindow) -> pl.DataFrame:
    """Minutes per state for every connector and UTC hour of the day (frame UTILISATION).

    24 rows per connector (those in `states` plus `window.connectors` with connector_id > 0);
    site_id from `window.charge_points`; day = the partition date (UTC). The minutes columns of
    a row sum to exactly 60.0 (see the module docstring); occupancy_ratio =
    (charging + suspended + occupied_other) / 60, charging_ratio = charging / 60."""
    day_start, day_end = day_bounds(window)
    hours = pl.DataFrame(
        {
            "hour_ts": pl.datetime_range(
                day_start,
                day_end,
                "1h",
                closed="left",
                time_unit="us",
                time_zone="UTC",
                eager=True,
            )
        }  # fmt: skip
    ).with_columns(pl.col("hour_ts").cast(TS))
    hour_end = pl.col("hour_ts") + pl.duration(hours=1)

    pieces = (
        states.with_columns(
            pl.col("start_ts").clip(day_start, day_end),
            pl.col("end_ts").clip(day_start, day_end),
        )
        .filter(pl.col("end_ts") > pl.col("start_ts"))
        .with_columns(
            hour_ts=pl.datetime_ranges(
                pl.col("start_ts").dt.truncate("1h"),
                (pl.col("end_ts") - pl.duration(microseconds=1)).dt.truncate("1h"),
                "1h",
                closed="both",
            )
        )
        .explode("hour_ts")
        .with_columns(pl.col("hour_ts").cast(TS))
        .with_columns(
            units=_grid(pl.min_horizontal("end_ts", hour_end), pl.col("hour_ts"))
            - _grid(pl.max_horizontal("start_ts", "hour_ts"), pl.col("hour_ts"))
        )
    )
    per_hour = pieces.group_by([*KEY, "hour_ts"]).agg(
        pl.col("units").filter(pl.col("state") == s).sum().alias(s) for s in STATE_NAMES
    )
    connectors = (
        pl.concat([states.select(KEY), connector_list(window)])
        .filter(pl.col("connector_id") > 0)
        .unique()
    )
    known = [s for s in STATE_NAMES if s != "unknown"]
    grid = (
        connectors.join(hours, how="cross")
        .join(per_hour, on=[*KEY, "hour_ts"], how="left")
        .with_columns(pl.col(known).fill_null(0))
        .with_columns(unknown=pl.lit(_HOUR_UNITS, dtype=pl.Int64) - pl.sum_horizontal(known))
        .with_columns(pl.col(s).cast(pl.Float64) / _GRID for s in STATE_NAMES)
        .rename({s: f"minutes_{s}" for s in STATE_NAMES})
    )
    sites = window.charge_points.select("charge_point_id", "site_id").unique("charge_point_id")
    out = (
        grid.join(sites, on="charge_point_id", how="left")
        .with_columns(
            day=pl.lit(day_start.date(), dtype=pl.Date),
            occupancy_ratio=pl.sum_horizontal(f"minutes_{s}" for s in OCCUPIED) / 60.0,
            charging_ratio=pl.col("minutes_charging") / 60.0,
        )
        .sort([*KEY, "hour_ts"])
    )
    return out.select([pl.col(c).cast(t) for c, t in UTILISATION.items()])


def utilisation_site_day(hourly: pl.DataFrame) -> pl.DataFrame:
    """Per site and day (frame UTILISATION_SITE_DAY, defined in this module):

    - connectors: number of distinct connectors (Int64);
    - connector_hours: connector-hours in the day, i.e. rows of the hourly frame (Float64);
    - available_hours, charging_hours, suspended_hours, occupied_other_hours, faulted_hours,
      unavailable_hours, offline_hours, unknown_hours: the matching minutes_* column summed, in
      hours (they add up to connector_hours);
    - occupied_hours: charging_hours + suspended_hours + occupied_other_hours;
    - occupancy_ratio = occupied_hours / connector_hours;
    - charging_ratio = charging_hours / connector_hours (both null when connector_hours is 0).

    Charge points without a site are grouped under site_id null."""
    hours = [pl.col(f"minutes_{s}").sum().truediv(60.0).alias(f"{s}_hours") for s in STATE_NAMES]
    out = (
        hourly.group_by("day", "site_id")
        .agg(
            *hours,
            connectors=pl.struct(KEY).n_unique(),
            connector_hours=pl.len().cast(pl.Float64),
        )
        .with_columns(occupied_hours=pl.sum_horizontal(f"{s}_hours" for s in OCCUPIED))
        .with_columns(
            occupancy_ratio=pl.when(pl.col("connector_hours") > 0).then(
                pl.col("occupied_hours") / pl.col("connector_hours")
            ),
            charging_ratio=pl.when(pl.col("connector_hours") > 0).then(
                pl.col("charging_hours") / pl.col("connector_hours")
            ),
        )
        .sort("day", "site_id", nulls_last=True)
    )
    return out.select([pl.col(c).cast(t) for c, t in UTILISATION_SITE_DAY.items()])
