"""The compliance report for a regulator, per period: one self-contained HTML document rendered
from `templates/compliance.html.j2` (autoescaped) and the same printed to PDF by headless
Chromium (reports/browser.py), in `<reports>/<period>/compliance_<period>.{html,pdf}` with the
folder's manifest.

Days: each site's figures cover the period's days in the site's own time zone
(`chargeops.local_days`), read from every UTC partition those days overlap: sessions by the local
date of their start, energy from the 15-minute load curve, port uptime and outages cut at local
midnight, CO2 shared out of the UTC days by energy. The network totals add up the sites' local
periods and say so. Kept on UTC days, as their rules have it: the trailing 12 months of NEVI
uptime (as EV-ChART Module 3) and the UK reliability figures (the `uk_reliability` report's).

Contents: the period; network totals; uptime per site and per port against 97% (23 CFR 680.116(b),
NEVI: per port, over the trailing 12 months ending at the period's end, as far as the data
reaches); the UK rapid charge point reliability against 99% (SI 2023/1168 reg. 6, for the period;
the regulation's figure is the calendar year's, see `chargeops report uk-reliability`); outages and
exclusions; energy delivered; sessions; emissions saved and the method.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jinja2
import polars as pl
import psycopg

from chargeops import frames
from chargeops import local_days as ld
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
SITE_DAY = {  # per site and local day
    "day": pl.Date, "site_id": pl.String, "energy_kwh": pl.Float64, "sessions": pl.Int64,
}  # fmt: skip
EMISSIONS = {
    "site_id": pl.String, "grid_region": pl.String, "factor_basis": pl.String,
    "energy_kwh": pl.Float64, "grid_g": pl.Float64, "tailpipe_g": pl.Float64,
    "net_saving_g": pl.Float64,
}  # fmt: skip
STATED_GHG = {  # import_batch rows whose file states its own CO2 saving
    "format": pl.String, "file_name": pl.String, "stated_ghg_kg": pl.Float64,
    "stated_ghg_energy_wh": pl.Float64,
}  # fmt: skip
EMISSION_GRAMS = ["energy_kwh", "grid_g", "tailpipe_g", "net_saving_g"]
SITES = {
    "site_id": pl.String, "name": pl.String, "country": pl.String, "grid_region": pl.String,
    "timezone": pl.String,
}  # fmt: skip
PORT = ["charge_point_id", "evse_id", "connector_id"]
# what the reads of local days take from the UTC partitions
SESSION_SLOTS = {"site_id": pl.String, "slot": pl.Datetime("us", "UTC"), "sessions": pl.Int64}
CURVE = {
    "day": pl.Date, "site_id": pl.String, "interval_start": pl.Datetime("us", "UTC"),
    "energy_kwh": pl.Float64,
}  # fmt: skip
OUTAGE_KEYS = [*PORT, "site_id", "cause", "excluded", "exclusion_reason"]


def session_slots_sql(where: str) -> str:
    """Sessions counted per site and 15-minute slot of their start (schema SESSION_SLOTS), the
    grain a local day is cut from (every zone's midnight is on a quarter hour). A session without
    a start, which the sessions asset never writes, counts at noon UTC of its day."""
    return (
        "SELECT site_id, date_bin('15 minutes', coalesce(start_ts, "
        "(day + time '12:00') AT TIME ZONE 'UTC'), TIMESTAMPTZ '2000-01-01 00:00+00') AS slot, "
        f"count(*)::bigint AS sessions FROM analytics.sessions WHERE {where} GROUP BY 1, 2"
    )


def local_uptime(
    uptime_daily: pl.DataFrame, outages: pl.DataFrame, sites: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per port and local day: minutes_in_period, outage_minutes, excluded_minutes, with `day`
    the site's local day; the outage pieces clipped to local days) from uptime_daily and outage
    rows of UTC days. A local day's minutes are its length where the port has rows for every UTC
    day it overlaps (1,380 or 1,500 when the clocks change); its outage minutes are the pieces'
    minutes in it, so the 23 CFR 680.116(b) formula applies to the local day unchanged."""
    pieces = ld.outage_pieces(outages, sites, OUTAGE_KEYS)
    down = pieces.group_by("day", *PORT).agg(
        outage_minutes=pl.col("duration_min").sum(),
        excluded_minutes=pl.col("duration_min").filter(pl.col("excluded").fill_null(False)).sum(),
    )
    port_days = (
        ld.port_minutes(uptime_daily, sites, PORT)
        .join(down, on=["day", *PORT], how="left")
        .with_columns(pl.col("outage_minutes", "excluded_minutes").fill_null(0.0))
    )
    return port_days, pieces


@dataclass(frozen=True)
class ComplianceData:
    label: str
    start: date
    end: date  # inclusive
    sites: pl.DataFrame
    uptime: pl.DataFrame  # per port and local day of the period (UPTIME, `day` local)
    trailing: pl.DataFrame  # uptime_daily rows of the 365 UTC days ending at `end`
    outages: pl.DataFrame
    exclusions: pl.DataFrame
    energy: pl.DataFrame  # energy and sessions per site and local day of the period (SITE_DAY)
    sessions: int  # sessions that started in the period, each site's local days
    emissions: pl.DataFrame  # per site over its local days of the period (EMISSIONS)
    uk: ukr.UkReliability
    imported: pl.DataFrame  # charge points known only from imported history (source, count)
    # imported files of the period that state their own CO2 saving (STATED_GHG)
    stated_ghg: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=STATED_GHG))
    gaps: tuple = ()  # chargeops.completeness.Gap: SOURCES' days in the period that are not ok
    data_span: tuple = (None, None)  # first and last day any daily asset recorded, in the period


# the daily assets the report's figures come from (one source each: uptime and outages from
# `uptime`, energy from `energy`, the session count from `sessions`, CO2 from `emissions`)
SOURCES = ("uptime", "energy", "sessions", "emissions")


def local_site_days(
    sites: pl.DataFrame, session_slots: pl.DataFrame, curve: pl.DataFrame
) -> pl.DataFrame:
    """Energy and sessions per site and local day (schema SITE_DAY): the load curve's intervals
    and the sessions' starts on the site's local dates."""
    energy = ld.by_local_day(curve, sites, "interval_start", ["energy_kwh"])
    sessions = ld.by_local_day(session_slots, sites, "slot", ["sessions"])
    out = energy.join(sessions, on=["day", "site_id"], how="full", coalesce=True)
    return out.with_columns(pl.col("energy_kwh").fill_null(0.0), pl.col("sessions").fill_null(0))


def read(url: str, label: str, start: date, end: date) -> ComplianceData:
    """The report's rows for local days `start..end` of every site (UTC rows for the trailing
    12 months and the UK figures): from every UTC partition those local days overlap."""

    def local(df: pl.DataFrame) -> pl.DataFrame:
        return df.filter(pl.col("day").is_between(start, end))

    uptime_cols = ", ".join(UPTIME)
    with psycopg.connect(url) as pg:
        lo, hi = recorded_span(pg)
    span = (
        (max(lo, start), min(hi, end)) if lo and hi and lo <= end and hi >= start else (None, None)
    )
    with frames.connect(url) as conn:

        def q(sql: str, schema: dict) -> pl.DataFrame:
            return frames.read_frame(conn, sql, schema)

        sites = q(f"SELECT {', '.join(SITES)} FROM site", SITES)
        ld.check_zones(sites)
        zones = ld.zones_of(sites)
        u0, u1 = ld.utc_span(start, end, zones)
        utc = f"day BETWEEN '{u0}' AND '{u1}'"
        t0 = min(ld.day_start(start, z) for z in zones)
        t1 = max(ld.day_start(end + timedelta(days=1), z) for z in zones)
        curve = q(f"SELECT {', '.join(CURVE)} FROM analytics.load_curve WHERE {utc}", CURVE)
        slots = q(session_slots_sql(utc), SESSION_SLOTS)
        port_days, pieces = local_uptime(
            q(f"SELECT {uptime_cols} FROM analytics.uptime_daily WHERE {utc}", UPTIME),
            q(f"SELECT {', '.join(OUTAGES)} FROM analytics.outages WHERE {utc}", OUTAGES),
            sites,
        )
        grams = q(
            f"SELECT day, {', '.join(EMISSIONS)} FROM analytics.emissions_site_day WHERE {utc}",
            {"day": pl.Date, **EMISSIONS},
        )
        emissions = (
            local(ld.apportion(grams, curve, sites, EMISSION_GRAMS))
            .join(
                grams.sort("day")
                .group_by("site_id")
                .agg(pl.col("grid_region", "factor_basis").last()),
                on="site_id",
                how="left",
            )
            .select(list(EMISSIONS))
        )
        site_days = local(local_site_days(sites, slots, curve))
        # the UTC partitions the sites' local days overlap, named where they are not 'ok'
        found = gaps(url, u0, u1, SOURCES, clip_to_recorded=True)
        return ComplianceData(
            label=label,
            start=start,
            end=end,
            sites=sites,
            uptime=local(port_days).select(list(UPTIME)),
            trailing=q(
                f"SELECT {uptime_cols} FROM analytics.uptime_daily "
                f"WHERE day BETWEEN '{end - timedelta(days=364)}' AND '{end}'",
                UPTIME,
            ),
            outages=local(pieces).select(list(OUTAGES)),
            exclusions=q(
                f"SELECT {', '.join(EXCLUSIONS)} FROM outage_exclusion "
                f"WHERE starts_at < '{t1.isoformat()}' AND ends_at > '{t0.isoformat()}' "
                "ORDER BY starts_at",
                EXCLUSIONS,
            ),
            energy=site_days,
            sessions=int(site_days["sessions"].sum() or 0),
            emissions=emissions,
            uk=ukr.read(url, start, end),
            imported=q(
                "SELECT source, count(*) AS charge_points FROM charge_point "
                "WHERE source IS NOT NULL GROUP BY source ORDER BY source",
                {"source": pl.String, "charge_points": pl.Int64},
            ),
            stated_ghg=q(
                "SELECT format, file_name, stated_ghg_kg, stated_ghg_energy_wh FROM import_batch "
                f"WHERE stated_ghg_energy_wh > 0 AND first_start_ts < '{t1.isoformat()}' "
                f"AND last_stop_ts >= '{t0.isoformat()}' ORDER BY import_batch_id",
                STATED_GHG,
            ),
            gaps=tuple(ld.relevant(found, zones, start, end)),
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


def stated_ghg(data: ComplianceData, network: dict) -> list[dict]:
    """Imported files' own CO2 savings per kWh beside this report's, to say why they differ."""
    ours = network["saved_kg"] / network["energy_kwh"] if network["energy_kwh"] else None
    return [
        {
            **r,
            "kg_per_kwh": r["stated_ghg_kg"] / (r["stated_ghg_energy_wh"] / 1000),
            "ours_kg_per_kwh": ours,
        }
        for r in data.stated_ghg.to_dicts()
    ]


def context(data: ComplianceData, factors: em.Factors, generated_at: datetime) -> dict:
    ports = port_uptime(data)
    sites = site_figures(data, ports)
    by_cause, longest = outage_summary(data)
    network = network_figures(data, ports)
    used_regions = set(data.emissions["grid_region"].drop_nulls().to_list())
    method = [
        r for r in em.method_text(factors) if r["kind"] == "baseline" or r["key"] in used_regions
    ]
    return {
        "label": data.label,
        "start": data.start,
        "end": data.end,
        "days": (data.end - data.start).days + 1,
        "zones": ld.zones_of(data.sites),
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "nevi_target": NEVI_TARGET_PCT,
        "uk_target": ukr.UK_TARGET_PCT,
        "network": network,
        "stated_ghg": stated_ghg(data, network),
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
