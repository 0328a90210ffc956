"""The compliance report for a regulator, per period: one self-contained HTML document rendered
from `templates/compliance.html.j2` (autoescaped) and the same printed to PDF by headless
Chromium (reports/browser.py), in `<reports>/<period>/compliance_<period>.{html,pdf}` with the
folder's manifest.

Contents: the period; network totals; uptime per site and per port against 97% (23 CFR 680.116(b),
NEVI: per port, over the trailing 12 months ending at the period's end, as far as the data
reaches); the UK rapid charge point reliability against 99% (SI 2023/1168 reg. 6, for the period;
the regulation's figure is the calendar year's, see `chargeops report uk-reliability`); outages and
exclusions; energy delivered; sessions; emissions saved and the method.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jinja2
import polars as pl
import psycopg

from chargeops import frames
from chargeops.completeness import gaps, recorded_span
from chargeops.completeness import lines as completeness_lines
from chargeops.periods import parse_period
from reports import emissions as em
from reports import uk_reliability as ukr
from reports.files import incomplete_note, period_dir, write_manifest, write_text

NEVI_TARGET_PCT = 97.0
TEMPLATES = Path(__file__).with_name("templates")
OUTAGE_ROWS = 50  # the longest outages listed one by one; totals cover all


# -- data -----------------------------------------------------------------------------------------
UPTIME = {
    "day": pl.Date, "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "minutes_in_period": pl.Float64, "outage_minutes": pl.Float64,
    "excluded_minutes": pl.Float64,
}  # fmt: skip
OUTAGES = {
    "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "site_id": pl.String, "start_ts": pl.Datetime("us", "UTC"), "end_ts": pl.Datetime("us", "UTC"),
    "duration_min": pl.Float64, "cause": pl.String, "excluded": pl.Boolean,
    "exclusion_reason": pl.String,
}  # fmt: skip
EXCLUSIONS = {
    "charge_point_id": pl.String, "evse_id": pl.Int32, "connector_id": pl.Int32,
    "starts_at": pl.Datetime("us", "UTC"), "ends_at": pl.Datetime("us", "UTC"),
    "reason": pl.String, "note": pl.String,
}  # fmt: skip
SITE_DAY = {
    "day": pl.Date, "site_id": pl.String, "energy_kwh": pl.Float64, "sessions": pl.Int64,
}  # fmt: skip
EMISSIONS = {
    "site_id": pl.String, "grid_region": pl.String, "factor_basis": pl.String,
    "energy_kwh": pl.Float64, "grid_g": pl.Float64, "tailpipe_g": pl.Float64,
    "net_saving_g": pl.Float64,
}  # fmt: skip
SITES = {"site_id": pl.String, "name": pl.String, "country": pl.String, "grid_region": pl.String}


@dataclass(frozen=True)
class ComplianceData:
    label: str
    start: date
    end: date  # inclusive
    sites: pl.DataFrame
    uptime: pl.DataFrame  # uptime_daily rows of the period
    trailing: pl.DataFrame  # uptime_daily rows of the 365 days ending at `end`
    outages: pl.DataFrame
    exclusions: pl.DataFrame
    energy: pl.DataFrame  # energy_site_day rows of the period
    sessions: int  # sessions that started in the period (analytics.sessions)
    emissions: pl.DataFrame  # emissions_site_day rows of the period
    uk: ukr.UkReliability
    imported: pl.DataFrame  # charge points known only from imported history (source, count)
    gaps: tuple = ()  # chargeops.completeness.Gap: SOURCES' days in the period that are not ok
    data_span: tuple = (None, None)  # first and last day any daily asset recorded, in the period


# the daily assets the report's figures come from (one source each: uptime and outages from
# `uptime`, energy from `energy`, the session count from `sessions`, CO2 from `emissions`)
SOURCES = ("uptime", "energy", "sessions", "emissions")


def read(url: str, label: str, start: date, end: date) -> ComplianceData:
    between = f"day BETWEEN '{start}' AND '{end}'"
    t0 = datetime.combine(start, datetime.min.time(), UTC)
    t1 = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC)

    uptime_cols = ", ".join(UPTIME)
    found = tuple(gaps(url, start, end, SOURCES, clip_to_recorded=True))
    with psycopg.connect(url) as pg:
        lo, hi = recorded_span(pg)
    span = (
        (max(lo, start), min(hi, end)) if lo and hi and lo <= end and hi >= start else (None, None)
    )
    with frames.connect(url) as conn:

        def q(sql: str, schema: dict) -> pl.DataFrame:
            return frames.read_frame(conn, sql, schema)

        return ComplianceData(
            label=label,
            start=start,
            end=end,
            sites=q("SELECT site_id, name, country, grid_region FROM site", SITES),
            uptime=q(f"SELECT {uptime_cols} FROM analytics.uptime_daily WHERE {between}", UPTIME),
            trailing=q(
                f"SELECT {uptime_cols} FROM analytics.uptime_daily "
                f"WHERE day BETWEEN '{end - timedelta(days=364)}' AND '{end}'",
                UPTIME,
            ),
            outages=q(
                f"SELECT {', '.join(OUTAGES)} FROM analytics.outages WHERE {between}", OUTAGES
            ),
            exclusions=q(
                f"SELECT {', '.join(EXCLUSIONS)} FROM outage_exclusion "
                f"WHERE starts_at < '{t1.isoformat()}' AND ends_at > '{t0.isoformat()}' "
                "ORDER BY starts_at",
                EXCLUSIONS,
            ),
            energy=q(
                f"SELECT {', '.join(SITE_DAY)} FROM analytics.energy_site_day WHERE {between}",
                SITE_DAY,
            ),
            sessions=int(
                q(
                    f"SELECT count(*) AS n FROM analytics.sessions WHERE {between}", {"n": pl.Int64}
                ).item()
                or 0
            ),
            emissions=q(
                f"SELECT {', '.join(EMISSIONS)} FROM analytics.emissions_site_day WHERE {between}",
                EMISSIONS,
            ),
            uk=ukr.read(url, start, end),
            imported=q(
                "SELECT source, count(*) AS charge_points FROM charge_point "
                "WHERE source IS NOT NULL GROUP BY source ORDER BY source",
                {"source": pl.String, "charge_points": pl.Int64},
            ),
            gaps=found,
            data_span=span,
        )


# -- figures (pure) -------------------------------------------------------------------------------
def uptime_pct() -> pl.Expr:
    m = pl.col("minutes_in_period")
    return pl.when(m > 0).then(
        100.0 * (m - (pl.col("outage_minutes") - pl.col("excluded_minutes"))) / m
    )


def sum_minutes(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    return (
        df.group_by(by)
        .agg(
            days=pl.col("day").n_unique().cast(pl.Int64),
            minutes_in_period=pl.col("minutes_in_period").sum(),
            outage_minutes=pl.col("outage_minutes").sum(),
            excluded_minutes=pl.col("excluded_minutes").sum(),
        )
        .with_columns(uptime_pct=uptime_pct())
    )


PORT = ["charge_point_id", "evse_id", "connector_id"]


def port_uptime(data: ComplianceData) -> pl.DataFrame:
    """Per port: the period's minutes and uptime, and the trailing-12-month uptime (NEVI)."""
    period = sum_minutes(data.uptime, [*PORT, "site_id"])
    trailing = sum_minutes(data.trailing, PORT).select(
        *PORT, trailing_days="days", trailing_uptime_pct="uptime_pct"
    )
    return (
        period.join(trailing, on=PORT, how="left")
        .with_columns(meets_97pct=pl.col("trailing_uptime_pct") > NEVI_TARGET_PCT)
        .sort("site_id", *PORT)
    )


def site_figures(data: ComplianceData, ports: pl.DataFrame) -> pl.DataFrame:
    up = sum_minutes(data.uptime, ["site_id"]).select("site_id", "uptime_pct")
    below = ports.group_by("site_id").agg(
        ports=pl.len().cast(pl.Int64), ports_below_97=(~pl.col("meets_97pct")).sum().cast(pl.Int64)
    )
    energy = data.energy.group_by("site_id").agg(
        pl.col("energy_kwh").sum(), pl.col("sessions").sum()
    )
    emis = data.emissions.group_by("site_id").agg(
        pl.col("grid_region").first(),
        pl.col("factor_basis").first(),
        grid_kg=pl.col("grid_g").sum() / 1000,
        tailpipe_kg=pl.col("tailpipe_g").sum() / 1000,
        saved_kg=pl.col("net_saving_g").sum() / 1000,
    )
    return (
        data.sites.select("site_id", "name", "country")
        .join(below, on="site_id", how="left")
        .join(up, on="site_id", how="left")
        .join(energy, on="site_id", how="left")
        .join(emis, on="site_id", how="left")
        .filter(pl.col("ports").is_not_null() | pl.col("energy_kwh").is_not_null())
        .sort("site_id")
    )


def network_figures(data: ComplianceData, ports: pl.DataFrame) -> dict:
    totals = (
        data.uptime.select(
            pl.col("minutes_in_period", "outage_minutes", "excluded_minutes").sum().cast(pl.Float64)
        )
        .with_columns(uptime_pct=uptime_pct())
        .row(0, named=True)
    )
    return {
        "ports": ports.height,
        "uptime_pct": totals["uptime_pct"],
        "ports_below_97": int((~ports["meets_97pct"].fill_null(False)).sum())
        if ports.height
        else 0,
        "outage_hours": totals["outage_minutes"] / 60,
        "excluded_hours": totals["excluded_minutes"] / 60,
        "energy_kwh": float(data.energy["energy_kwh"].sum() or 0),
        "sessions": data.sessions,
        "grid_kg": float(data.emissions["grid_g"].sum() or 0) / 1000,
        "tailpipe_kg": float(data.emissions["tailpipe_g"].sum() or 0) / 1000,
        "saved_kg": float(data.emissions["net_saving_g"].sum() or 0) / 1000,
        "trailing_days": int(data.trailing["day"].n_unique()),
    }


def outage_summary(data: ComplianceData) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(minutes by cause and exclusion reason, the longest outage pieces)."""
    o = data.outages
    by = (
        o.with_columns(pl.col("exclusion_reason").fill_null("counted"))
        .group_by("cause", "exclusion_reason")
        .agg(pieces=pl.len().cast(pl.Int64), minutes=pl.col("duration_min").sum())
        .sort("cause", "exclusion_reason")
    )
    longest = o.sort("duration_min", descending=True).head(OUTAGE_ROWS)
    return by, longest


# -- rendering ------------------------------------------------------------------------------------
def _num(v, digits: int = 1) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def _pct(v) -> str:
    return "–" if v is None else f"{v:.2f}%"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["ts"] = lambda t: "–" if t is None else t.strftime("%Y-%m-%d %H:%M UTC")
    return env


def context(data: ComplianceData, factors: em.Factors, generated_at: datetime) -> dict:
    ports = port_uptime(data)
    sites = site_figures(data, ports)
    by_cause, longest = outage_summary(data)
    used_regions = set(data.emissions["grid_region"].drop_nulls().to_list())
    method = [
        r for r in em.method_text(factors) if r["kind"] == "baseline" or r["key"] in used_regions
    ]
    return {
        "label": data.label,
        "start": data.start,
        "end": data.end,
        "days": (data.end - data.start).days + 1,
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "nevi_target": NEVI_TARGET_PCT,
        "uk_target": ukr.UK_TARGET_PCT,
        "network": network_figures(data, ports),
        "sites": sites.to_dicts(),
        "ports": ports.to_dicts(),
        "uk": data.uk.network,
        "uk_rows": data.uk.per_cp.to_dicts(),
        "status_mapping": ukr.STATUS_MAPPING,
        "offline_note": ukr.OFFLINE_NOTE,
        "outages_by_cause": by_cause.to_dicts(),
        "longest_outages": longest.to_dicts(),
        "outage_count": data.outages.height,
        "outage_rows": OUTAGE_ROWS,
        "exclusions": data.exclusions.to_dicts(),
        "method": method,
        "imported": data.imported.to_dicts(),
        "incomplete": completeness_lines(list(data.gaps)),
        "incomplete_assets": sorted({g.asset for g in data.gaps}),
        "data_from": data.data_span[0],
        "data_to": data.data_span[1],
    }


def render_html(ctx: dict) -> str:
    return environment().get_template("compliance.html.j2").render(**ctx)


def run(url: str, reports_dir: Path, period: str, *, pdf: bool = True) -> tuple[list[Path], dict]:
    """Build the report for `period` and write HTML (+ PDF) and the manifest; returns the paths
    and the template context (its figures)."""
    from reports.browser import html_to_pdf

    p = parse_period(period)
    data = read(url, p.label, p.start, p.end)
    ctx = context(data, em.load_factors(), datetime.now(UTC))
    folder = period_dir(Path(reports_dir), p.label)
    html = render_html(ctx)
    stem = f"compliance_{p.label}"
    paths = [write_text(folder / f"{stem}.html", html)]
    if pdf:
        paths.append(html_to_pdf(paths[0], folder / f"{stem}.pdf"))
    if note := incomplete_note(paths[0], list(data.gaps), f"The compliance report {p.label}"):
        paths.append(note)
    write_manifest(folder)
    return paths, ctx


def cli(args: argparse.Namespace, settings) -> int:
    import sys

    from chargeops.db import resolve_database_url
    from chargeops.settings import ConfigError
    from reports.browser import BrowserNotFound

    try:
        parse_period(args.period)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    out = Path(args.out) if getattr(args, "out", None) else settings.reports_path
    try:
        paths, ctx = run(resolve_database_url(settings), out, args.period)
    except (BrowserNotFound, ukr.MissingDetail) as e:
        raise ConfigError(str(e)) from None
    n = ctx["network"]
    for line in ctx["incomplete"]:
        print(f"incomplete: {line}", file=sys.stderr)
    print(
        f"compliance {ctx['label']}: uptime {_pct(n['uptime_pct'])}, {n['sessions']} sessions, "
        f"{_num(n['energy_kwh'])} kWh, {_num(n['saved_kg'])} kg CO2 saved"
    )
    for p in paths:
        print(f"  {p}")
    return 0
