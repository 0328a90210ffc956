"""What the operator dashboard says, computed from the analytics tables: read once per period for
the whole network, narrowed to an operator's or a site's sites in polars (site ids come from
chargers and configuration, so they never reach SQL text), then summarised by pure functions.

Windows: the headline figures compare the period with the one before (`chargeops.periods.previous`);
the trend charts show at least the last 14 days and the hour-by-weekday heatmap the last 28, so a
daily dashboard still shows a shape.

Days: every per-site figure is on the site's local day (`chargeops.local_days`): sessions by the
local date of their start, energy by the 15-minute load-curve intervals of the local day,
utilisation by its connector-hours, uptime and outages cut at local midnight, CO2 shared out of
the UTC days by the energy in each local day, the heatmap's window in local days. A network figure
adds up each site's local days (the dashboard says so). Revenue and reconciliation stay on UTC
days, as the payments are reconciled (the dashboard says so too). The UTC partitions a local day
overlaps are all read: one more UTC day before or after the window for sites east or west of UTC.

Completeness: each figure comes from the asset that owns it (`SOURCE`), and the days that asset
did not record 'ok' (`chargeops.completeness`) make it partial (a value from the other days, no
change) or missing (no value at all): never a 0 that reads as "nothing happened". A site's local
day is incomplete when any UTC partition it overlaps is; the banner names those UTC days.

At risk: the model's list only while its card says it beats the fault-count baseline on held-out
data; otherwise the baseline rule itself (connectors with faults in the last 7 days), saying why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, timedelta

import polars as pl

from chargeops import completeness, frames
from chargeops import local_days as ld
from chargeops.completeness import Gap
from chargeops.periods import Period, previous
from reports.compliance import (
    CURVE,
    NEVI_TARGET_PCT,
    SESSION_SLOTS,
    local_uptime,
    session_slots_sql,
    sum_minutes,
    uptime_pct,
)

TREND_DAYS = 14
HEATMAP_DAYS = 28
LIST_ROWS = 10  # outages, at-risk connectors and exceptions listed one by one; totals cover all
PORT = ["charge_point_id", "evse_id", "connector_id"]

# the asset that owns each figure: its days not recorded 'ok' make the figure partial or missing
SOURCE = {
    "sessions": "sessions", "energy_kwh": "energy", "utilisation_pct": "utilisation",
    "uptime_pct": "uptime", "outages": "uptime", "outage_hours": "uptime", "saved_kg": "emissions",
    "exceptions": "reconciliation", "expected_gross": "expected_revenue",
    "captured": "reconciliation", "refunded": "reconciliation", "fees": "reconciliation",
    "net": "reconciliation", "heatmap": "peak_usage",
}  # fmt: skip
FIGURE_ASSETS = tuple(dict.fromkeys(SOURCE.values()))
# the assets whose figures are shown on each site's local day; the others (revenue and
# reconciliation) on UTC days, the at-risk list as of a UTC day
LOCAL_ASSETS = ("sessions", "energy", "utilisation", "uptime", "emissions", "peak_usage")
MODEL_ASSET, BASELINE_ASSET = "maintenance_scores", "maintenance_features"
BASELINE_RULE = "the baseline rule: faults in the last 7 days"

SITES = {"site_id": pl.String, "name": pl.String, "timezone": pl.String}
# the frames of DashboardData; `day` is the site's local day but for EXPECTED, RECON, EXCEPTIONS
SESSIONS = {"day": pl.Date, "site_id": pl.String, "sessions": pl.Int64}
ENERGY = {"day": pl.Date, "site_id": pl.String, "energy_kwh": pl.Float64}
UTILISATION = {
    "day": pl.Date, "site_id": pl.String, "connector_hours": pl.Float64,
    "occupied_hours": pl.Float64, "charging_hours": pl.Float64,
}  # fmt: skip
PEAK = {
    "day": pl.Date, "site_id": pl.String, "local_weekday": pl.Int16, "local_hour": pl.Int16,
    "connector_hours": pl.Float64, "occupied_hours": pl.Float64, "sessions_started": pl.Int64,
}  # fmt: skip
UPTIME = {
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "minutes_in_period": pl.Float64, "outage_minutes": pl.Float64,
    "excluded_minutes": pl.Float64,
}  # fmt: skip
OUTAGES = {
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "start_ts": pl.Datetime("us", "UTC"), "end_ts": pl.Datetime("us", "UTC"),
    "duration_min": pl.Float64, "cause": pl.String, "excluded": pl.Boolean,
}  # fmt: skip
EXPECTED = {
    "day": pl.Date, "site_id": pl.String, "currency": pl.String,
    "minor_unit_exponent": pl.Int16, "expected_gross": pl.Int64,
}  # fmt: skip
RECON = {
    "day": pl.Date, "site_id": pl.String, "currency": pl.String, "captured": pl.Int64,
    "refunded": pl.Int64, "fees": pl.Int64, "net": pl.Int64, "exceptions": pl.Int64,
}  # fmt: skip
EXCEPTIONS = {
    "day": pl.Date, "line_key": pl.String, "session_id": pl.String, "site_id": pl.String,
    "currency": pl.String, "minor_unit_exponent": pl.Int16, "expected_gross": pl.Int64,
    "captured": pl.Int64, "refunded": pl.Int64, "category": pl.String, "reason": pl.String,
}  # fmt: skip
EMISSIONS = {"day": pl.Date, "site_id": pl.String, "net_saving_g": pl.Float64}
AT_RISK = {
    "day": pl.Date, "rank": pl.Int32, "charge_point_id": pl.String, "evse_id": pl.Int32,
    "connector_id": pl.Int32, "site_id": pl.String, "model": pl.String, "risk": pl.Float64,
    "score_source": pl.String, "top_features": pl.String, "faults_7d": pl.Float64,
}  # fmt: skip


@dataclass(frozen=True)
class DashboardData:
    period: Period
    prev: Period
    first: date  # the earliest day read: the previous period, the trend or the heatmap window
    sites: pl.DataFrame  # site_id, name, timezone: the zones of the local days
    # per site and local day (`day`): sessions, energy, utilisation, peak, uptime (per port),
    # outages (pieces cut at local midnight), emissions; per UTC day: expected, recon, exceptions
    sessions: pl.DataFrame  # analytics.sessions counted per local day of their start and site
    energy: pl.DataFrame
    utilisation: pl.DataFrame
    peak: pl.DataFrame
    uptime: pl.DataFrame
    outages: pl.DataFrame
    expected: pl.DataFrame
    recon: pl.DataFrame
    exceptions: pl.DataFrame  # reconciliation lines other than matched, in the period
    emissions: pl.DataFrame
    at_risk: pl.DataFrame  # as of the latest day on or before the period's end, riskiest first
    at_risk_source: str = "model"  # "model": the model's at-risk rows; "baseline": faults in 7 days
    at_risk_note: str = ""  # why that list (the model card's verdict against the baseline)
    gaps: tuple[Gap, ...] = ()  # UTC asset days the window overlaps not recorded 'ok' (network)


SITE_FRAMES = (
    "sites", "sessions", "energy", "utilisation", "peak", "uptime", "outages", "expected", "recon",
    "exceptions", "emissions", "at_risk",
)  # fmt: skip


def window_start(period: Period) -> date:
    prev = previous(period)
    return min(prev.start, period.end - timedelta(days=max(TREND_DAYS, HEATMAP_DAYS) - 1))


def model_verdict(card: dict | None) -> tuple[str, str]:
    """Which at-risk list the dashboard may show, and why: the model's only when its card says it
    beats the fault-count baseline on held-out data (`models.artifacts` cards)."""
    if card is None:
        return (
            "baseline",
            f"no maintenance model has been trained yet, so this list is {BASELINE_RULE}",
        )
    metrics = card.get("metrics") or {}
    model = (metrics.get("model") or {}).get("pr_auc")
    base = (metrics.get("baseline") or {}).get("pr_auc")
    scores = (
        f" (PR-AUC {model:.3f} vs {base:.3f})" if model is not None and base is not None else ""
    )
    if card.get("beats_baseline") is True:
        return "model", f"the model beats the fault-count baseline on held-out data{scores}"
    if card.get("beats_baseline") is False:
        return "baseline", (
            f"the model does not beat the fault-count baseline on held-out data{scores}, "
            f"so this list is {BASELINE_RULE}"
        )
    return "baseline", (
        "the model could not be evaluated against the fault-count baseline on held-out data, "
        f"so this list is {BASELINE_RULE}"
    )


def at_risk_query(source: str, end: date) -> str:
    """The at-risk rows (schema AT_RISK) as of the latest scored or featured day on or before
    `end`: the model's (`source` "model", the rows of the view analytics.maintenance_at_risk) or
    the baseline rule's, connectors with faults in the last 7 days, most first."""
    if source == "model":
        return (
            "SELECT s.day, s.rank, s.charge_point_id, s.evse_id, s.connector_id, cp.site_id, "
            "s.model, s.risk, s.score_source, s.top_features::text AS top_features, "
            "NULL::float8 AS faults_7d FROM analytics.maintenance_scores s "
            "LEFT JOIN charge_point cp USING (charge_point_id) WHERE s.at_risk AND s.day = "
            f"(SELECT max(day) FROM analytics.maintenance_scores WHERE day <= '{end}') "
            "ORDER BY s.rank"
        )
    return (
        "SELECT f.day, (row_number() OVER (ORDER BY f.faults_7d DESC, f.charge_point_id, "
        "f.evse_id, f.connector_id))::int AS rank, f.charge_point_id, f.evse_id, "
        "f.connector_id, cp.site_id, f.model, NULL::float8 AS risk, "
        "'baseline' AS score_source, NULL::text AS top_features, f.faults_7d "
        "FROM analytics.maintenance_features f "
        "LEFT JOIN charge_point cp USING (charge_point_id) WHERE f.faults_7d > 0 AND f.day = "
        f"(SELECT max(day) FROM analytics.maintenance_features WHERE day <= '{end}') "
        "ORDER BY rank"
    )


SITE_HOURS = {
    "site_id": pl.String, "hour_ts": pl.Datetime("us", "UTC"), "connector_hours": pl.Float64,
    "occupied_hours": pl.Float64, "charging_hours": pl.Float64,
}  # fmt: skip
OUTAGE_PIECES = {**OUTAGES, "exclusion_reason": pl.String}


def local_frames(
    sites: pl.DataFrame,
    first: date,
    last: date,
    *,
    session_slots: pl.DataFrame,
    curve: pl.DataFrame,
    site_hours: pl.DataFrame,
    uptime: pl.DataFrame,
    outages: pl.DataFrame,
    emissions: pl.DataFrame,
    peak: pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    """The per-site figures on local days `first..last` (`chargeops.local_days`) from rows of the
    UTC partitions that overlap them: sessions per 15-minute slot of their start, the load curve,
    connector-hours per site and UTC hour, uptime_daily and outage rows, emissions_site_day and
    peak_usage. Returns the frames of `DashboardData` with `day` the site's local day."""

    def window(df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(pl.col("day").is_between(first, last))

    port_days, pieces = local_uptime(uptime, outages, sites)
    return {
        "sessions": window(ld.by_local_day(session_slots, sites, "slot", ["sessions"])),
        "energy": window(ld.by_local_day(curve, sites, "interval_start", ["energy_kwh"])),
        "utilisation": window(
            ld.by_local_day(
                site_hours,
                sites,
                "hour_ts",
                ["connector_hours", "occupied_hours", "charging_hours"],
            )
        ),
        "peak": window(ld.peak_local_day(peak)),
        "uptime": window(port_days).select(list(UPTIME)),
        "outages": window(pieces).select(list(OUTAGES)),
        "emissions": window(ld.apportion(emissions, curve, sites, ["net_saving_g"])),
    }


def read(url: str, period: Period, model_card: dict | None = None) -> DashboardData:
    """Every figure the dashboards of `period` need, for all sites, over one connection; the
    asset days of the window that are not there; the at-risk list `model_card` allows. Per-site
    figures are on each site's local day, from every UTC partition those days overlap."""
    first, end = window_start(period), period.end
    window = f"day BETWEEN '{first}' AND '{end}'"
    in_period = f"day BETWEEN '{period.start}' AND '{end}'"
    source, note = model_verdict(model_card)
    at_risk_asset = MODEL_ASSET if source == "model" else BASELINE_ASSET
    with frames.connect(url) as conn:

        def q(sql: str, schema: dict) -> pl.DataFrame:
            return frames.read_frame(conn, sql, schema)

        def cols(schema: dict) -> str:
            return ", ".join(schema)

        sites = q("SELECT site_id, name, timezone FROM site ORDER BY site_id", SITES)
        ld.check_zones(sites)
        lo, hi = ld.utc_span(first, end, ld.zones_of(sites))
        utc = f"day BETWEEN '{min(lo, first)}' AND '{max(hi, end)}'"
        local = local_frames(
            sites,
            first,
            end,
            session_slots=q(session_slots_sql(utc), SESSION_SLOTS),
            curve=q(f"SELECT {cols(CURVE)} FROM analytics.load_curve WHERE {utc}", CURVE),
            site_hours=q(
                "SELECT site_id, hour_ts, count(*)::float8 AS connector_hours, "
                "sum(minutes_charging + minutes_suspended + minutes_occupied_other) / 60.0 "
                "AS occupied_hours, sum(minutes_charging) / 60.0 AS charging_hours "
                f"FROM analytics.utilisation_hourly WHERE {utc} AND site_id IS NOT NULL "
                "GROUP BY 1, 2",
                SITE_HOURS,
            ),
            uptime=q(f"SELECT {cols(UPTIME)} FROM analytics.uptime_daily WHERE {utc}", UPTIME),
            outages=q(
                f"SELECT {cols(OUTAGE_PIECES)} FROM analytics.outages WHERE {utc}", OUTAGE_PIECES
            ),
            emissions=q(
                f"SELECT {cols(EMISSIONS)} FROM analytics.emissions_site_day WHERE {utc}",
                EMISSIONS,
            ),
            peak=q(f"SELECT {cols(PEAK)} FROM analytics.peak_usage WHERE {utc}", PEAK),
        )
        at_risk_sql = at_risk_query(source, end)
        found = completeness.gaps(
            url, min(lo, first), max(hi, end), [*FIGURE_ASSETS, at_risk_asset]
        )
        # the at-risk list is as of the period's end: only that day of its asset matters
        found = [g for g in found if g.asset != at_risk_asset or g.day == end]
        return DashboardData(
            period=period,
            prev=previous(period),
            first=first,
            sites=sites,
            **local,
            expected=q(
                "SELECT day, site_id, currency, min(minor_unit_exponent) AS minor_unit_exponent, "
                "sum(gross_amount)::bigint AS expected_gross FROM analytics.expected_revenue "
                f"WHERE {window} GROUP BY 1, 2, 3",
                EXPECTED,
            ),
            recon=q(
                "SELECT day, site_id, currency, sum(captured)::bigint AS captured, "
                "sum(refunded)::bigint AS refunded, sum(fees)::bigint AS fees, "
                "sum(net)::bigint AS net, "
                "sum(n_amount_mismatch + n_missing_payment + n_orphan_payment "
                "+ n_duplicate_payment + n_refunded + n_partially_refunded + n_disputed "
                "+ n_failed)::bigint AS exceptions "
                f"FROM analytics.reconciliation_site_day WHERE {window} GROUP BY 1, 2, 3",
                RECON,
            ),
            exceptions=q(
                f"SELECT {cols(EXCEPTIONS)} FROM analytics.reconciliation_lines "
                f"WHERE {in_period} AND category <> 'matched' ORDER BY day, line_key",
                EXCEPTIONS,
            ),
            at_risk=q(at_risk_sql, AT_RISK),
            at_risk_source=source,
            at_risk_note=note,
            gaps=tuple(found),
        )


def scoped(data: DashboardData, site_ids: tuple[str, ...] | None) -> DashboardData:
    """The data of some sites only (`None`: the whole network, where payments of unknown
    chargers, which have no site, count too)."""
    if site_ids is None:
        return data
    keep = pl.col("site_id").is_in(list(site_ids))
    return replace(
        data,
        **{name: getattr(data, name).filter(keep) for name in SITE_FRAMES},
    )


# -- summaries (pure) -----------------------------------------------------------------------------
def _between(df: pl.DataFrame, p: Period) -> pl.DataFrame:
    return df.filter(pl.col("day").is_between(p.start, p.end))


def zones(data: DashboardData) -> list[str]:
    """The time zones of the audience's sites: the local days its figures are on."""
    return ld.zones_of(data.sites)


def local_gaps(data: DashboardData, asset: str, first: date, last: date) -> list[ld.LocalGap]:
    """The days `first..last` of `asset` that are not whole: local days of the audience's sites
    for a LOCAL_ASSETS figure (a UTC partition it overlaps is not 'ok'), else UTC days."""
    mine = [g for g in data.gaps if g.asset == asset]
    if asset in LOCAL_ASSETS:
        return ld.local_gaps(mine, zones(data), first, last)
    return [ld.LocalGap(asset, g.day, "missing", (g.day,)) for g in mine if first <= g.day <= last]


def missing(data: DashboardData, asset: str, first: date, last: date) -> list[date]:
    """The days `first..last` that `asset` did not wholly compute (see `local_gaps`)."""
    return sorted({g.day for g in local_gaps(data, asset, first, last)})


def coverage(data: DashboardData, asset: str, p: Period) -> str:
    """`complete`; `partial` when `asset` lacks some of the days of `p` or some of their UTC
    partitions; `missing` when it lacks all of them."""
    found = local_gaps(data, asset, p.start, p.end)
    if not found:
        return "complete"
    gone = sum(g.status == "missing" for g in found)
    return "missing" if gone >= p.days else "partial"


def incomplete(data: DashboardData) -> list[Gap]:
    """The gaps the figures stand on: the UTC days the period's and the previous period's local
    days overlap (UTC days themselves for revenue), and the at-risk list's day (the trend and
    heatmap windows beyond them are marked on their charts)."""
    first, last = data.prev.start, data.period.end
    mine = [g for g in data.gaps if g.asset in LOCAL_ASSETS]
    local = set(ld.relevant(mine, zones(data), first, last))
    return [
        g for g in data.gaps if (g in local if g.asset in LOCAL_ASSETS else first <= g.day <= last)
    ]


def days_note(data: DashboardData) -> str:
    """Which days the figures are on, for the page and the plain text."""
    zs = zones(data)
    if len(data.sites) == 1:
        head = f"Days are the site's local days ({zs[0]})"
    elif len(zs) == 1:
        head = f"Days are the sites' local days ({zs[0]})"
    else:
        head = (
            f"Days are each site's local day ({', '.join(zs)}): a network figure adds up "
            "its sites' local days"
        )
    return f"{head}. Revenue and payment exceptions are on UTC days."


def banner(data: DashboardData) -> list[str]:
    """One line per asset with days missing from the figures (empty: the data is complete)."""
    return completeness.lines(incomplete(data))


def occupied_pct() -> pl.Expr:
    """Utilisation: the share of connector time occupied by a vehicle, from summed hours (never
    an average of percentages); null where no connector time was counted."""
    hours = pl.col("connector_hours")
    return pl.when(hours > 0).then(100.0 * pl.col("occupied_hours") / hours)


def figure(
    current: float | None,
    before: float | None,
    *,
    good: str = "up",
    status: str = "complete",
    prev_status: str = "complete",
) -> dict:
    """A headline figure with its change: `good` says which way is good news (colours only).
    `status` and `prev_status` are each period's `coverage`: a missing period has no value (not
    0), and only two complete periods are compared (a partial sum would read as a fall)."""
    current = None if status == "missing" else current
    before = None if prev_status == "missing" else before
    change, direction = None, None
    if status == prev_status == "complete":
        if current is not None and before:
            change = 100.0 * (current - before) / abs(before)
            direction = None if abs(change) < 0.05 else ("up" if change > 0 else "down")
        elif current and before == 0:  # from nothing: no percentage, but a direction
            direction = "up" if current > 0 else "down"
    tone = "flat" if direction is None else ("good" if direction == good else "bad")
    return {
        "value": current, "previous": before, "change_pct": change, "direction": direction,
        "tone": tone, "status": status, "prev_status": prev_status,
    }  # fmt: skip


def _totals(data: DashboardData, p: Period) -> dict:
    energy = _between(data.energy, p)
    util = _between(data.utilisation, p)
    up = _between(data.uptime, p).select(
        pl.col("minutes_in_period", "outage_minutes", "excluded_minutes").sum().cast(pl.Float64)
    )
    uptime = up.with_columns(uptime_pct=uptime_pct())["uptime_pct"][0] if up.height else None
    counted = _between(data.outages, p).filter(~pl.col("excluded").fill_null(False))
    return {
        "sessions": int(_between(data.sessions, p)["sessions"].sum() or 0),
        "energy_kwh": float(energy["energy_kwh"].sum() or 0.0),
        "utilisation_pct": util.select(pl.col("occupied_hours", "connector_hours").sum())
        .select(occupied_pct())
        .item(),
        "uptime_pct": uptime,
        "outages": counted.height,
        "outage_hours": float(counted["duration_min"].sum() or 0.0) / 60,
        "saved_kg": float(_between(data.emissions, p)["net_saving_g"].sum() or 0.0) / 1000,
        # every currency: the same lines as the site rows and the exceptions list
        "exceptions": int(_between(data.recon, p)["exceptions"].sum() or 0),
    }


def _figure(data: DashboardData, key: str, now: object, before: object, good: str) -> dict:
    asset = SOURCE[key]
    return figure(
        now, before, good=good,
        status=coverage(data, asset, data.period), prev_status=coverage(data, asset, data.prev),
    )  # fmt: skip


def headline(data: DashboardData) -> dict:
    now, before = _totals(data, data.period), _totals(data, data.prev)
    bad_up = {"outages", "outage_hours", "exceptions"}
    return {k: _figure(data, k, now[k], before[k], "down" if k in bad_up else "up") for k in now}


def revenue(data: DashboardData) -> list[dict]:
    """Per currency: expected (what sessions owe under their tariffs), captured, refunded, fees,
    net and the reconciliation exceptions, this period and the one before; minor units."""

    def per_currency(p: Period) -> pl.DataFrame:
        exp = (
            _between(data.expected, p)
            .group_by("currency")
            .agg(pl.col("minor_unit_exponent").min(), pl.col("expected_gross").sum())
        )
        rec = (
            _between(data.recon, p)
            .group_by("currency")
            .agg(pl.col("captured", "refunded", "fees", "net", "exceptions").sum())
        )
        return exp.join(rec, on="currency", how="full", coalesce=True)

    now, before = per_currency(data.period), per_currency(data.prev)
    rows = []
    for cur in sorted(set(now["currency"].to_list()) | set(before["currency"].to_list())):
        a = now.filter(pl.col("currency") == cur).to_dicts()
        b = before.filter(pl.col("currency") == cur).to_dicts()
        a, b = (a[0] if a else {}), (b[0] if b else {})
        exponent = a.get("minor_unit_exponent") or b.get("minor_unit_exponent") or 2
        rows.append(
            {
                "currency": cur,
                "exponent": exponent,
                **{
                    k: _figure(data, k, a.get(k), b.get(k), "down" if k == "exceptions" else "up")
                    for k in ("expected_gross", "captured", "refunded", "fees", "net", "exceptions")
                },
            }
        )
    return rows


def _site_totals(data: DashboardData, p: Period) -> pl.DataFrame:
    sessions = _between(data.sessions, p).group_by("site_id").agg(pl.col("sessions").sum())
    energy = _between(data.energy, p).group_by("site_id").agg(pl.col("energy_kwh").sum())
    util = (
        _between(data.utilisation, p)
        .group_by("site_id")
        .agg(pl.col("occupied_hours", "connector_hours").sum())
        .select(
            "site_id",
            utilisation_pct=occupied_pct(),
        )
    )
    up = sum_minutes(_between(data.uptime, p), ["site_id"]).select("site_id", "uptime_pct")
    outages = (
        _between(data.outages, p)
        .filter(~pl.col("excluded").fill_null(False))
        .group_by("site_id")
        .agg(outages=pl.len().cast(pl.Int64))
    )
    saved = (
        _between(data.emissions, p)
        .group_by("site_id")
        .agg(saved_kg=pl.col("net_saving_g").sum() / 1000)
    )
    exceptions = (
        _between(data.recon, p).group_by("site_id").agg(pl.col("exceptions").sum().cast(pl.Int64))
    )
    out = data.sites.select("site_id", "name")
    for df in (sessions, energy, util, up, outages, saved, exceptions):
        out = out.join(df, on="site_id", how="left")
    return out


SITE_FIGURES = (
    "sessions", "energy_kwh", "utilisation_pct", "uptime_pct", "outages", "saved_kg", "exceptions",
)  # fmt: skip


def site_columns(data: DashboardData) -> dict[str, str]:
    """The `coverage` of each column of the per-site table in the period."""
    return {k: coverage(data, SOURCE[k], data.period) for k in SITE_FIGURES}


def sites(data: DashboardData) -> list[dict]:
    """One row per site with this period's figures and the change against the previous one;
    a column whose asset is missing for the whole period is None, not 0."""
    now = site_columns(data)
    prev = {k: coverage(data, SOURCE[k], data.prev) for k in SITE_FIGURES}
    before = _site_totals(data, data.prev).select(
        "site_id", prev_energy_kwh="energy_kwh", prev_uptime_pct="uptime_pct"
    )
    rows = []
    for row in _site_totals(data, data.period).join(before, on="site_id", how="left").to_dicts():

        def value(k: str, zero: float | None, row: dict = row) -> float | None:
            return None if now[k] == "missing" else (zero if row[k] is None else row[k])

        rows.append(
            {
                **row,
                "name": row["name"] or row["site_id"],
                "sessions": value("sessions", 0),
                "energy": figure(
                    value("energy_kwh", 0.0),
                    row["prev_energy_kwh"],
                    status=now["energy_kwh"],
                    prev_status=prev["energy_kwh"],
                ),
                "uptime": figure(
                    row["uptime_pct"],
                    row["prev_uptime_pct"],
                    status=now["uptime_pct"],
                    prev_status=prev["uptime_pct"],
                ),
                "utilisation_pct": value("utilisation_pct", None),
                "outages": value("outages", 0),
                "saved_kg": value("saved_kg", None),
                "exceptions": value("exceptions", 0),
                "below_target": row["uptime_pct"] is not None
                and row["uptime_pct"] < NEVI_TARGET_PCT,
            }
        )
    return sorted(rows, key=lambda r: (-(r["energy"]["value"] or 0.0), r["site_id"]))


def _names(data: DashboardData) -> pl.DataFrame:
    return data.sites.select("site_id", site_name=pl.coalesce("name", "site_id"))


def ports_below_target(data: DashboardData) -> list[dict]:
    """Ports whose uptime over the period is under 97% (the NEVI line), worst first."""
    ports = sum_minutes(_between(data.uptime, data.period), [*PORT, "site_id"])
    return (
        ports.filter(pl.col("uptime_pct") < NEVI_TARGET_PCT)
        .join(_names(data), on="site_id", how="left")
        .sort("uptime_pct", *PORT)
        .to_dicts()
    )


EXCLUDED_ROWS = 5  # excluded outages listed apart: they do not count against uptime


def outages(data: DashboardData) -> dict:
    """The period's outage pieces: the counted ones (uptime subtracts them) ranked by minutes,
    the excluded ones (it does not) apart, so a long excluded piece never tops the ranking."""
    o = _between(data.outages, data.period).join(_names(data), on="site_id", how="left")
    excluded = pl.col("excluded").fill_null(False)
    counted, apart = o.filter(~excluded), o.filter(excluded)

    def longest(df: pl.DataFrame, n: int) -> list[dict]:
        return df.sort("duration_min", "start_ts", descending=[True, False]).head(n).to_dicts()

    return {
        "count": counted.height,
        "hours": float(counted["duration_min"].sum() or 0.0) / 60,
        "excluded": apart.height,
        "excluded_hours": float(apart["duration_min"].sum() or 0.0) / 60,
        "longest": longest(counted, LIST_ROWS),
        "excluded_rows": longest(apart, EXCLUDED_ROWS),
    }


def at_risk(data: DashboardData) -> dict:
    """The at-risk list (the model's, or the baseline rule's: see `model_verdict`), as of the
    latest day on or before the period's end; `missing` when that day's asset is not there."""
    rows = data.at_risk.join(_names(data), on="site_id", how="left").sort("rank")
    listed = []
    for r in rows.head(LIST_ROWS).to_dicts():
        feats = json.loads(r["top_features"]) if r["top_features"] else []
        listed.append({**r, "signals": [f["feature"] for f in feats if "feature" in f][:3]})
    asset = MODEL_ASSET if data.at_risk_source == "model" else BASELINE_ASSET
    end = data.period.end
    return {
        "day": rows["day"][0] if rows.height else None,
        "count": rows.height,
        "rows": listed,
        "source": data.at_risk_source,
        "why": data.at_risk_note,
        "asset": asset,
        "missing": bool(missing(data, asset, end, end)),
    }


def exceptions(data: DashboardData) -> dict:
    e = data.exceptions.join(_names(data), on="site_id", how="left")
    by_category = (
        e.group_by("category")
        .agg(lines=pl.len().cast(pl.Int64))
        .sort("lines", "category", descending=[True, False])
    )
    worst = e.with_columns(
        gap=(pl.col("expected_gross") - pl.col("captured") + pl.col("refunded")).abs()
    ).sort("gap", "day", descending=[True, False])
    return {
        "count": e.height,
        "by_category": by_category.to_dicts(),
        "rows": worst.head(LIST_ROWS).to_dicts(),
    }


def _blank(data: DashboardData, column: str, asset: str, zero: float, first: date) -> pl.Expr:
    """`column` with zeros on days without rows, and null (no bar, a break in the line) on days
    `asset` did not compute: nothing measured is not the same as nothing happened."""
    gone = missing(data, asset, first, data.period.end)
    return (
        pl.when(pl.col("day").is_in(gone)).then(None).otherwise(pl.col(column).fill_null(zero))
    ).alias(column)


def trend_first(period: Period) -> date:
    return period.end - timedelta(days=trend_days(period) - 1)


def daily_series(data: DashboardData) -> pl.DataFrame:
    """Per day of the trend window: sessions, kWh and kg CO2 saved (zeros on days without rows,
    null on days their asset did not compute), and whether the day is in the period."""
    first = trend_first(data.period)
    days = pl.DataFrame({"day": pl.date_range(first, data.period.end, eager=True)})
    sessions = data.sessions.group_by("day").agg(pl.col("sessions").sum())
    energy = data.energy.group_by("day").agg(pl.col("energy_kwh").sum())
    saved = data.emissions.group_by("day").agg(saved_kg=pl.col("net_saving_g").sum() / 1000)
    out = days
    for df in (sessions, energy, saved):
        out = out.join(df, on="day", how="left")
    return out.with_columns(
        _blank(data, "sessions", "sessions", 0, first),
        _blank(data, "energy_kwh", "energy", 0.0, first),
        _blank(data, "saved_kg", "emissions", 0.0, first),
        in_period=pl.col("day").is_between(data.period.start, data.period.end),
    ).sort("day")


def revenue_series(data: DashboardData, currency: str) -> pl.DataFrame:
    """Expected and captured per day of the trend window in `currency`'s major units (null on
    days their asset did not compute)."""
    first = trend_first(data.period)
    days = daily_series(data).select("day", "in_period")
    exp = data.expected.filter(pl.col("currency") == currency)
    scale = 10.0 ** int(exp["minor_unit_exponent"].min() or 2) if exp.height else 100.0
    expected = exp.group_by("day").agg(expected=pl.col("expected_gross").sum() / scale)
    captured = (
        data.recon.filter(pl.col("currency") == currency)
        .group_by("day")
        .agg(captured=(pl.col("captured") - pl.col("refunded")).sum() / scale)
    )
    return (
        days.join(expected, on="day", how="left")
        .join(captured, on="day", how="left")
        .with_columns(
            _blank(data, "expected", "expected_revenue", 0.0, first),
            _blank(data, "captured", "reconciliation", 0.0, first),
        )
    )


def heatmap_first(period: Period) -> date:
    return period.end - timedelta(days=heatmap_days(period) - 1)


def heatmap_missing(data: DashboardData) -> list[date]:
    """The heatmap window's days peak usage did not compute (left out of the cells)."""
    return missing(data, SOURCE["heatmap"], heatmap_first(data.period), data.period.end)


def heatmap(data: DashboardData) -> pl.DataFrame:
    """Occupancy % by local weekday (1 = Monday, as analytics.peak_usage) and hour over the
    heatmap window, every cell present (null where no connector was counted)."""
    first = heatmap_first(data.period)
    grid = pl.DataFrame(
        {"local_weekday": list(range(1, 8))}, schema={"local_weekday": pl.Int16}
    ).join(
        pl.DataFrame({"local_hour": list(range(24))}, schema={"local_hour": pl.Int16}), how="cross"
    )
    cells = (
        data.peak.filter(pl.col("day").is_between(first, data.period.end))
        .group_by("local_weekday", "local_hour")
        .agg(pl.col("occupied_hours", "connector_hours", "sessions_started").sum())
        .with_columns(occupancy_pct=occupied_pct())
    )
    return grid.join(cells, on=["local_weekday", "local_hour"], how="left").sort(
        "local_weekday", "local_hour"
    )


def trend_days(period: Period) -> int:
    return max(TREND_DAYS, period.days + previous(period).days)


def heatmap_days(period: Period) -> int:
    return max(HEATMAP_DAYS, period.days)
