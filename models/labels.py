"""Labels: does a connector have an outage starting within the next `horizon` days?

An outage counts when its cause is `faulted` or `unavailable` and at least part of it is not
excluded (operator exclusions, closed hours); offline windows are a feature, not a label. The
outage list (`analytics.outages`) is clipped per day, so an outage crossing midnight appears as
several rows: rows of one connector and cause that touch end to start are one outage, which
starts where the first of them starts.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from models.features import KEY, TS

OUTAGES = {
    "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "start_ts": TS, "end_ts": TS, "cause": pl.String, "excluded": pl.Boolean,
}  # fmt: skip
LABEL_CAUSES = ("faulted", "unavailable")
HORIZON_DAYS = 7


def outage_starts(outages: pl.DataFrame) -> pl.DataFrame:
    """Whole outages (rows joined across midnight) that count for the label: KEY, start_ts,
    end_ts."""
    df = (
        outages.select([pl.col(c).cast(t) for c, t in OUTAGES.items()])
        .filter(pl.col("cause").is_in(LABEL_CAUSES))
        .sort([*KEY, "cause", "start_ts"])
    )
    group = [*KEY, "cause"]
    new = pl.col("start_ts").shift(1).over(group).is_null() | (
        pl.col("start_ts") > pl.col("end_ts").shift(1).over(group)
    )
    df = df.with_columns(chain=new.cast(pl.Int32).cum_sum().over(group))
    return (
        df.group_by([*group, "chain"])
        .agg(
            pl.col("start_ts").min(),
            pl.col("end_ts").max(),
            (~pl.col("excluded").fill_null(False)).any().alias("counts"),
        )
        .filter("counts")
        .select(*KEY, "start_ts", "end_ts")
        .sort([*KEY, "start_ts"])
    )


def label(
    rows: pl.DataFrame,
    outages: pl.DataFrame,
    observed_until: date,
    horizon_days: int = HORIZON_DAYS,
) -> pl.DataFrame:
    """`rows` (KEY + day) with `label` (1/0; null when the horizon reaches past
    `observed_until`, the last day whose outages are known) and `down_at_end` (in an outage
    at the end of the day: a technician is already due, so not a prediction target)."""
    starts = outage_starts(outages)
    day_end = pl.col("day").cast(pl.Datetime("us")).dt.replace_time_zone("UTC") + pl.duration(
        days=1
    )
    keyed = rows.select(*KEY, "day").unique().with_columns(day_end.alias("_end"))
    hits = (
        keyed.join(starts, on=KEY, how="inner")
        .with_columns(
            future=(pl.col("start_ts") >= pl.col("_end"))
            & (pl.col("start_ts") < pl.col("_end") + pl.duration(days=horizon_days)),
            down=(pl.col("start_ts") < pl.col("_end")) & (pl.col("end_ts") > pl.col("_end")),
        )
        .group_by(*KEY, "day")
        .agg(pl.col("future").any(), pl.col("down").any())
    )
    complete = pl.col("day") + timedelta(days=horizon_days) <= observed_until
    return (
        rows.join(hits, on=[*KEY, "day"], how="left")
        .with_columns(
            pl.when(complete)
            .then(pl.col("future").fill_null(False).cast(pl.Int8))
            .otherwise(None)
            .alias("label"),
            pl.col("down").fill_null(False).alias("down_at_end"),
        )
        .drop("future", "down")
    )
