"""Energy delivered, per site and 15-minute interval (the load curve), per connector and per site
for one UTC day, from the Energy.Active.Import.Register samples of `window.meter`.

Rules (the README quotes them):

- Only register samples with a transaction_id are used; samples of one transaction
  (charge_point_id, transaction_id) are ordered by time; several samples at the same instant (e.g.
  Transaction.Begin and Sample.Periodic contexts) count once, with their highest value.
- The energy of a pair of consecutive samples is the register increase between them; a decrease
  (meter reset or replacement) counts as 0, and so does a non-finite sample or a rise larger than
  the charge point's rated power could deliver over the pair's span (`plausibility.py`: the
  sessions asset lists those in analytics.quarantine). The transaction's meter_start/meter_stop readings are
  not used: energy before its first and after its last sample is not in these figures (chargers
  send Transaction.Begin/End samples, which cover it).
- A pair's energy is spread evenly over its time span [t0, t1): the share falling in a 15-minute
  interval (or in the day) is energy * overlap / (t1 - t0). So a pair spanning an interval boundary
  is split pro rata, and a session crossing midnight splits its energy between the two days.
- The connector of a pair is the one on its samples; the site is the charge point's.
- load curve: energy_kwh per site and interval, mean_kw = energy_kwh / 0.25; every site of
  window.sites that has a charge point gets all 96 intervals, zero where nothing was delivered.
- energy per connector: every port of window.connectors (plus any connector that had energy or a
  session); sessions = sessions whose start_ts falls in the day.
- energy per site: the sum over its connectors; peak_demand_kw / peak_demand_at = the largest
  15-minute mean_kw of the load curve and the start of the first interval that reaches it (null
  when nothing was delivered).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from pipelines.analytics.frames import (
    ENERGY_CONNECTOR_DAY,
    ENERGY_SITE_DAY,
    LOAD_CURVE,
    TS,
    RawWindow,
)
from pipelines.analytics.plausibility import finite, impossible_step
from pipelines.analytics.uptime import KEY, as_utc, conform, window_day

REGISTER = "Energy.Active.Import.Register"
INTERVAL = timedelta(minutes=15)
_US_INTERVAL = 15 * 60 * 1_000_000
_INTERVAL_H = 0.25
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def interval_energy(window: RawWindow) -> pl.LazyFrame:
    """Register increments inside the day, spread over 15-minute intervals: one row per
    (charge_point_id, evse_id, connector_id, interval_start) piece of a sample pair, with
    energy_wh. Not aggregated: callers group as they need."""
    ds, de = as_utc(window.day_start), as_utc(window.day_end)
    ds_us = (ds - _EPOCH) // timedelta(microseconds=1)
    span_us = (de - ds) // timedelta(microseconds=1)
    same_tx = (pl.col("charge_point_id") == pl.col("charge_point_id").shift(1)) & (
        pl.col("transaction_id") == pl.col("transaction_id").shift(1)
    )
    rated = window.charge_points.lazy().select("charge_point_id", rated_w="max_power_w")
    pairs = (
        window.meter.lazy()
        .filter(
            (pl.col("measurand") == REGISTER)
            & pl.col("transaction_id").is_not_null()
            & finite("value")
        )
        .group_by("charge_point_id", "transaction_id", "ts")
        .agg(pl.col("evse_id", "connector_id").first(), pl.col("value").max())
        .sort("charge_point_id", "transaction_id", "ts")
        .with_columns(
            t0=pl.when(same_tx).then(pl.col("ts").shift(1)),
            wh=(pl.col("value") - pl.col("value").shift(1)).clip(lower_bound=0.0),
        )
        .join(rated.unique("charge_point_id"), on="charge_point_id", how="left")
        .filter(
            pl.col("t0").is_not_null()
            & (pl.col("wh") > 0)
            & ~impossible_step(pl.col("wh"), pl.col("ts") - pl.col("t0"), pl.col("rated_w"))
        )
        .select(
            *KEY,
            "wh",
            a=pl.col("t0").dt.epoch("us").clip(lower_bound=ds_us) - ds_us,
            b=pl.col("ts").dt.epoch("us").clip(upper_bound=ds_us + span_us) - ds_us,
            span=(pl.col("ts") - pl.col("t0")).dt.total_microseconds(),
        )
        .filter(pl.col("b") > pl.col("a"))
        .with_columns(
            k=pl.int_ranges(pl.col("a") // _US_INTERVAL, (pl.col("b") - 1) // _US_INTERVAL + 1)
        )
        .explode("k")
    )
    k_start = pl.col("k") * _US_INTERVAL
    overlap = pl.min_horizontal(pl.col("b"), k_start + _US_INTERVAL) - pl.max_horizontal(
        pl.col("a"), k_start
    )
    return pairs.select(
        *KEY,
        interval_start=(k_start + ds_us).cast(TS),
        energy_wh=pl.col("wh") * overlap.cast(pl.Float64) / pl.col("span").cast(pl.Float64),
    )


def _intervals(window: RawWindow) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "interval_start": pl.datetime_range(
                as_utc(window.day_start),
                as_utc(window.day_end),
                INTERVAL,
                closed="left",
                time_unit="us",
                time_zone="UTC",
                eager=True,
            )
        }
    )


def load_curve(window: RawWindow) -> pl.DataFrame:
    """Energy and mean power per site and 15-minute interval of the day (schema LOAD_CURVE)."""
    cp_site = window.charge_points.select("charge_point_id", "site_id").drop_nulls("site_id")
    sites = (
        window.sites.select("site_id")
        .join(cp_site.select("site_id"), on="site_id", how="semi")
        .unique()
    )
    energy = (
        interval_energy(window)
        .join(cp_site.lazy(), on="charge_point_id")
        .group_by("site_id", "interval_start")
        .agg(pl.col("energy_wh").sum())
        .collect()
    )
    out = (
        sites.join(_intervals(window), how="cross")
        .join(energy, on=["site_id", "interval_start"], how="left")
        .with_columns(
            pl.lit(window_day(window), pl.Date).alias("day"),
            energy_kwh=pl.col("energy_wh").fill_null(0.0) / 1000.0,
        )
        .with_columns(mean_kw=pl.col("energy_kwh") / _INTERVAL_H)
        .sort("site_id", "interval_start")
    )
    return conform(out, LOAD_CURVE)


def energy_connector_day(window: RawWindow, sessions_overlapping: pl.DataFrame) -> pl.DataFrame:
    """kWh delivered within the day and sessions started in it, per connector (schema
    ENERGY_CONNECTOR_DAY). `sessions_overlapping` follows the SESSIONS schema; only its sessions
    whose start_ts is in the day are counted (distinct session_id)."""
    ds, de = as_utc(window.day_start), as_utc(window.day_end)
    energy = (
        interval_energy(window)
        .group_by(KEY)
        .agg(energy_kwh=pl.col("energy_wh").sum() / 1000.0)
        .collect()
    )
    sessions = (
        sessions_overlapping.filter(
            (pl.col("start_ts") >= ds)
            & (pl.col("start_ts") < de)
            & pl.col("connector_id").is_not_null()
        )
        .group_by(KEY)
        .agg(sessions=pl.col("session_id").n_unique().cast(pl.Int64))
    )
    conns = (
        pl.concat(
            [
                window.connectors.filter(pl.col("connector_id") > 0).select(KEY),
                energy.select(KEY),
                sessions.select(KEY).cast({"evse_id": pl.Int32, "connector_id": pl.Int32}),
            ]
        )
        .drop_nulls()
        .unique()
    )
    out = (
        conns.join(
            window.charge_points.select("charge_point_id", "site_id"),
            on="charge_point_id",
            how="left",
        )
        .join(energy, on=KEY, how="left")
        .join(sessions.cast({"evse_id": pl.Int32, "connector_id": pl.Int32}), on=KEY, how="left")
        .with_columns(
            pl.lit(window_day(window), pl.Date).alias("day"),
            pl.col("energy_kwh").fill_null(0.0),
            pl.col("sessions").fill_null(0),
        )
        .sort(KEY)
    )
    return conform(out, ENERGY_CONNECTOR_DAY)


def energy_site_day(load_curve: pl.DataFrame, connector_day: pl.DataFrame) -> pl.DataFrame:
    """Per site and day (schema ENERGY_SITE_DAY): energy and sessions summed over the site's
    connectors; peak demand from the load curve (the first interval with the largest mean_kw;
    peak_demand_at null and peak_demand_kw 0 when nothing was delivered, both null for a site
    missing from the load curve). Connectors without a site are left out."""
    totals = (
        connector_day.drop_nulls("site_id")
        .group_by("day", "site_id")
        .agg(pl.col("energy_kwh").sum(), pl.col("sessions").sum())
    )
    peaks = (
        load_curve.group_by("day", "site_id")
        .agg(
            peak_demand_kw=pl.col("mean_kw").max(),
            peak_demand_at=pl.col("interval_start")
            .filter(pl.col("mean_kw") == pl.col("mean_kw").max())
            .min(),
        )
        .with_columns(
            peak_demand_at=pl.when(pl.col("peak_demand_kw") > 0).then(pl.col("peak_demand_at"))
        )
    )
    out = (
        totals.join(peaks, on=["day", "site_id"], how="full", coalesce=True)
        .with_columns(pl.col("energy_kwh").fill_null(0.0), pl.col("sessions").fill_null(0))
        .sort("day", "site_id")
    )
    return conform(out, ENERGY_SITE_DAY)
