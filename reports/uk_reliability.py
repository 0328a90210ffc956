"""The UK Public Charge Point Regulations 2023 (SI 2023/1168) reliability report for a calendar
year: each rapid (>= 50 kW) charge point's reliability in the site's accessible hours and the
network average against the 99% of regulation 6.

Method (the README and the compliance report quote it):

- Source: `analytics.uk_reliability_daily` (pipelines/analytics/uptime.py), which holds every
  figure this report sums: per rapid charge point and UTC day, inoperative minutes (every
  connector down: faulted, unavailable or offline), excluded minutes (an operator exclusion
  window, or the site closed), the site's closed minutes and the offline minutes. Only charge
  points of sites whose country is GB/UK are reported; the days counted are those the charge
  point has rows.
- Accessible minutes = minutes of the day minus the site's closed minutes (operating hours in the
  site's time zone; null hours = 24/7). Counted inoperative minutes = inoperative - excluded; they
  all lie inside accessible hours, because an inoperative minute outside them is always excluded.
- reliability_pct = 100 * (accessible - counted inoperative) / accessible, from the year's sums.
- Network average = the arithmetic mean of the per-charge-point percentages (each charge point
  weighs the same, as reg. 6 averages over the network's rapid charge points); it must be >= 99.
- Offline time counts as inoperative (see STATUS_MAPPING for why); `offline_minutes` (counted
  inoperative minutes with a connector offline) and `reliability_if_offline_unknown_pct` show what
  the figure would be if it counted as UNKNOWN.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from chargeops.completeness import gaps
from chargeops.frames import read_table
from reports.csvsafe import frame_csv
from reports.files import incomplete_note, period_dir, write_manifest, write_text

UK_TARGET_PCT = 99.0
UK_COUNTRIES = ("GB", "UK")
UK_DAILY = {
    "day": pl.Date, "charge_point_id": pl.String, "site_id": pl.String,
    "minutes_in_period": pl.Float64, "inoperative_minutes": pl.Float64,
    "excluded_minutes": pl.Float64, "closed_minutes": pl.Float64, "offline_minutes": pl.Float64,
}  # fmt: skip
SITES = {"site_id": pl.String, "name": pl.String, "country": pl.String}

# our connector states (pipelines/analytics/states.py) -> OCPI 2.2.1 EVSE status -> the
# regulation's reading. A charge point is inoperative while every connector is unreliable.
STATUS_MAPPING = [
    ("available", "Available", "AVAILABLE", "reliable"),
    ("charging", "Charging; 2.0.1 Occupied while power flows", "CHARGING", "reliable"),
    ("suspended", "SuspendedEV, SuspendedEVSE", "CHARGING", "reliable"),
    ("occupied_other", "Preparing, Finishing, Reserved, 2.0.1 Occupied without power",
     "CHARGING / RESERVED / BLOCKED", "reliable"),
    ("unknown", "no status received yet, or an unrecognised one", "UNKNOWN", "reliable"),
    ("faulted", "Faulted (connector, or connector 0 = whole charge point)", "OUTOFORDER",
     "unreliable"),
    ("unavailable", "Unavailable (operator took it out of service)", "INOPERATIVE", "unreliable"),
    ("offline", "no connection, or silent beyond the heartbeat timeout", "INOPERATIVE",
     "unreliable"),
]  # fmt: skip
OFFLINE_NOTE = (
    "Offline time (the charge point is disconnected from the back office or silent beyond the "
    "heartbeat timeout) is mapped to INOPERATIVE, not UNKNOWN: a driver relying on the network's "
    "app or a roaming partner cannot start a session on it and we cannot show that it worked. "
    "OCPI platforms often publish UNKNOWN for such EVSEs, which the regulation counts as reliable, "
    "so this choice lowers the figure; the column reliability_if_offline_unknown_pct shows the "
    "figure under the other reading."
)

PER_CP_COLUMNS = [
    "charge_point_id", "site_id", "site_name", "days", "minutes_in_period", "accessible_minutes",
    "inoperative_minutes", "excluded_minutes", "counted_inoperative_minutes", "offline_minutes",
    "reliability_pct", "reliability_if_offline_unknown_pct", "meets_99pct",
]  # fmt: skip


def _uk_sites(sites: pl.DataFrame) -> pl.DataFrame:
    return sites.filter(pl.col("country").str.to_uppercase().is_in(UK_COUNTRIES))


def per_charge_point_rows(uk_daily: pl.DataFrame, sites: pl.DataFrame) -> pl.DataFrame:
    """The UK_DAILY rows the report counts: those of charge points at UK sites."""
    return uk_daily.join(_uk_sites(sites).select("site_id"), on="site_id", how="semi")


def per_charge_point(uk_daily: pl.DataFrame, sites: pl.DataFrame) -> pl.DataFrame:
    """Per rapid charge point of a UK site: the period's sums and reliability (PER_CP_COLUMNS),
    from UK_DAILY rows (analytics.uk_reliability_daily)."""
    uk_sites = _uk_sites(sites)
    daily = per_charge_point_rows(uk_daily, sites).with_columns(
        accessible=pl.col("minutes_in_period") - pl.col("closed_minutes")
    )
    pct = 100.0 * (pl.col("accessible_minutes") - pl.col("counted_inoperative_minutes"))
    alt = 100.0 * (
        pl.col("accessible_minutes")
        - (pl.col("counted_inoperative_minutes") - pl.col("offline_minutes"))
    )
    out = (
        daily.sort("day")
        .group_by("charge_point_id")
        .agg(
            pl.col("site_id").last(),
            days=pl.len().cast(pl.Int64),
            minutes_in_period=pl.col("minutes_in_period").sum(),
            accessible_minutes=pl.col("accessible").sum(),
            inoperative_minutes=pl.col("inoperative_minutes").sum(),
            excluded_minutes=pl.col("excluded_minutes").sum(),
            offline_minutes=pl.col("offline_minutes").sum(),
        )
        .with_columns(
            counted_inoperative_minutes=pl.col("inoperative_minutes") - pl.col("excluded_minutes")
        )
        .with_columns(
            reliability_pct=pl.when(pl.col("accessible_minutes") > 0).then(
                pct / pl.col("accessible_minutes")
            ),
            reliability_if_offline_unknown_pct=pl.when(pl.col("accessible_minutes") > 0).then(
                alt / pl.col("accessible_minutes")
            ),
        )
        .with_columns(meets_99pct=pl.col("reliability_pct") >= UK_TARGET_PCT)
        .join(uk_sites.select("site_id", site_name="name"), on="site_id", how="left")
        .select(PER_CP_COLUMNS)
        .sort("charge_point_id")
    )
    return out


def network(per_cp: pl.DataFrame) -> dict:
    """The regulation 6 network figure: mean of the per-charge-point percentages."""
    measured = per_cp.filter(pl.col("reliability_pct").is_not_null())
    if measured.is_empty():
        return {"charge_points": 0, "network_average_pct": None, "meets_target": None,
                "min_pct": None, "below_99pct": [], "if_offline_unknown_pct": None}  # fmt: skip
    avg = float(measured["reliability_pct"].mean())
    return {
        "charge_points": measured.height,
        "network_average_pct": avg,
        "meets_target": avg >= UK_TARGET_PCT,
        "min_pct": float(measured["reliability_pct"].min()),
        "below_99pct": measured.filter(~pl.col("meets_99pct"))["charge_point_id"].to_list(),
        "if_offline_unknown_pct": float(measured["reliability_if_offline_unknown_pct"].mean()),
    }


@dataclass(frozen=True)
class UkReliability:
    start: date
    end: date  # inclusive
    per_cp: pl.DataFrame
    network: dict


class MissingDetail(Exception):
    """uk_reliability_daily rows written before migration 010 (no closed/offline minutes)."""


def _check_detail(rows: pl.DataFrame) -> None:
    stale = rows.filter(pl.col("closed_minutes").is_null() | pl.col("offline_minutes").is_null())
    if stale.height:
        days = stale["day"]
        raise MissingDetail(
            f"analytics.uk_reliability_daily has {stale.height} rows of UK charge points between "
            f"{days.min()} and {days.max()} written before closed/offline minutes were recorded "
            "(migration 010): materialise the `uptime` asset again for those days"
        )


def read(url: str, start: date, end: date) -> UkReliability:
    """The report for the UTC days start..end (inclusive) from the analytics tables."""
    cols = ", ".join(UK_DAILY)
    uk_daily = read_table(
        url,
        f"SELECT {cols} FROM analytics.uk_reliability_daily "
        f"WHERE day BETWEEN '{start}' AND '{end}'",
        UK_DAILY,
    )
    sites = read_table(url, "SELECT site_id, name, country FROM site", SITES)
    _check_detail(per_charge_point_rows(uk_daily, sites))
    per_cp = per_charge_point(uk_daily, sites)
    return UkReliability(start, end, per_cp, network(per_cp))


def summary(report: UkReliability, year: int) -> dict:
    return {
        "regulation": "The Public Charge Point Regulations 2023 (SI 2023/1168), regulation 6",
        "year": year,
        "period": f"{report.start}..{report.end}",
        "target_pct": UK_TARGET_PCT,
        **report.network,
        "averaging": "arithmetic mean of each rapid charge point's reliability over the year "
        "(each recomputed from its summed minutes)",
        "accessible_hours": "minutes outside the site's operating hours are not counted",
        "status_mapping": [
            {"state": s, "ocpp": o, "ocpi": c, "regulation": r} for s, o, c, r in STATUS_MAPPING
        ],
        "offline": OFFLINE_NOTE,
    }


def write(report: UkReliability, folder: Path, year: int) -> list[Path]:
    csv = folder / f"uk_reliability_{year}.csv"
    write_text(csv, frame_csv(report.per_cp.with_columns(pl.col(pl.Float64).round(4))))
    js = folder / f"uk_reliability_{year}_summary.json"
    write_text(js, json.dumps(summary(report, year), indent=2, default=str) + "\n")
    return [csv, js]


SOURCES = ("uptime",)  # the daily asset these figures come from (uk_reliability_daily)


def run(url: str, reports_dir: Path, year: int) -> tuple[list[Path], UkReliability]:
    """Build and write the year's report into `<reports_dir>/<year>/` with its manifest, and a
    companion note naming the days whose uptime failed or never ran."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    report = read(url, first, last)
    folder = period_dir(Path(reports_dir), str(year))
    paths = write(report, folder, year)
    found = gaps(url, first, last, SOURCES, clip_to_recorded=True)
    if note := incomplete_note(paths[0], found, paths[0].name):
        paths.append(note)
    write_manifest(folder)
    return paths, report


def cli(args: argparse.Namespace, settings) -> int:
    from chargeops.db import resolve_database_url
    from chargeops.settings import ConfigError

    year = int(args.year)
    if not 2000 <= year <= 2100:
        raise ConfigError(f"--year {year}: use a calendar year such as 2026")
    out = Path(args.out) if getattr(args, "out", None) else settings.reports_path
    try:
        paths, report = run(resolve_database_url(settings), out, year)
    except MissingDetail as e:
        raise ConfigError(str(e)) from None
    avg = report.network["network_average_pct"]
    figure = "no rapid UK charge points" if avg is None else f"network average {avg:.2f}%"
    verdict = "" if avg is None else (" (meets 99%)" if avg >= UK_TARGET_PCT else " (BELOW 99%)")
    print(f"UK reliability {year}: {figure}{verdict}")
    for p in paths:
        print(f"  {p}")
    return 0
