"""Site-local days: the days a person reads per site are the site's own calendar days, while the
analytics are computed (and partitioned in Dagster) by UTC day.

A local day D of a site in zone Z is the UTC interval [first instant of D in Z, first instant of
D + 1 in Z): 24 hours, or 23 and 25 on the days the clocks change. It overlaps one or two UTC
days (three only for a zone whose 23-hour day fits inside a UTC day), so a local-day figure
adds up pieces of the UTC partitions that overlap it, and is complete only when each of them is.

The rollups here are plain functions over polars frames (reports and assets call them):

- a timestamped row (a session's start, a 15-minute load-curve interval, a connector-hour) is on
  the local date of its timestamp in its site's zone (`with_local_day`, `by_local_day`); a site
  without a zone, or a row without a site, is on UTC days;
- an interval (an outage piece, a port's UTC day) is split at the local midnights it crosses
  (`split_local_days`), each piece keeping its share of the row's minutes;
- a figure stored only per UTC day (CO2 of `emissions_site_day`) is shared among the local days
  by the load curve's energy in each (`apportion`), or by time when the day delivered nothing;
- completeness (`local_gaps`): a local day is incomplete when one of the UTC partitions it
  overlaps is not 'ok' (`chargeops.completeness`), and missing when none of them is.

Timestamps must be UTC (`Datetime(..., "UTC")`). Every time zone in use today has an offset that
is a whole number of 15 minutes, so a 15-minute interval is wholly on one local day; a UTC hour
is on the local date of its start (in a half-hour zone such as Asia/Kolkata the last half-hour
of a local day is counted with the next, as peak usage labels hours).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from chargeops.completeness import Gap

UTC_ZONE = "UTC"
TS = pl.Datetime("us", "UTC")
_US_PER_MIN = 60_000_000


@lru_cache(maxsize=256)
def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or UTC_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def day_start(day: date, tz: str | None) -> datetime:
    """The first instant (UTC) of local date `day` in zone `tz`: local midnight, or the first
    local time after it where midnight does not exist (a zone that springs forward at 00:00)."""
    local = datetime.combine(day, time(0), tzinfo=zone(tz))  # fold=0: the earlier offset
    return local.astimezone(UTC)


def bounds(day: date, tz: str | None) -> tuple[datetime, datetime]:
    """[start, end) in UTC of local date `day` in zone `tz`."""
    return day_start(day, tz), day_start(day + timedelta(days=1), tz)


def day_minutes(day: date, tz: str | None) -> float:
    """The length of local date `day`: 1,440 minutes, 1,380 or 1,500 when the clocks change."""
    start, end = bounds(day, tz)
    return (end - start) / timedelta(minutes=1)


@lru_cache(maxsize=4096)
def utc_days(first: date, last: date, tz: str | None) -> tuple[date, date]:
    """The first and last UTC day (partition) that local days `first..last` of `tz` overlap."""
    start, _ = bounds(first, tz)
    _, end = bounds(last, tz)
    return start.date(), (end - timedelta(microseconds=1)).date()


def utc_span(first: date, last: date, zones: Iterable[str | None]) -> tuple[date, date]:
    """The UTC days that local days `first..last` overlap in any of `zones` (UTC when none):
    what a report on those local days must read and find complete."""
    spans = [utc_days(first, last, z) for z in set(zones) or {UTC_ZONE}]
    return min(s[0] for s in spans), max(s[1] for s in spans)


def last_whole_day(today: date, zones: Iterable[str | None]) -> date:
    """The latest local day, in every one of `zones`, that lies wholly in UTC days before
    `today`: what the partitions of yesterday and earlier, all computed, cover. Yesterday for
    sites at or east of UTC, the day before for sites west of it (their yesterday ends in
    today's UTC partition)."""
    zs = list(zones)
    day = today - timedelta(days=1)
    while utc_span(day, day, zs)[1] >= today:
        day -= timedelta(days=1)
    return day


@lru_cache(maxsize=4096)
def touched(utc_day: date, tz: str | None) -> tuple[date, ...]:
    """The local dates of `tz` that have an instant in UTC day `utc_day`."""
    start = datetime.combine(utc_day, time(0), tzinfo=UTC)
    end = start + timedelta(days=1) - timedelta(microseconds=1)
    first, last = start.astimezone(zone(tz)).date(), end.astimezone(zone(tz)).date()
    return tuple(first + timedelta(days=i) for i in range((last - first).days + 1))


def site_zones(sites: pl.DataFrame) -> pl.DataFrame:
    """site_id and timezone (UTC where the site has none) of a frame with those columns."""
    return sites.select(
        pl.col("site_id").cast(pl.String),
        pl.col("timezone").cast(pl.String).fill_null(UTC_ZONE).alias("timezone"),
    ).unique("site_id", keep="first")


def zones_of(sites: pl.DataFrame) -> list[str]:
    """The distinct zones of `sites` (UTC included when a row has none), sorted."""
    if sites.is_empty():
        return [UTC_ZONE]
    return sorted(set(site_zones(sites)["timezone"].to_list()))


def _with_zone(df: pl.DataFrame, sites: pl.DataFrame) -> pl.DataFrame:
    """`df` with column `_tz`: its site's zone, UTC for a row without a (known) site."""
    z = site_zones(sites).rename({"timezone": "_tz"})
    out = df.join(z, on="site_id", how="left") if "site_id" in df.columns else df
    if "_tz" not in out.columns:
        out = out.with_columns(pl.lit(None, pl.String).alias("_tz"))
    return out.with_columns(pl.col("_tz").fill_null(UTC_ZONE))


def _per_zone(df: pl.DataFrame, fn) -> pl.DataFrame:
    """`fn(part, zone)` on each zone's rows of a frame with `_tz`, concatenated (polars converts
    time zones one zone per expression)."""
    parts = [fn(part, tz) for (tz,), part in df.partition_by("_tz", as_dict=True).items()]
    if not parts:
        return fn(df, UTC_ZONE)
    return pl.concat(parts, how="vertical_relaxed")


def with_local_day(
    df: pl.DataFrame, sites: pl.DataFrame, ts: str, name: str = "day"
) -> pl.DataFrame:
    """`df` (with site_id and UTC timestamp column `ts`) plus column `name`: the local date of
    `ts` in the site's zone. Rows with a null `ts` get a null date."""
    check_zones(sites)

    def label(part: pl.DataFrame, tz: str) -> pl.DataFrame:
        return part.with_columns(pl.col(ts).dt.convert_time_zone(tz).dt.date().alias(name))

    return _per_zone(_with_zone(df, sites), label).drop("_tz")


def check_zones(sites: pl.DataFrame) -> None:
    """A ValueError naming the site whose time zone is unknown (never a silent UTC)."""
    for site, tz in site_zones(sites).iter_rows():
        try:
            zone(tz)
        except ValueError:
            raise ValueError(f"site {site}: unknown time zone {tz!r}") from None


def by_local_day(
    df: pl.DataFrame,
    sites: pl.DataFrame,
    ts: str,
    sums: list[str],
    keys: tuple[str, ...] = ("site_id",),
) -> pl.DataFrame:
    """Columns `sums` of `df` added up per `keys` and local day (column `day`) of `ts`."""
    labelled = with_local_day(df, sites, ts)
    return labelled.group_by("day", *keys).agg(pl.col(sums).sum()).sort("day", *keys)


def split_local_days(
    df: pl.DataFrame,
    sites: pl.DataFrame,
    start: str = "start_ts",
    end: str = "end_ts",
    name: str = "day",
) -> pl.DataFrame:
    """Each row of `df` (site_id, UTC `start` < `end`) cut at the local midnights of its site's
    zone: one row per local day it overlaps, `start`/`end` clipped to that day, column `name`
    that day, and column `share` the piece's fraction of the row's time (1.0 for a row of zero
    length, kept on the local day of its start)."""
    check_zones(sites)

    def cut(part: pl.DataFrame, tz: str) -> pl.DataFrame:
        local0 = pl.col(start).dt.convert_time_zone(tz)
        local1 = (pl.col(end) - pl.duration(microseconds=1)).dt.convert_time_zone(tz)
        rows = part.with_columns(
            _d0=local0.dt.date(), _d1=pl.max_horizontal(local0.dt.date(), local1.dt.date())
        )
        if rows.is_empty():
            return rows.with_columns(
                pl.lit(None, pl.Date).alias(name), pl.lit(None, pl.Float64).alias("share")
            ).drop("_d0", "_d1")
        lo, hi = rows["_d0"].min(), rows["_d1"].max()
        days = [lo + timedelta(days=i) for i in range((hi - lo).days + 1)]
        edges = pl.DataFrame(
            {
                name: days,
                "_s": [day_start(d, tz) for d in days],
                "_e": [day_start(d + timedelta(days=1), tz) for d in days],
            },
            schema={name: pl.Date, "_s": TS, "_e": TS},
        )
        return (
            rows.with_columns(
                pl.date_ranges("_d0", "_d1").alias(name),
                _span=(pl.col(end) - pl.col(start)).dt.total_microseconds().cast(pl.Float64),
            )
            .explode(name)
            .join(edges, on=name, how="left")
            .with_columns(
                **{start: pl.max_horizontal(start, "_s"), end: pl.min_horizontal(end, "_e")}
            )
            .with_columns(
                share=pl.when(pl.col("_span") > 0)
                .then((pl.col(end) - pl.col(start)).dt.total_microseconds() / pl.col("_span"))
                .otherwise(1.0)
            )
            .filter((pl.col("share") > 0) | (pl.col("_span") == 0))
            .drop("_d0", "_d1", "_s", "_e", "_span")
        )

    if df.is_empty():
        return df.with_columns(
            pl.lit(None, pl.Date).alias(name), pl.lit(None, pl.Float64).alias("share")
        )
    return _per_zone(_with_zone(df, sites), cut).drop("_tz")


def apportion(
    per_utc_day: pl.DataFrame,
    curve: pl.DataFrame,
    sites: pl.DataFrame,
    values: list[str],
) -> pl.DataFrame:
    """Figures stored per site and UTC day (`per_utc_day`: day, site_id, `values`) on local
    days: each UTC day's value shared among the local days it overlaps in proportion to the load
    curve's energy in each (`curve`: day, site_id, interval_start, energy_kwh), or to the time
    in each when the day delivered nothing. A local day's value is null only when every piece of
    it is; columns day (local), site_id, `values`."""
    cells = with_local_day(curve, sites, "interval_start", "local_day")
    shares = (
        cells.group_by("day", "site_id", "local_day")
        .agg(e=pl.col("energy_kwh").sum(), n=pl.len().cast(pl.Float64))
        .with_columns(
            e_total=pl.col("e").sum().over("day", "site_id"),
            n_total=pl.col("n").sum().over("day", "site_id"),
        )
        .with_columns(
            share=pl.when(pl.col("e_total") > 0)
            .then(pl.col("e") / pl.col("e_total"))
            .otherwise(pl.col("n") / pl.col("n_total"))
        )
        .select("day", "site_id", "local_day", "share")
    )
    # a UTC day without load-curve rows: shared by time
    bare = per_utc_day.select("day", "site_id").join(shares, on=["day", "site_id"], how="anti")
    if bare.height:
        spans = bare.with_columns(
            start_ts=pl.col("day").cast(pl.Datetime("us")).dt.replace_time_zone(UTC_ZONE)
        ).with_columns(end_ts=pl.col("start_ts") + pl.duration(days=1))
        by_time = split_local_days(spans, sites, name="local_day")
        shares = pl.concat(
            [shares, by_time.select("day", "site_id", "local_day", "share")],
            how="vertical_relaxed",
        )
    pieces = per_utc_day.join(shares, on=["day", "site_id"], how="inner")
    return (
        pieces.group_by(pl.col("local_day").alias("day"), "site_id")
        .agg(
            pl.when(pl.col(v).is_not_null().any())
            .then((pl.col(v) * pl.col("share")).sum())
            .otherwise(None)
            .alias(v)
            for v in values
        )
        .sort("day", "site_id")
    )


def merge_at_utc_midnight(pieces: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Rows of `pieces` (start_ts, end_ts, duration_min, `keys`) that a UTC day boundary cut in
    two (same `keys`, one ending at a UTC midnight where the next starts) joined again."""
    p = pieces.sort(*keys, "start_ts")
    same = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in keys])
    midnight = pl.col("start_ts") == pl.col("start_ts").dt.truncate("1d")
    continues = (same & (pl.col("start_ts") == pl.col("end_ts").shift(1)) & midnight).fill_null(
        False
    )
    others = [c for c in p.columns if c not in {*keys, "start_ts", "end_ts", "duration_min"}]
    return (
        p.with_columns(_piece=(~continues).cum_sum())
        .group_by("_piece", maintain_order=True)
        .agg(
            *[pl.col(k).first() for k in keys],
            pl.col("start_ts").min(),
            pl.col("end_ts").max(),
            pl.col("duration_min").sum(),
            *[pl.col(c).first() for c in others],
        )
        .drop("_piece")
        .select(p.columns)
    )


def outage_pieces(outages: pl.DataFrame, sites: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Outage pieces (as `analytics.outages`, clipped to UTC days) clipped to local days
    instead: pieces a UTC midnight cut joined again (`keys` name what must match: the port,
    cause and exclusion), then cut at the site's local midnights; `day` is the local day and
    duration_min each piece's share of the minutes."""
    merged = merge_at_utc_midnight(outages.drop("day", strict=False), keys)
    return (
        split_local_days(merged, sites)
        .with_columns(duration_min=pl.col("duration_min") * pl.col("share"))
        .drop("share")
    )


def port_minutes(uptime_daily: pl.DataFrame, sites: pl.DataFrame, port: list[str]) -> pl.DataFrame:
    """Per port and local day: minutes_in_period from `uptime_daily` rows (a port's UTC day,
    day and minutes_in_period), each UTC day's minutes shared among the local days it overlaps
    by time; columns day (local), `port`, site_id, minutes_in_period."""
    spans = uptime_daily.select(
        *port,
        "site_id",
        "minutes_in_period",
        start_ts=pl.col("day").cast(pl.Datetime("us")).dt.replace_time_zone(UTC_ZONE),
    ).with_columns(end_ts=pl.col("start_ts") + pl.duration(days=1))
    return (
        split_local_days(spans, sites)
        .group_by("day", *port, "site_id")
        .agg(minutes_in_period=(pl.col("minutes_in_period") * pl.col("share")).sum())
        .sort("day", *port)
    )


def peak_local_day(peak: pl.DataFrame) -> pl.DataFrame:
    """Rows of `analytics.peak_usage` (UTC `day`, local_weekday 1 = Monday) with `day` replaced
    by the local date: the one of day - 1, day, day + 1 with that weekday (a UTC day spans at
    most two local dates, and they are one day apart)."""
    wd = pl.col("day").dt.weekday().cast(pl.Int32)
    lw = pl.col("local_weekday").cast(pl.Int32)
    offset = (lw - wd + 8) % 7 - 1
    return peak.with_columns(day=pl.col("day") + pl.duration(days=offset))


# -- completeness ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalGap:
    """An asset's local day that is not whole: `partial` when some of the UTC partitions it
    overlaps are not 'ok', `missing` when none is; `utc_days` names them."""

    asset: str
    day: date
    status: str  # 'partial' | 'missing'
    utc_days: tuple[date, ...]


def local_gaps(
    gaps: Iterable[Gap], zones: Iterable[str | None], first: date, last: date
) -> list[LocalGap]:
    """The local days `first..last` that UTC `gaps` leave incomplete in any of `zones`: a day is
    `missing` only when it is missing in every zone (nothing of it anywhere), else `partial`."""
    zs = sorted({z or UTC_ZONE for z in zones}) or [UTC_ZONE]
    bad: dict[str, set[date]] = {}
    for g in gaps:
        bad.setdefault(g.asset, set()).add(g.day)
    out = []
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for asset, utc_bad in bad.items():
        for d in days:
            statuses, hit = [], set()
            for z in zs:
                a, b = utc_days(d, d, z)
                needed = {a + timedelta(days=i) for i in range((b - a).days + 1)}
                gone = needed & utc_bad
                hit |= gone
                statuses.append("ok" if not gone else "missing" if gone == needed else "partial")
            if hit:
                status = "missing" if all(s == "missing" for s in statuses) else "partial"
                out.append(LocalGap(asset, d, status, tuple(sorted(hit))))
    return sorted(out, key=lambda g: (g.asset, g.day))


def relevant(
    gaps: Iterable[Gap], zones: Iterable[str | None], first: date, last: date
) -> list[Gap]:
    """The UTC `gaps` that touch a local day `first..last` in any of `zones`: what a report on
    those local days names as missing (the partitions to run again)."""
    zs = sorted({z or UTC_ZONE for z in zones}) or [UTC_ZONE]
    return [g for g in gaps if any(first <= d <= last for z in zs for d in touched(g.day, z))]
