"""The dashboard's plotly figures, built once and used twice: drawn live in the attached
interactive page, and exported to PNG by kaleido (plotly's own exporter, driving the same headless
Chromium as the PDF reports) for the email body, where no script runs.

Days an asset did not compute are left blank (no bar, a break in the line), never drawn as 0,
and the chart's title says so; the uptime bars start at 0 %, so their lengths compare.

Site and charger names are passed through `html.escape`: plotly reads a small HTML subset in
labels (`<b>`, `<a href>`), and with its entities decoded back a name like `<b>x</b>` shows as
written instead of being interpreted.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

from reports import dashboard_data as dd

INK, MUTED, ACCENT, LIGHT, GOOD, BAD = (
    "#1f2937",
    "#6b7280",
    "#1d4ed8",
    "#93c5fd",
    "#15803d",
    "#b91c1c",
)
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
WIDTH, HEIGHT = 600, 280  # CSS pixels of the email column; PNGs at 2x for sharp screens
SCALE = 2
MAX_BARS = 12  # per-site charts show the 12 largest (energy) or lowest (uptime); the table has all


def label(text: str | None) -> str:
    return html.escape(text or "", quote=False)


def _layout(fig: go.Figure, title: str, *, height: int = HEIGHT, legend: bool = False) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 15, "color": INK}},
        height=height,
        width=WIDTH,
        margin={"l": 56, "r": 24, "t": 44, "b": 40},
        paper_bgcolor="white",
        plot_bgcolor="white",
        font={"family": "Helvetica, Arial, sans-serif", "size": 12, "color": INK},
        showlegend=legend,
        legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"},
        bargap=0.25,
    )
    fig.update_xaxes(showgrid=False, linecolor="#d1d5db")
    fig.update_yaxes(gridcolor="#eef0f3", zeroline=False, automargin=True)
    return fig


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
        font={"color": MUTED, "size": 13},
    )  # fmt: skip
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


BLANK_DAYS = " – blank days: not computed"


def _blank_days(series: pl.DataFrame, *columns: str) -> bool:
    """Whether any day of `columns` is null: a day its asset did not compute."""
    return any(series[c].null_count() for c in columns)


def trend(series: pl.DataFrame) -> go.Figure:
    colours = [ACCENT if p else LIGHT for p in series["in_period"]]
    fig = go.Figure(
        [
            go.Bar(
                x=series["day"].to_list(), y=series["energy_kwh"].to_list(), name="kWh",
                marker_color=colours, hovertemplate="%{x|%a %d %b}: %{y:,.1f} kWh<extra></extra>",
            ),
            go.Scatter(
                x=series["day"].to_list(), y=series["sessions"].to_list(), name="sessions",
                yaxis="y2", mode="lines+markers", line={"color": INK, "width": 2},
                hovertemplate="%{x|%a %d %b}: %{y} sessions<extra></extra>",
            ),
        ]
    )  # fmt: skip
    fig.update_layout(
        yaxis={"title": "kWh", "rangemode": "tozero"},
        yaxis2={"title": "sessions", "overlaying": "y", "side": "right", "rangemode": "tozero",
                "showgrid": False, "tickmode": "auto", "tickformat": ",d"},
    )  # fmt: skip
    title = "Energy (bars) and sessions (line) per day"
    blank = _blank_days(series, "energy_kwh", "sessions")
    return _layout(fig, title + (BLANK_DAYS if blank else ""), legend=True)


def _status_note(rows: list[dict], key: str) -> str:
    """A title's note when the rows' `key` figure lacks some days of the period."""
    statuses = {r[key]["status"] for r in rows}
    return " (incomplete: some days not computed)" if "partial" in statuses else ""


def site_energy(rows: list[dict]) -> go.Figure:
    measured = [r for r in rows if r["energy"]["value"] is not None]
    top = sorted(measured, key=lambda r: -r["energy"]["value"])[:MAX_BARS][::-1]
    names = [label(r["name"]) for r in top]
    fig = go.Figure(
        [
            go.Bar(
                y=names, x=[r["energy"]["previous"] or 0.0 for r in top], orientation="h",
                name="previous period", marker_color=LIGHT,
                hovertemplate="%{y}: %{x:,.1f} kWh<extra>previous</extra>",
            ),
            go.Bar(
                y=names, x=[r["energy"]["value"] or 0.0 for r in top], orientation="h",
                name="this period", marker_color=ACCENT,
                hovertemplate="%{y}: %{x:,.1f} kWh<extra>this period</extra>",
            ),
        ]
    )  # fmt: skip
    fig.update_layout(barmode="group", xaxis={"title": "kWh"})
    title = "Energy per site" + (
        f" (top {len(top)} of {len(measured)})" if len(measured) > len(top) else ""
    )
    title += _status_note(rows, "energy")
    fig = _layout(fig, title, height=max(HEIGHT, 60 + 34 * len(top)), legend=True)
    if rows and not measured:
        return _empty(fig, "energy not computed for this period")
    return _empty(fig, "no sites with data") if not top else fig


def utilisation_heatmap(cells: pl.DataFrame, days: int, missing: int = 0) -> go.Figure:
    """`missing`: the days of the window peak usage was not computed for (left out)."""
    values = cells.sort("local_weekday", "local_hour")["occupancy_pct"].to_list()
    z = [values[24 * d : 24 * (d + 1)] for d in range(7)]  # one row per weekday, Monday first
    fig = go.Figure(
        go.Heatmap(
            z=z, x=list(range(24)), y=WEEKDAYS, colorscale="Blues", zmin=0,
            colorbar={"title": {"text": "% occupied"}, "thickness": 12},
            hovertemplate="%{y} %{x}:00 local: %{z:.1f}% occupied<extra></extra>", xgap=1, ygap=1,
        )
    )  # fmt: skip
    fig.update_xaxes(title="hour of day (site local time)", dtick=2)
    fig.update_yaxes(autorange="reversed", gridcolor="white")
    title = f"Utilisation by hour and weekday, last {days} days"
    if missing:
        title += f" ({missing} of them not computed, left out)"
    fig = _layout(fig, title, height=300)
    if missing >= days:
        return _empty(fig, "peak usage not computed for these days")
    if cells["occupancy_pct"].is_null().all():
        return _empty(fig, "no utilisation measured yet")
    return fig


def site_uptime(rows: list[dict], target: float) -> go.Figure:
    measured = [r for r in rows if r["uptime"]["value"] is not None]
    shown = sorted(measured, key=lambda r: r["uptime"]["value"])[:MAX_BARS]
    values = [r["uptime"]["value"] for r in shown]
    fig = go.Figure(
        go.Bar(
            x=[label(r["name"]) for r in shown], y=values,
            marker_color=[BAD if v < target else GOOD for v in values],
            text=[f"{v:.1f}%" for v in values], textposition="inside", insidetextanchor="end",
            textangle=0, textfont={"color": "white", "size": 11},
            hovertemplate="%{x}: %{y:.2f}%<extra></extra>",
        )
    )  # fmt: skip
    fig.add_hline(
        y=target, line={"color": INK, "dash": "dash", "width": 1},
        annotation_text=f"{target:g}% target", annotation_position="top left",
    )  # fmt: skip
    # from 0: a cut axis makes 96 % look like half of 100 %; the labels carry the small gaps
    fig.update_yaxes(range=[0, 100.5], title="uptime % (axis from 0)")
    more = f", {len(shown)} of {len(measured)}" if len(measured) > len(shown) else ""
    fig = _layout(fig, f"Uptime per site (lowest first{more})" + _status_note(rows, "uptime"))
    if rows and all(r["uptime"]["status"] == "missing" for r in rows):
        return _empty(fig, "uptime not computed for this period")
    return _empty(fig, "no uptime measured in this period") if not shown else fig


def revenue(series: pl.DataFrame, currency: str) -> go.Figure:
    fig = go.Figure(
        [
            go.Bar(
                x=series["day"].to_list(), y=series["expected"].to_list(), name="expected",
                marker_color=LIGHT, hovertemplate=f"%{{x|%d %b}}: %{{y:,.2f}} {currency}<extra>expected</extra>",
            ),
            go.Bar(
                x=series["day"].to_list(), y=series["captured"].to_list(), name="captured − refunded",
                marker_color=ACCENT, hovertemplate=f"%{{x|%d %b}}: %{{y:,.2f}} {currency}<extra>captured</extra>",
            ),
        ]
    )  # fmt: skip
    fig.update_layout(barmode="group", yaxis={"title": currency, "rangemode": "tozero"})
    blank = _blank_days(series, "expected", "captured")
    title = f"Revenue per day ({currency})" + (BLANK_DAYS if blank else "")
    return _layout(fig, title, height=230, legend=True)


def emissions(series: pl.DataFrame) -> go.Figure:
    colours = [GOOD if p else "#86efac" for p in series["in_period"]]
    fig = go.Figure(
        go.Bar(
            x=series["day"].to_list(), y=series["saved_kg"].to_list(), marker_color=colours,
            hovertemplate="%{x|%a %d %b}: %{y:,.1f} kg CO2 saved<extra></extra>",
        )
    )  # fmt: skip
    fig.update_yaxes(title="kg CO2", rangemode="tozero")
    blank = _blank_days(series, "saved_kg")
    return _layout(
        fig, "CO2 saved per day (tailpipe displaced − grid)" + (BLANK_DAYS if blank else "")
    )


def build(data: dd.DashboardData, sites: list[dict], currencies: list[str]) -> dict[str, go.Figure]:
    """The dashboard's figures by name (the name is also the PNG's cid and file name)."""
    series = dd.daily_series(data)
    figs = {
        "trend": trend(series),
        "sites": site_energy(sites),
        "heatmap": utilisation_heatmap(
            dd.heatmap(data),
            dd.heatmap_days(data.period),
            len(dd.heatmap_missing(data)),
        ),
        "uptime": site_uptime(sites, dd.NEVI_TARGET_PCT),
        "emissions": emissions(series),
    }
    for cur in currencies:
        figs[f"revenue_{cur.lower()}"] = revenue(dd.revenue_series(data, cur), cur)
    return figs


_BROWSER_KEPT = False


def _keep_browser() -> None:
    """Start kaleido's browser once per process and keep it for every later call (closed at
    exit): starting Chromium is most of a dashboard's PNG time, and a process that writes several
    dashboards (the demo, a backfill, the tests) pays it once. If it cannot be kept, each call
    starts its own, as before."""
    global _BROWSER_KEPT
    if _BROWSER_KEPT:
        return
    import atexit

    import kaleido

    try:
        kaleido.start_sync_server(silence_warnings=True)
    except Exception:  # a one-shot browser per call still works
        return
    atexit.register(kaleido.stop_sync_server, silence_warnings=True)
    _BROWSER_KEPT = True


def to_pngs(figs: Mapping[str, go.Figure]) -> dict[str, bytes]:
    """Every figure as PNG bytes, all in one headless Chromium (kaleido)."""
    import warnings

    from reports.browser import find_chromium

    # kaleido finds its browser through BROWSER_PATH; hand it the one the project found, so
    # CHARGEOPS_CHROMIUM and the clear not-found error apply here too
    os.environ.setdefault("BROWSER_PATH", find_chromium())
    _keep_browser()
    names = list(figs)
    with tempfile.TemporaryDirectory(prefix="chargeops-charts-") as tmp, warnings.catch_warnings():
        # plotly passes options that a kept browser already has
        warnings.filterwarnings("ignore", message="The kopts argument is ignored")
        paths = [Path(tmp) / f"{i}.png" for i in range(len(names))]
        pio.write_images(
            [figs[n] for n in names], paths, format="png", scale=SCALE,
            width=[figs[n].layout.width or WIDTH for n in names],
            height=[figs[n].layout.height or HEIGHT for n in names],
        )  # fmt: skip
        return {n: p.read_bytes() for n, p in zip(names, paths, strict=True)}
