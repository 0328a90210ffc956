"""Uptime of ports (23 CFR 680.116(b)) and reliability of rapid charge points (UK Public Charge
Point Regulations 2023), one UTC day at a time, from the STATES frame.

Rules (the README quotes them):

- A port (a connector with connector_id > 0) is *down* while its state is ``faulted``,
  ``unavailable`` or ``offline``. ``unknown`` (no information, e.g. before the first status) is not
  counted as down, nor are the occupied states.
- Adjacent down intervals of one connector with the same cause are merged; the cause is the state.
- An outage minute is *excluded* when it lies in an operator-entered exclusion window
  (``outage_exclusion``; null evse_id = every connector of the charge point, null connector_id =
  every connector of that EVSE) or outside the site's operating hours. 680.116 counts a port as
  unavailable only when it should be available, so minutes outside operating hours are excluded
  for every cause (faulted, unavailable and offline alike), reason ``outside_operating_hours``.
- When several exclusions cover the same minute, the reason shown is ``outside_operating_hours``
  first, then the operator reasons in the order utility_interruption, vehicle_fault,
  scheduled_maintenance, vandalism, natural_disaster, other. The minute is counted once.
- Each outage is split into pieces that are wholly excluded (with their reason) or wholly counted;
  OUTAGES holds one row per piece, clipped to the day.
- uptime_pct = 100 * (minutes_in_period - (outage_minutes - excluded_minutes)) / minutes_in_period,
  with minutes_in_period = 1440 (the UTC day) and outage_minutes including the excluded pieces.
- Rollups (quarter, year) add the minutes and recompute the percentage from the sums; they never
  average percentages.

Operating hours: ``sites.operating_hours`` is JSON text ``{"mon": ["07:00", "19:00"], ...}`` in the
site's local time (``sites.timezone``). Null = open 24/7; a weekday missing from the object (or
mapped to null / []) = closed all day. A day may also list several ranges
(``[["07:00", "12:00"], ["13:00", "19:00"]]``). "24:00" means the end of the day, and a close time
not after the open time means the range ends the next local day (so ["22:00", "06:00"] is an
overnight range, ["00:00", "00:00"] is 24 hours). The opening ranges of every local date that
overlaps the UTC day are converted to UTC with the zone's rules, so DST days are handled: a local
time that does not exist (spring forward) is read with the offset in force before the change (02:30
becomes 03:30 in the new offset), an ambiguous one (fall back) as its first occurrence.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from pipelines.analytics.frames import OUTAGES, TS, UK_RELIABILITY, UPTIME, RawWindow

DOWN_STATES = ("faulted", "unavailable", "offline")
EXCLUSION_REASONS = (
    "utility_interruption", "vehicle_fault", "scheduled_maintenance", "vandalism",
    "natural_disaster", "other",
)  # fmt: skip
OUTSIDE_HOURS = "outside_operating_hours"
RAPID_MIN_POWER_W = 50_000.0
UPTIME_TARGET_PCT = 97.0  # 680.116(b)(1): average annual uptime greater than 97%
UK_TARGET_PCT = 99.0  # SI 2023/1168 reg. 6: network average of at least 99%

KEY = ["charge_point_id", "evse_id", "connector_id"]
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Priority of exclusion reasons when several cover one minute: lower wins.
_REASONS_BY_PRIORITY = (OUTSIDE_HOURS, *EXCLUSION_REASONS)
_US_PER_MIN = 60_000_000
_PERIODS = {"month": "1mo", "quarter": "1q", "year": "1y"}


# -- helpers shared by the modules of this package ------------------------------------------------
def as_utc(ts: datetime) -> datetime:
    """A window bound as an aware UTC datetime (naive bounds are read as UTC)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def window_day(window: RawWindow) -> date:
    """The partition date: the UTC date of `day_start`."""
    return as_utc(window.day_start).date()


def minutes(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """Length of [start, end) in minutes, as Float64."""
    return (end - start).dt.total_microseconds().cast(pl.Float64) / _US_PER_MIN


def _clip(col: str, lo: datetime, hi: datetime) -> pl.Expr:
    return (
        pl.when(pl.col(col) < lo)
        .then(pl.lit(lo, TS))
        .when(pl.col(col) > hi)
        .then(pl.lit(hi, TS))
        .otherwise(pl.col(col))
    )


def conform(df: pl.DataFrame | pl.LazyFrame, schema: dict) -> pl.DataFrame:
    """`df` with exactly the columns of `schema`, in order, cast to its dtypes."""
    return df.lazy().select([pl.col(c).cast(t) for c, t in schema.items()]).collect()


def _period_every(period: str) -> str:
    try:
        return _PERIODS[period]
    except KeyError:
        raise ValueError(f"period must be one of {sorted(_PERIODS)}, not {period!r}") from None


# -- operating hours ------------------------------------------------------------------------------
def _parse_hhmm(site_id: str, text: object) -> timedelta:
    try:
        hh, mm = (int(part) for part in str(text).split(":"))
    except ValueError:
        hh, mm = -1, -1
    if not (0 <= mm < 60 and 0 <= hh * 60 + mm <= 24 * 60):
        raise ValueError(f"site {site_id}: operating hours time {text!r} is not HH:MM")
    return timedelta(hours=hh, minutes=mm)


def _day_ranges(site_id: str, spec: object) -> list[tuple[timedelta, timedelta]]:
    """The [open, close) offsets from local midnight of one weekday's entry."""
    if spec is None or spec == []:
        return []
    if not isinstance(spec, list):
        raise ValueError(f"site {site_id}: operating hours entry {spec!r} is not a list")
    ranges = spec if all(isinstance(r, list) for r in spec) else [spec]
    out = []
    for r in ranges:
        if len(r) != 2:
            raise ValueError(f"site {site_id}: operating hours range {r!r} is not [open, close]")
        opens, closes = _parse_hhmm(site_id, r[0]), _parse_hhmm(site_id, r[1])
        if closes <= opens:
            closes += timedelta(days=1)
        out.append((opens, closes))
    return out


def _closed_in_day(
    site_id: str, tz_name: str | None, hours_json: str, day_start: datetime, day_end: datetime
) -> list[tuple[datetime, datetime]]:
    try:
        tz = ZoneInfo(tz_name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"site {site_id}: unknown time zone {tz_name!r}") from exc
    try:
        hours = json.loads(hours_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"site {site_id}: operating_hours is not JSON: {hours_json!r}") from exc
    if not isinstance(hours, dict):
        raise ValueError(f"site {site_id}: operating_hours must be an object, not {hours_json!r}")
    unknown = set(hours) - set(_WEEKDAYS)
    if unknown:
        raise ValueError(
            f"site {site_id}: unknown weekday keys {sorted(unknown)} in operating_hours"
        )
    first = day_start.astimezone(tz).date() - timedelta(days=1)  # overnight ranges spill over
    last = (day_end - timedelta(microseconds=1)).astimezone(tz).date()
    opens: list[tuple[datetime, datetime]] = []
    local = first
    while local <= last:
        midnight = datetime.combine(local, time())
        for a, b in _day_ranges(site_id, hours.get(_WEEKDAYS[local.weekday()])):
            # wall-clock arithmetic, then the zone's offset at that wall time (fold=0)
            s = (midnight + a).replace(tzinfo=tz).astimezone(UTC)
            e = (midnight + b).replace(tzinfo=tz).astimezone(UTC)
            s, e = max(s, day_start), min(e, day_end)
            if e > s:
                opens.append((s, e))
        local += timedelta(days=1)
    closed, cursor = [], day_start
    for s, e in sorted(opens):
        if s > cursor:
            closed.append((cursor, s))
        cursor = max(cursor, e)
    if cursor < day_end:
        closed.append((cursor, day_end))
    return closed


def closed_intervals(sites: pl.DataFrame, day_start: datetime, day_end: datetime) -> pl.DataFrame:
    """(site_id, start_ts, end_ts): the parts of [day_start, day_end) when each site is closed.

    Sites with null operating_hours (24/7) have no rows. Loops over sites (a dimension table),
    not over data rows."""
    day_start, day_end = as_utc(day_start), as_utc(day_end)
    rows = []
    for site_id, tz_name, hours_json in sites.select(
        "site_id", "timezone", "operating_hours"
    ).iter_rows():
        if hours_json is None:
            continue
        for s, e in _closed_in_day(site_id, tz_name, hours_json, day_start, day_end):
            rows.append((site_id, s, e))
    return pl.DataFrame(
        rows, schema={"site_id": pl.String, "start_ts": TS, "end_ts": TS}, orient="row"
    )


# -- outages --------------------------------------------------------------------------------------
def _down_intervals(states: pl.DataFrame, ds: datetime, de: datetime) -> pl.LazyFrame:
    """Down intervals per connector clipped to the day, adjacent same-cause ones merged."""
    down = (
        states.lazy()
        .filter(pl.col("state").is_in(DOWN_STATES) & (pl.col("connector_id") > 0))
        .select(
            *KEY,
            start=_clip("start_ts", ds, de),
            end=_clip("end_ts", ds, de),
            cause=pl.col("state"),
        )
        .filter(pl.col("end") > pl.col("start"))
        .sort([*KEY, "start"])
    )
    same_key = pl.all_horizontal([pl.col(k).eq_missing(pl.col(k).shift(1)) for k in KEY])
    joins_previous = (
        same_key
        & (pl.col("start") == pl.col("end").shift(1))
        & (pl.col("cause") == pl.col("cause").shift(1))
    ).fill_null(False)
    return (
        down.with_columns(oid=(~joins_previous).cum_sum())
        .group_by("oid")
        .agg(
            *[pl.col(k).first() for k in KEY],
            pl.col("start").min(),
            pl.col("end").max(),
            pl.col("cause").first(),
        )
    )


def _exclusion_intervals(
    conns: pl.LazyFrame, window: RawWindow, ds: datetime, de: datetime
) -> pl.LazyFrame:
    """Per connector of `conns`: (KEY, start, end, prio) of every exclusion clipped to the day,
    operator windows and closed hours alike; prio indexes _REASONS_BY_PRIORITY."""
    prio = {r: i for i, r in enumerate(_REASONS_BY_PRIORITY)}
    operator = (
        conns.join(window.exclusions.lazy(), on="charge_point_id", suffix="_x")
        .filter(
            (pl.col("evse_id_x").is_null() | (pl.col("evse_id_x") == pl.col("evse_id")))
            & (
                pl.col("connector_id_x").is_null()
                | (pl.col("connector_id_x") == pl.col("connector_id"))
            )
        )
        .select(
            *KEY,
            start=_clip("starts_at", ds, de),
            end=_clip("ends_at", ds, de),
            prio=pl.col("reason").replace_strict(
                prio, default=prio["other"], return_dtype=pl.Int32
            ),
        )
    )
    cp_site = window.charge_points.lazy().select("charge_point_id", "site_id")
    site_ids = conns.join(cp_site, on="charge_point_id").select("site_id").unique().collect()
    closed = closed_intervals(window.sites.join(site_ids, on="site_id", how="semi"), ds, de)
    hours = (
        conns.join(cp_site, on="charge_point_id")
        .join(closed.lazy(), on="site_id")
        .select(*KEY, start="start_ts", end="end_ts", prio=pl.lit(0, pl.Int32))
    )
    return pl.concat([operator, hours]).filter(pl.col("end") > pl.col("start"))


def outages(states: pl.DataFrame, window: RawWindow) -> pl.DataFrame:
    """Outage pieces of each port in the day (schema OUTAGES), from the STATES frame.

    A port is down while faulted, unavailable or offline (23 CFR 680.116(b)). Each outage is cut
    into pieces at the edges of exclusion windows and of the site's operating hours; a piece is
    either wholly excluded (``excluded`` true, ``exclusion_reason`` the exclusion's reason or
    ``outside_operating_hours``) or wholly counted. See the module docstring for the rules."""
    ds, de = as_utc(window.day_start), as_utc(window.day_end)
    down = _down_intervals(states, ds, de).collect()
    if down.is_empty():
        return pl.DataFrame(schema=OUTAGES)
    conns = down.lazy().select(KEY).unique()
    excl = _exclusion_intervals(conns, window, ds, de).collect()

    # elementary segments between consecutive boundaries (outage and exclusion edges)
    bounds = pl.concat(
        [f.select(*KEY, ts=pl.col(c)) for f in (down, excl) for c in ("start", "end")]
    )
    segs = (
        bounds.unique()
        .sort([*KEY, "ts"])
        .with_columns(seg_end=pl.col("ts").shift(-1).over(KEY))
        .drop_nulls("seg_end")
        .rename({"ts": "seg_start"})
        .sort("seg_start")
    )
    # the outage (if any) a segment belongs to; outages of one connector do not overlap
    segs = (
        segs.join_asof(
            down.sort("start"),
            left_on="seg_start",
            right_on="start",
            by=KEY,
            strategy="backward",
            check_sortedness=False,  # both sides are sorted by the time column just above
        )
        .filter(pl.col("end").is_not_null() & (pl.col("seg_start") < pl.col("end")))
        .with_row_index("sid")
    )
    # the winning exclusion of each segment (segments are elementary: overlap means containment)
    seg_prio = (
        segs.select("sid", *KEY, "seg_start", "seg_end")
        .join(excl, on=KEY)
        .filter((pl.col("start") <= pl.col("seg_start")) & (pl.col("end") >= pl.col("seg_end")))
        .group_by("sid")
        .agg(pl.col("prio").min())
    )
    segs = segs.join(seg_prio, on="sid", how="left").sort([*KEY, "seg_start"])
    new_piece = (
        (pl.col("oid") != pl.col("oid").shift(1))
        | ~pl.col("prio").eq_missing(pl.col("prio").shift(1))
    ).fill_null(True)
    reasons = dict(enumerate(_REASONS_BY_PRIORITY))
    pieces = (
        segs.with_columns(pid=new_piece.cum_sum())
        .group_by("pid")
        .agg(
            *[pl.col(k).first() for k in KEY],
            pl.col("seg_start").min(),
            pl.col("seg_end").max(),
            pl.col("cause").first(),
            pl.col("prio").first(),
        )
        .join(
            window.charge_points.select("charge_point_id", "site_id"),
            on="charge_point_id",
            how="left",
        )
        .select(
            pl.lit(window_day(window), pl.Date).alias("day"),
            *KEY,
            "site_id",
            start_ts="seg_start",
            end_ts="seg_end",
            duration_min=minutes(pl.col("seg_start"), pl.col("seg_end")),
            cause="cause",
            excluded=pl.col("prio").is_not_null(),
            exclusion_reason=pl.col("prio").replace_strict(
                reasons, default=None, return_dtype=pl.String
            ),
        )
        .sort([*KEY, "start_ts"])
    )
    return conform(pieces, OUTAGES)


def _port_keys(window: RawWindow, *extra: pl.DataFrame) -> pl.DataFrame:
    """Ports (connector_id > 0) of window.connectors plus any met in `extra`, with site_id."""
    frames = [f.select(KEY).cast({"evse_id": pl.Int32, "connector_id": pl.Int32}) for f in extra]
    return (
        pl.concat([window.connectors.select(KEY), *frames])
        .filter(pl.col("connector_id") > 0)
        .unique()
        .join(
            window.charge_points.select("charge_point_id", "site_id"),
            on="charge_point_id",
            how="left",
        )
    )


def uptime_daily(outages: pl.DataFrame, window: RawWindow) -> pl.DataFrame:
    """Per port and day (schema UPTIME): 23 CFR 680.116(b) applied to one UTC day.

    Every port of window.connectors gets a row (100% when it had no outage); a port that appears
    only in `outages` is added too, so no outage minute is dropped."""
    ds, de = as_utc(window.day_start), as_utc(window.day_end)
    period = (de - ds) / timedelta(minutes=1)
    agg = outages.group_by(KEY).agg(
        outage_minutes=pl.col("duration_min").sum(),
        excluded_minutes=pl.col("duration_min").filter(pl.col("excluded")).sum(),
    )
    out = (
        _port_keys(window, outages)
        .join(agg, on=KEY, how="left")
        .with_columns(
            pl.lit(window_day(window), pl.Date).alias("day"),
            pl.col("outage_minutes", "excluded_minutes").fill_null(0.0),
        )
        .pipe(_with_period, period)
        .with_columns(uptime_pct=_pct("minutes_in_period", "outage_minutes", "excluded_minutes"))
        .sort(KEY)
    )
    return conform(out, UPTIME)


def _with_period(df: pl.DataFrame, period: float) -> pl.DataFrame:
    """Adds minutes_in_period as a materialised column: polars turns a division by a broadcast
    literal into a multiplication by its reciprocal, which can differ from SQL's division in the
    last bit; with a real column uptime_pct is the correctly rounded quotient."""
    return df.with_columns(pl.Series("minutes_in_period", [period] * df.height, pl.Float64))


def _pct(period: str, down: str, excluded: str) -> pl.Expr:
    p = pl.col(period)
    return pl.when(p > 0).then(100.0 * (p - (pl.col(down) - pl.col(excluded))) / p)


# -- UK reliability -------------------------------------------------------------------------------
def uk_reliability_daily(states: pl.DataFrame, window: RawWindow) -> pl.DataFrame:
    """Reliability of each rapid charge point for the day (schema UK_RELIABILITY).

    The Public Charge Point Regulations 2023 (SI 2023/1168), regulation 6: a rapid charge point
    (max_power_w >= 50 kW) is operational while at least one of its connectors is; it is
    inoperative while every connector (connector_id > 0, from window.connectors and STATES) is
    down (faulted, unavailable or offline). An inoperative minute is excluded when every
    connector's outage at that minute is excluded (an exclusion window covering it or the site
    being closed, as in `outages`): if one connector is down for a counted reason, the minute
    counts. Only the site's accessible hours count: closed_minutes is the part of the day the
    site is closed, accessible = minutes_in_period - closed_minutes, and
    reliability_pct = 100 * (accessible - (inoperative - excluded)) / accessible (null on a day
    the site is closed throughout). The same formula over summed minutes gives the yearly figure
    (`uk_reliability_rollup`, the view analytics.uk_reliability_yearly, reports/uk_reliability.py).

    Each row also carries what the yearly report needs beyond that: offline_minutes, the counted inoperative minutes
    (not excluded, so inside accessible hours) during which at least one connector is offline: the
    union over the connectors. Those minutes would count as reliable if offline were read as OCPI
    UNKNOWN rather than INOPERATIVE, which the report shows as its alternative figure.

    The network average against the 99% target is computed in `uk_network_reliability`."""
    ds, de = as_utc(window.day_start), as_utc(window.day_end)
    rapid = window.charge_points.filter(pl.col("max_power_w") >= RAPID_MIN_POWER_W).select(
        "charge_point_id", "site_id"
    )
    rapid_states = states.join(rapid, on="charge_point_id", how="semi")
    pieces = outages(rapid_states, window)
    n_conns = (
        pl.concat([window.connectors.select(KEY), rapid_states.select(KEY)])
        .filter(pl.col("connector_id") > 0)
        .join(rapid, on="charge_point_id", how="semi")
        .unique()
        .group_by("charge_point_id")
        .agg(n=pl.len().cast(pl.Int64))
    )
    counted = (~pl.col("excluded")).cast(pl.Int64)
    offline = (pl.col("cause") == "offline").cast(pl.Int64)
    events = pl.concat(
        [
            pieces.select(
                "charge_point_id", ts="start_ts", d_down=pl.lit(1, pl.Int64), d_counted=counted,
                d_offline=offline,
            ),
            pieces.select(
                "charge_point_id", ts="end_ts", d_down=pl.lit(-1, pl.Int64), d_counted=-counted,
                d_offline=-offline,
            ),
        ]
    )  # fmt: skip
    length = minutes(pl.col("ts"), pl.col("next_ts"))
    sweep = (
        events.group_by("charge_point_id", "ts")
        .agg(pl.col("d_down", "d_counted", "d_offline").sum())
        .sort("charge_point_id", "ts")
        .with_columns(
            down=pl.col("d_down").cum_sum().over("charge_point_id"),
            counted=pl.col("d_counted").cum_sum().over("charge_point_id"),
            offline=pl.col("d_offline").cum_sum().over("charge_point_id"),
            next_ts=pl.col("ts").shift(-1).over("charge_point_id"),
        )
        .drop_nulls("next_ts")
        .join(n_conns, on="charge_point_id")
        .filter(pl.col("down") >= pl.col("n"))
        .group_by("charge_point_id")
        .agg(
            inoperative_minutes=length.sum(),
            excluded_minutes=length.filter(pl.col("counted") == 0).sum(),
            offline_minutes=length.filter((pl.col("counted") > 0) & (pl.col("offline") > 0)).sum(),
        )
    )
    site_ids = rapid.select("site_id").drop_nulls().unique()
    closed = (
        closed_intervals(window.sites.join(site_ids, on="site_id", how="semi"), ds, de)
        .group_by("site_id")
        .agg(closed_minutes=minutes(pl.col("start_ts"), pl.col("end_ts")).sum())
    )
    period = (de - ds) / timedelta(minutes=1)
    out = (
        rapid.join(sweep, on="charge_point_id", how="left")
        .join(closed, on="site_id", how="left")
        .with_columns(
            pl.lit(window_day(window), pl.Date).alias("day"),
            pl.col(
                "inoperative_minutes", "excluded_minutes", "offline_minutes", "closed_minutes"
            ).fill_null(0.0),
        )
        .pipe(_with_period, period)
        .with_columns(accessible=pl.col("minutes_in_period") - pl.col("closed_minutes"))
        .with_columns(reliability_pct=_pct("accessible", "inoperative_minutes", "excluded_minutes"))
        .sort("charge_point_id")
    )
    return conform(out, UK_RELIABILITY)


# -- rollups (also expressed as SQL views) --------------------------------------------------------
def uptime_rollup(uptime_daily: pl.DataFrame, period: str) -> pl.DataFrame:
    """Per port and calendar period ('month', 'quarter' or 'year', in UTC days): the daily minutes
    summed and uptime_pct recomputed from the sums (never an average of percentages).
    meets_target: uptime_pct > 97 (680.116(b)(1); binding for the year). Columns: period_start,
    charge_point_id, evse_id, connector_id, site_id (the latest day's), days, minutes_in_period,
    outage_minutes, excluded_minutes, uptime_pct, meets_target. The period covers the days present
    (a port commissioned mid-year is measured from its first day)."""
    every = _period_every(period)
    return (
        uptime_daily.sort("day")
        .group_by(pl.col("day").dt.truncate(every).alias("period_start"), *KEY)
        .agg(
            pl.col("site_id").last(),
            days=pl.len().cast(pl.Int64),
            minutes_in_period=pl.col("minutes_in_period").sum(),
            outage_minutes=pl.col("outage_minutes").sum(),
            excluded_minutes=pl.col("excluded_minutes").sum(),
        )
        .with_columns(uptime_pct=_pct("minutes_in_period", "outage_minutes", "excluded_minutes"))
        .with_columns(meets_target=pl.col("uptime_pct") > UPTIME_TARGET_PCT)
        .sort("period_start", *KEY)
    )


def uk_reliability_rollup(uk_daily: pl.DataFrame, period: str) -> pl.DataFrame:
    """Per rapid charge point and calendar period: minutes summed, reliability_pct recomputed
    from the sums over accessible minutes (minutes_in_period - closed_minutes). Columns:
    period_start, charge_point_id, site_id, days, minutes_in_period, closed_minutes,
    inoperative_minutes, excluded_minutes, reliability_pct."""
    every = _period_every(period)
    return (
        uk_daily.sort("day")
        .group_by(pl.col("day").dt.truncate(every).alias("period_start"), "charge_point_id")
        .agg(
            pl.col("site_id").last(),
            days=pl.len().cast(pl.Int64),
            minutes_in_period=pl.col("minutes_in_period").sum(),
            closed_minutes=pl.col("closed_minutes").fill_null(0.0).sum(),
            inoperative_minutes=pl.col("inoperative_minutes").sum(),
            excluded_minutes=pl.col("excluded_minutes").sum(),
        )
        .with_columns(accessible=pl.col("minutes_in_period") - pl.col("closed_minutes"))
        .with_columns(reliability_pct=_pct("accessible", "inoperative_minutes", "excluded_minutes"))
        .drop("accessible")
        .sort("period_start", "charge_point_id")
    )


def uk_network_reliability(uk_daily: pl.DataFrame, period: str) -> pl.DataFrame:
    """The network figure of SI 2023/1168 reg. 6 per calendar period ('year' is the regulation's;
    'quarter' and 'month' for monitoring): the mean of each rapid charge point's reliability over
    the period (each recomputed from its summed minutes), and whether it is at least 99%.
    Columns: period_start, charge_points, reliability_pct, min_reliability_pct, meets_target."""
    per_cp = uk_reliability_rollup(uk_daily, period)
    return (
        per_cp.group_by("period_start")
        .agg(
            charge_points=pl.len().cast(pl.Int64),
            reliability_pct=pl.col("reliability_pct").mean(),
            min_reliability_pct=pl.col("reliability_pct").min(),
        )
        .with_columns(meets_target=pl.col("reliability_pct") >= UK_TARGET_PCT)
        .sort("period_start")
    )
