"""Emissions of the energy delivered and the tailpipe emissions it displaces, per session and per
site and day: pure functions over polars frames.

Method (the README quotes it, with a worked example that tests/test_emissions.py reproduces):

- grid_g = kWh x grid intensity of the site's grid region (g CO2(e)/kWh). Where `grid_hourly.csv`
  holds all 24 UTC hours of the region, each kWh gets the intensity of the UTC hour it was
  delivered in: a site-day uses the 15-minute load curve, a session spreads its energy evenly
  over [start_ts, charging_end_ts) (or end_ts). Otherwise the annual factor of `grid_annual.csv`.
- tailpipe_g = kWh / EV efficiency (kWh per distance) x the baseline combustion vehicle's
  g CO2 per distance, which is given directly or as fuel g CO2 per unit / fuel economy
  (e.g. 8,887 g per gallon / 26.0 mpg).
- net_saving_g = tailpipe_g - grid_g.

The grid region of a site is, in order: `site_overrides.csv` (site_id -> grid_region, baseline),
the site's `grid_region` column, the site's `country`; a site whose region has no factor gets null
grams (the asset reports it). The baseline is the override's, else `DEFAULT_BASELINE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

FACTORS_DIR = Path(__file__).with_name("emissions_factors")
DEFAULT_BASELINE = "US-EPA"
G_PER_LB = 453.59237  # exact (international avoirdupois pound)
_TO_G_PER_KWH = {"lb/MWh": G_PER_LB / 1000.0, "g/kWh": 1.0, "kg/kWh": 1000.0}
TS = pl.Datetime("us", "UTC")

SESSION_DAY = {  # one row per session that started in the day (analytics.sessions)
    "day": pl.Date, "session_id": pl.String, "site_id": pl.String, "grid_region": pl.String,
    "baseline": pl.String, "energy_kwh": pl.Float64, "factor_basis": pl.String,  # hourly|annual
    "grid_g_per_kwh": pl.Float64,  # effective (energy-weighted) intensity
    "grid_g": pl.Float64, "tailpipe_g": pl.Float64, "net_saving_g": pl.Float64,
}  # fmt: skip
SITE_DAY = {  # one row per site and UTC day, energy from the load curve
    "day": pl.Date, "site_id": pl.String, "grid_region": pl.String, "baseline": pl.String,
    "energy_kwh": pl.Float64, "sessions": pl.Int64, "factor_basis": pl.String,
    "grid_g_per_kwh": pl.Float64, "grid_g": pl.Float64, "tailpipe_g": pl.Float64,
    "net_saving_g": pl.Float64,
}  # fmt: skip
SITES = {"site_id": pl.String, "country": pl.String, "grid_region": pl.String}


@dataclass(frozen=True)
class Factors:
    """The factor tables, in g per kWh. annual: region, g_per_kwh, gas, year, source. hourly:
    region, hour_utc, g_per_kwh. baselines: baseline, displaced_g_per_kwh (tailpipe g avoided per
    kWh delivered), source. overrides: site_id, grid_region, baseline."""

    annual: pl.DataFrame
    hourly: pl.DataFrame
    baselines: pl.DataFrame
    overrides: pl.DataFrame


def _to_g_per_kwh(df: pl.DataFrame, table: str) -> pl.Expr:
    unknown = set(df["unit"].unique().to_list()) - set(_TO_G_PER_KWH)
    if unknown:
        raise ValueError(f"{table}: unknown unit(s) {sorted(unknown)}; use {sorted(_TO_G_PER_KWH)}")
    return pl.col("value") * pl.col("unit").replace_strict(_TO_G_PER_KWH, return_dtype=pl.Float64)


def grid_annual(df: pl.DataFrame) -> pl.DataFrame:
    if df["region"].is_duplicated().any():
        raise ValueError("grid_annual.csv: a region is listed twice")
    return df.select(
        "region", g_per_kwh=_to_g_per_kwh(df, "grid_annual.csv"), gas="gas", year="year",
        source="source",
    )  # fmt: skip


def grid_hourly(df: pl.DataFrame) -> pl.DataFrame:
    """Every region listed must have each UTC hour 0..23 exactly once (no silent gaps)."""
    if df.is_empty():
        return pl.DataFrame(
            schema={"region": pl.String, "hour_utc": pl.Int8, "g_per_kwh": pl.Float64}
        )
    counts = df.group_by("region").agg(
        n=pl.col("hour_utc").n_unique(), ok=pl.col("hour_utc").is_between(0, 23).all(),
        rows=pl.len(),
    )  # fmt: skip
    bad = counts.filter((pl.col("n") != 24) | ~pl.col("ok") | (pl.col("rows") != 24))
    if bad.height:
        raise ValueError(
            f"grid_hourly.csv: regions {bad['region'].to_list()} need hours 0..23 exactly once"
        )
    return df.select(
        "region",
        hour_utc=pl.col("hour_utc").cast(pl.Int8),
        g_per_kwh=_to_g_per_kwh(df, "grid_hourly.csv"),
    )


def baselines(df: pl.DataFrame) -> pl.DataFrame:
    """displaced_g_per_kwh = ICE g per distance / EV kWh per distance; the ICE figure is given or
    fuel g CO2 per unit / fuel economy (distance per unit)."""
    ice = pl.coalesce(
        pl.col("ice_g_co2_per_distance"),
        pl.col("fuel_g_co2_per_unit") / pl.col("fuel_economy_distance_per_unit"),
    )
    out = df.select(
        "baseline",
        "distance_unit",
        ice_g_per_distance=ice,
        ev_kwh_per_distance=pl.col("ev_kwh_per_distance"),
        displaced_g_per_kwh=ice / pl.col("ev_kwh_per_distance"),
        source="source",
    )
    if out["displaced_g_per_kwh"].is_null().any() or (out["ev_kwh_per_distance"] <= 0).any():
        raise ValueError(
            "baselines.csv: each baseline needs ev_kwh_per_distance > 0 and either "
            "ice_g_co2_per_distance or fuel_g_co2_per_unit and fuel_economy_distance_per_unit"
        )
    return out


def _read(path: Path, schema: dict) -> pl.DataFrame:
    return pl.read_csv(path, schema_overrides=schema, infer_schema_length=0).cast(schema)


def load_factors(folder: Path = FACTORS_DIR) -> Factors:
    """Read and check the CSV tables of `folder` (the shipped ones by default)."""
    folder = Path(folder)
    s = pl.String
    annual = _read(
        folder / "grid_annual.csv",
        {"region": s, "name": s, "value": pl.Float64, "unit": s, "gas": s, "basis": s,
         "year": pl.Int32, "source": s},
    )  # fmt: skip
    hourly = _read(
        folder / "grid_hourly.csv",
        {"region": s, "hour_utc": pl.Int32, "value": pl.Float64, "unit": s, "gas": s,
         "year": pl.Int32, "source": s},
    )  # fmt: skip
    base = _read(
        folder / "baselines.csv",
        {"baseline": s, "distance_unit": s, "ev_kwh_per_distance": pl.Float64,
         "ice_g_co2_per_distance": pl.Float64, "fuel_economy_distance_per_unit": pl.Float64,
         "fuel_unit": s, "fuel_g_co2_per_unit": pl.Float64, "year": pl.Int32, "source": s},
    )  # fmt: skip
    overrides = _read(
        folder / "site_overrides.csv", {"site_id": s, "grid_region": s, "baseline": s}
    )
    return Factors(grid_annual(annual), grid_hourly(hourly), baselines(base), overrides)


def site_factors(sites: pl.DataFrame, factors: Factors) -> pl.DataFrame:
    """Per site: grid_region (resolved), baseline, annual_g_per_kwh (null: no factor), hourly
    (bool: the region has an hourly table), displaced_g_per_kwh."""
    known = factors.annual["region"].to_list()
    ov = factors.overrides.rename({"grid_region": "ov_region", "baseline": "ov_baseline"})
    region = (
        pl.when(pl.col("ov_region").is_not_null())
        .then(pl.col("ov_region"))
        .when(pl.col("grid_region").is_in(known))
        .then(pl.col("grid_region"))
        .when(pl.col("country").is_in(known))
        .then(pl.col("country"))
        .otherwise(pl.coalesce("grid_region", "country"))
    )
    hourly_regions = factors.hourly["region"].unique().to_list()
    return (
        sites.select(list(SITES))
        .join(ov, on="site_id", how="left")
        .select(
            "site_id",
            grid_region=region,
            baseline=pl.coalesce("ov_baseline", pl.lit(DEFAULT_BASELINE)),
        )
        .join(
            factors.annual.select("region", annual_g_per_kwh="g_per_kwh"),
            left_on="grid_region",
            right_on="region",
            how="left",
        )
        .join(
            factors.baselines.select("baseline", "displaced_g_per_kwh"), on="baseline", how="left"
        )
        .with_columns(hourly=pl.col("grid_region").is_in(hourly_regions))
    )


def _intensity(pieces: pl.DataFrame, factors: Factors, hour_col: str) -> pl.DataFrame:
    """Adds g_per_kwh to energy pieces that carry grid_region, hourly, annual_g_per_kwh and a
    timestamp `hour_col`: the hourly factor of that UTC hour where the region has one."""
    return (
        pieces.with_columns(hour_utc=pl.col(hour_col).dt.hour().cast(pl.Int8))
        .join(
            factors.hourly.rename({"g_per_kwh": "hourly_g"}),
            left_on=["grid_region", "hour_utc"],
            right_on=["region", "hour_utc"],
            how="left",
        )
        .with_columns(
            g_per_kwh=pl.when(pl.col("hourly")).then("hourly_g").otherwise("annual_g_per_kwh")
        )
    )


def _totals(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        factor_basis=pl.when(pl.col("hourly")).then(pl.lit("hourly")).otherwise(pl.lit("annual")),
        grid_g_per_kwh=pl.when(pl.col("energy_kwh") > 0)
        .then(pl.col("grid_g") / pl.col("energy_kwh"))
        .otherwise(pl.col("annual_g_per_kwh")),
        tailpipe_g=pl.col("energy_kwh") * pl.col("displaced_g_per_kwh"),
    ).with_columns(net_saving_g=pl.col("tailpipe_g") - pl.col("grid_g"))


def session_emissions(
    sessions: pl.DataFrame, sites: pl.DataFrame, factors: Factors, day: date
) -> pl.DataFrame:
    """Per session (schema SESSION_DAY). `sessions`: session_id, site_id, start_ts, end_ts,
    charging_end_ts, energy_wh (the analytics.sessions columns)."""
    sf = site_factors(sites, factors)
    s = (
        sessions.select(
            "session_id", "site_id", "start_ts", "end_ts", "charging_end_ts", "energy_wh"
        )  # fmt: skip
        .with_columns(
            energy_kwh=pl.col("energy_wh").fill_null(0.0) / 1000.0,
            t0=pl.col("start_ts"),
            t1=pl.coalesce("charging_end_ts", "end_ts", "start_ts"),
        )
        .with_columns(t1=pl.max_horizontal("t0", "t1"))
        .join(sf, on="site_id", how="left")
        .with_columns(pl.col("hourly").fill_null(False))
    )
    # split each session's energy over the UTC hours of [t0, t1), pro rata of the time in each
    span_us = (pl.col("t1") - pl.col("t0")).dt.total_microseconds().cast(pl.Float64)
    pieces = (
        s.with_columns(
            hour=pl.datetime_ranges(
                pl.col("t0").dt.truncate("1h"), pl.col("t1"), interval="1h", closed="left"
            )
        )
        .with_columns(
            hour=pl.when(pl.col("hour").list.len() > 0)
            .then("hour")
            .otherwise(pl.concat_list(pl.col("t0").dt.truncate("1h")))
        )
        .explode("hour")
        .with_columns(
            lo=pl.max_horizontal("t0", "hour"),
            hi=pl.min_horizontal("t1", pl.col("hour").dt.offset_by("1h")),
        )
        .with_columns(
            share=pl.when(span_us > 0)
            .then((pl.col("hi") - pl.col("lo")).dt.total_microseconds().cast(pl.Float64) / span_us)
            .otherwise(1.0)
        )
        .pipe(_intensity, factors, "hour")
        .group_by("session_id")
        .agg(grid_g=(pl.col("energy_kwh") * pl.col("share") * pl.col("g_per_kwh")).sum())
    )
    out = s.join(pieces, on="session_id", how="left").with_columns(
        grid_g=pl.when(pl.col("annual_g_per_kwh").is_null() & ~pl.col("hourly"))
        .then(None)
        .otherwise("grid_g"),
        day=pl.lit(day, pl.Date),
    )
    return (
        _totals(out).select([pl.col(c).cast(t) for c, t in SESSION_DAY.items()]).sort("session_id")
    )


def site_day_emissions(
    load_curve: pl.DataFrame,
    site_day: pl.DataFrame,
    sites: pl.DataFrame,
    factors: Factors,
    day: date,
) -> pl.DataFrame:
    """Per site and day (schema SITE_DAY) from the 15-minute load curve (site_id, interval_start,
    energy_kwh) and energy_site_day (site_id, sessions)."""
    sf = site_factors(sites, factors)
    curve = (
        load_curve.select("site_id", "interval_start", "energy_kwh")
        .join(sf, on="site_id", how="inner")
        .with_columns(pl.col("hourly").fill_null(False))
        .pipe(_intensity, factors, "interval_start")
        .group_by("site_id")
        .agg(
            energy_kwh=pl.col("energy_kwh").sum(),
            grid_g=(pl.col("energy_kwh") * pl.col("g_per_kwh")).sum(),
            no_factor=pl.col("g_per_kwh").is_null().any(),
        )
        .with_columns(grid_g=pl.when(pl.col("no_factor")).then(None).otherwise("grid_g"))
    )
    out = (
        curve.join(sf, on="site_id", how="left")
        .join(site_day.select("site_id", "sessions"), on="site_id", how="left")
        .with_columns(pl.col("sessions").fill_null(0), day=pl.lit(day, pl.Date))
    )
    return _totals(out).select([pl.col(c).cast(t) for c, t in SITE_DAY.items()]).sort("site_id")


def hourly_profile(half_hourly: pl.DataFrame, region: str, year: int, source: str) -> pl.DataFrame:
    """Rows for grid_hourly.csv from a half-hourly intensity series (columns ts, g_per_kwh), e.g.
    the NESO 'Historic generation mix & carbon intensity' CSV (DATETIME, CARBON_INTENSITY): the
    mean of the year's readings in each UTC hour of day, rounded to the gram (no more precision
    than the source has)."""
    return (
        half_hourly.filter(pl.col("ts").dt.year() == year)
        .group_by(hour_utc=pl.col("ts").dt.hour())
        .agg(value=pl.col("g_per_kwh").mean().round(0))
        .sort("hour_utc")
        .select(
            pl.lit(region).alias("region"),
            "hour_utc",
            "value",
            unit=pl.lit("g/kWh"),
            gas=pl.lit("CO2"),
            year=pl.lit(year),
            source=pl.lit(source),
        )
    )


def method_text(factors: Factors) -> list[dict]:
    """The factors in use, for the compliance report: one dict per grid region and baseline."""
    rows = [
        {"kind": "grid", "key": r["region"], "value": f"{r['g_per_kwh']:.1f} g {r['gas']}/kWh",
         "year": r["year"], "source": r["source"]}
        for r in factors.annual.iter_rows(named=True)
    ]  # fmt: skip
    for r in factors.baselines.iter_rows(named=True):
        rows.append(
            {
                "kind": "baseline",
                "key": r["baseline"],
                "value": f"{r['displaced_g_per_kwh']:.1f} g CO2 avoided per kWh "
                f"({r['ice_g_per_distance']:.1f} g/{r['distance_unit']} / "
                f"{r['ev_kwh_per_distance']} kWh/{r['distance_unit']})",
                "year": None,
                "source": r["source"],
            }
        )
    return rows
