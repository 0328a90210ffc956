"""Operator dashboard benchmark (reports/dashboard*.py): synthetic `DashboardData` frames built in
memory for N sites of 4 connectors each (no database, fixed seed), for a daily period
(2026-11-24) and an ISO week (2026-W47) over the window the dashboard reads
(`dashboard_data.window_start(period)`..period end), then every step of one network and one site
dashboard timed on its own:

- the pure summaries (`dashboard.context`) and the plotly figures (`dashboard_charts.build`);
- the PNGs (`dashboard.render_pngs`: kaleido driving headless Chromium), per call and per chart;
- the email HTML (`Dashboard.email_html`: jinja, then css-inline, split), the interactive HTML,
  `dashboard.message` (MIME composition; the interactive page is rendered once and reused) and `message.as_bytes()`;
- the sizes of the email HTML, the PNGs, the interactive HTML (and its inlined plotly.js), the
  .eml, and the .eml against its parts;
- the summaries at N and 10 N sites (does the cost stay linear-ish?);
- `--audiences K`: K site dashboards and the network one rendered in one `render_pngs` call
  (one Chromium start, as `dashboard.run` does) against one call per dashboard;
- peak RSS of this process at the end (Chromium's own processes are not in it).

Pure steps are the best of `--repeat` runs after one warm-up; Chromium steps run once each,
after one throwaway render so the first Chromium start from a cold disk is reported apart.
Prints figures and ratios, asserts nothing. Needs Chromium (as the dashboard does).

    .venv/bin/python bench/dashboard.py [--sites 50] [--audiences 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import css_inline
import polars as pl

sys.path[0] = str(Path(__file__).resolve().parent.parent)  # not bench/: see bench/checks.py

from chargeops.periods import Period, parse_period, previous  # noqa: E402
from reports import dashboard as dash  # noqa: E402
from reports import dashboard_charts as charts  # noqa: E402
from reports import dashboard_data as dd  # noqa: E402
from reports.recipients import Audience, default_audiences  # noqa: E402

SEED = 20261124
GENERATED_AT = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
SENDER = "chargeops <dashboard@example.com>"
PORTS = [("A", 1, 1), ("A", 2, 1), ("B", 1, 1), ("B", 2, 1)]  # (charge point, evse, connector)
TOWNS = ["Leeds", "Bremen", "Lyon", "Utrecht", "Graz", "Malmö", "Cork", "Porto", "Brno", "Ghent"]
KINDS = ["Park & Ride", "Retail Park", "Motorway Services", "Depot", "Station Car Park", "Hotel"]
# share of a site's occupied connector time that falls in each local hour (sums to ~1)
_SHAPE = [1, 1, 1, 1, 1, 2, 4, 6, 7, 6, 5, 5, 6, 5, 5, 6, 7, 8, 8, 6, 4, 3, 2, 1]
HOUR_SHAPE = [v / sum(_SHAPE) for v in _SHAPE]
FEATURES = ["faults_7d", "failed_start_rate_7d", "offline_min_7d", "derate_trend", "boots_7d",
            "heartbeat_gap_max_min_7d", "days_since_fault"]  # fmt: skip
CATEGORIES = ["amount_mismatch", "missing_payment", "orphan_payment", "duplicate_payment",
              "refunded", "partially_refunded", "disputed", "failed"]  # fmt: skip


# -- synthetic frames -----------------------------------------------------------------------------
def synthetic(period: Period, n_sites: int, seed: int = SEED) -> dd.DashboardData:
    """Every frame of `DashboardData` for `n_sites` sites over the dashboard's read window, with
    plausible values: weekday-dependent sessions, an hour-of-day occupancy shape, a few outages
    (some excluded), EUR sites and every tenth in GBP, some reconciliation exceptions and a 3%
    at-risk list scored on the period's last day."""
    rng = random.Random(seed)
    first, end = dd.window_start(period), period.end
    days = [first + timedelta(days=i) for i in range((end - first).days + 1)]
    site_ids = [f"S{i:04d}" for i in range(n_sites)]
    sites = {
        "site_id": site_ids,
        "name": [f"{TOWNS[i % len(TOWNS)]} {KINDS[(i // len(TOWNS)) % len(KINDS)]} {i}"
                 for i in range(n_sites)],
        "timezone": ["Europe/London" if i % 3 == 0 else "Europe/Berlin" for i in range(n_sites)],
    }  # fmt: skip
    size = {s: rng.uniform(0.5, 1.6) for s in site_ids}
    currency = {s: "GBP" if i % 10 == 9 else "EUR" for i, s in enumerate(site_ids)}

    cols: dict[str, dict[str, list]] = {
        name: {c: [] for c in schema}
        for name, schema in (
            ("sessions", dd.SESSIONS), ("energy", dd.ENERGY), ("utilisation", dd.UTILISATION),
            ("peak", dd.PEAK),
            ("uptime", dd.UPTIME), ("outages", dd.OUTAGES), ("expected", dd.EXPECTED),
            ("recon", dd.RECON), ("exceptions", dd.EXCEPTIONS), ("emissions", dd.EMISSIONS),
        )
    }  # fmt: skip

    def add(name: str, **row) -> None:
        for c, v in row.items():
            cols[name][c].append(v)

    for day in days:
        weekday = day.isoweekday()
        busy = 0.8 if weekday >= 6 else 1.0
        in_period = period.start <= day <= end
        for s in site_ids:
            ports = len(PORTS)
            sessions = max(0, round(rng.gauss(3.2 * ports * size[s] * busy, 2.0)))
            kwh = sessions * rng.uniform(16.0, 34.0)
            connector_h = 24.0 * ports
            occupied_h = min(connector_h * 0.9, sessions * rng.uniform(1.0, 1.8))
            add("sessions", day=day, site_id=s, sessions=sessions)
            add("energy", day=day, site_id=s, energy_kwh=kwh)
            add("utilisation", day=day, site_id=s, connector_hours=connector_h,
                occupied_hours=occupied_h, charging_hours=occupied_h * rng.uniform(0.7, 0.9))  # fmt: skip
            for h in range(24):
                occ = min(float(ports), occupied_h * HOUR_SHAPE[h] * rng.uniform(0.7, 1.3))
                add("peak", day=day, site_id=s, local_weekday=weekday, local_hour=h,
                    connector_hours=float(ports), occupied_hours=occ,
                    sessions_started=round(sessions * HOUR_SHAPE[h] * rng.uniform(0.5, 1.5)))  # fmt: skip
            for cp, evse, conn in PORTS:
                cpid = f"{s}-{cp}"
                outage = excluded = 0.0
                if rng.random() < 0.04:
                    outage = rng.uniform(5.0, 480.0)
                    excl = rng.random() < 0.25
                    excluded = outage if excl else 0.0
                    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
                        minutes=rng.uniform(0, 1440 - outage)
                    )
                    add("outages", day=day, charge_point_id=cpid, evse_id=evse,
                        connector_id=conn, site_id=s, start_ts=start,
                        end_ts=start + timedelta(minutes=outage), duration_min=outage,
                        cause=rng.choice(["faulted", "unavailable", "offline"]), excluded=excl)  # fmt: skip
                add("uptime", day=day, charge_point_id=cpid, evse_id=evse, connector_id=conn,
                    site_id=s, minutes_in_period=1440.0, outage_minutes=outage,
                    excluded_minutes=excluded)  # fmt: skip
            cur = currency[s]
            per_session = [rng.randint(900, 2600) for _ in range(sessions)]
            expected = sum(per_session)
            n_exc = sum(rng.random() < 0.04 for _ in range(sessions))
            captured = expected - sum(rng.randint(0, 300) for _ in range(n_exc))
            refunded = rng.choice([0, 0, 0, 0, rng.randint(200, 1500)]) if sessions else 0
            fees = sessions * 30 + round(captured * 0.014)
            add("expected", day=day, site_id=s, currency=cur, minor_unit_exponent=2,
                expected_gross=expected)  # fmt: skip
            add("recon", day=day, site_id=s, currency=cur, captured=captured, refunded=refunded,
                fees=fees, net=captured - refunded - fees, exceptions=n_exc)  # fmt: skip
            add("emissions", day=day, site_id=s, net_saving_g=kwh * rng.uniform(180.0, 320.0))
            if in_period:
                for k in range(n_exc):
                    gross = rng.choice(per_session)
                    cat = rng.choice(CATEGORIES)
                    got = 0 if cat in ("missing_payment", "failed") else gross - rng.randint(1, 300)
                    add("exceptions", day=day, line_key=f"{day}:{s}:{k}",
                        session_id=f"{s}-A:{day:%Y%m%d}{k:03d}", site_id=s, currency=cur,
                        minor_unit_exponent=2, expected_gross=gross, captured=got,
                        refunded=gross if cat == "refunded" else 0, category=cat,
                        reason=f"{cat.replace('_', ' ')}: expected {gross}, captured {got}")  # fmt: skip

    ports = [(s, f"{s}-{cp}", evse, conn) for s in site_ids for cp, evse, conn in PORTS]
    flagged = rng.sample(ports, max(1, round(0.03 * len(ports))))
    risks = sorted((rng.uniform(0.35, 0.95) for _ in flagged), reverse=True)
    at_risk = {
        "day": [end] * len(flagged),
        "rank": list(range(1, len(flagged) + 1)),
        "charge_point_id": [p[1] for p in flagged],
        "evse_id": [p[2] for p in flagged],
        "connector_id": [p[3] for p in flagged],
        "site_id": [p[0] for p in flagged],
        "model": [rng.choice(["Alfen Eve", "ABB Terra AC", "Wallbox Commander"]) for _ in flagged],
        "risk": risks,
        "score_source": ["prior" if rng.random() < 0.1 else "model" for _ in flagged],
        "top_features": [
            json.dumps(
                [
                    {
                        "feature": f,
                        "value": round(rng.uniform(0, 30), 1),
                        "contribution": round(rng.uniform(0.01, 0.2), 3),
                    }
                    for f in rng.sample(FEATURES, 3)
                ]
            )  # fmt: skip
            for _ in flagged
        ],
        "faults_7d": [None] * len(flagged),
    }
    frames = {name: pl.DataFrame(c, schema=getattr(dd, name.upper())) for name, c in cols.items()}
    return dd.DashboardData(
        period=period,
        prev=previous(period),
        first=first,
        sites=pl.DataFrame(sites, schema=dd.SITES),
        sessions=frames["sessions"],
        utilisation=frames["utilisation"],
        energy=frames["energy"],
        peak=frames["peak"],
        uptime=frames["uptime"],
        outages=frames["outages"],
        expected=frames["expected"],
        recon=frames["recon"],
        exceptions=frames["exceptions"],
        emissions=frames["emissions"],
        at_risk=pl.DataFrame(at_risk, schema=dd.AT_RISK),
    )


# -- timing ---------------------------------------------------------------------------------------
def best(fn: Callable[[], object], repeat: int) -> tuple[object, float]:
    """`fn()`'s result and its best wall time of `repeat` runs, after one warm-up run."""
    out = fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


def once(fn: Callable[[], object]) -> tuple[object, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def measure(data: dd.DashboardData, audience: Audience, repeat: int) -> dict:
    """Each step of one audience's dashboard, timed apart; sizes of what it produces."""
    mine, t_scope = best(lambda: dd.scoped(data, audience.site_ids), repeat)
    ctx, t_ctx = best(lambda: dash.context(mine, audience, GENERATED_AT), repeat)
    currencies = [r["currency"] for r in ctx["revenue"]]
    _, t_figs = best(lambda: charts.build(mine, ctx["sites"], currencies), repeat)
    d, t_build = best(lambda: dash.build(data, audience, GENERATED_AT), repeat)
    _, t_png = once(lambda: dash.render_pngs([d]))

    def src(name: str) -> str:
        return f"cid:{dash.cid(name)}"

    page, t_jinja = best(lambda: dash.render(d.context, mode="email", image_src=src), repeat)
    _, t_inline = best(lambda: css_inline.inline(page), repeat)
    email, t_email = best(lambda: d.email_html(src), repeat)
    # a cached property: time the rendering itself (run() renders it once per audience)
    interactive, t_inter = best(lambda: type(d).interactive_html.func(d), repeat)
    text = d.text()
    msg, t_msg = best(lambda: dash.message(d, SENDER), repeat)
    eml, t_bytes = best(msg.as_bytes, repeat)
    return {
        "sites": mine.sites.height,
        "charts": len(d.figures),
        "t": {
            "scoped": t_scope,
            "context": t_ctx,
            "figures": t_figs,
            "build": t_build,
            "pngs": t_png,
            "jinja": t_jinja,
            "css_inline": t_inline,
            "email": t_email,
            "interactive": t_inter,
            "message": t_msg,
            "as_bytes": t_bytes,
        },  # fmt: skip
        "bytes": {
            "email": len(email.encode()),
            "pngs": sum(len(p) for p in d.pngs.values()),
            "interactive": len(interactive.encode()),
            "text": len(text.encode()),
            "eml": len(eml),
        },  # fmt: skip
    }


def ms(s: float) -> str:
    return f"{s * 1000:,.1f} ms" if s < 1 else f"{s:,.2f} s"


def kb(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:,.2f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--audiences", type=int, default=5, help="site dashboards batched (K)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each pure step")
    args = ap.parse_args()

    from plotly.offline import get_plotlyjs
    from rich.console import Console
    from rich.table import Table

    con = Console(width=132)  # the tables stay whole when piped
    started = time.perf_counter()
    con.print(
        f"[bold]dashboard benchmark[/]: {args.sites} sites x {len(PORTS)} connectors, "
        f"{os.cpu_count()} cores, best of {args.repeat} (Chromium steps once)"
    )

    periods = [parse_period("2026-11-24"), parse_period("2026-W47")]
    datasets = {}
    for p in periods:
        data, t = once(lambda p=p: synthetic(p, args.sites))
        datasets[p.label] = data
        rows = sum(getattr(data, f).height for f in ("energy", "peak", "uptime", "outages"))
        con.print(
            f"  {p.label}: window {data.first}..{p.end} ({(p.end - data.first).days + 1} days), "
            f"{data.peak.height:,} peak rows, {data.outages.height:,} outages, "
            f"{data.exceptions.height:,} exception lines, {data.at_risk.height} at risk; "
            f"built in {t:.2f} s ({rows:,} rows in the four largest frames)"
        )

    # the first Chromium start of the process: kaleido import, Chromium read from disk
    import plotly.graph_objects as go

    _, cold = once(lambda: charts.to_pngs({"warmup": go.Figure(go.Bar(x=[1], y=[1]))}))
    con.print(f"  first render_pngs of the process (1 tiny chart, cold): {cold:.2f} s")

    names = {r["site_id"]: r["name"] for r in datasets[periods[0].label].sites.to_dicts()}
    audiences = default_audiences(names)
    network, one_site = audiences[0], audiences[1]
    results = {}
    for p in periods:
        for a in (network, one_site):
            results[(p.label, a.scope)] = measure(datasets[p.label], a, args.repeat)

    cols = list(results)
    steps = [
        ("scoped", "dd.scoped"), ("context", "summaries: dashboard.context"),
        ("figures", "figures: dashboard_charts.build"), ("build", "dashboard.build (the 3 above)"),
        ("pngs", "PNGs: render_pngs (1 Chromium)"), ("jinja", "  jinja, email form"),
        ("css_inline", "  css-inline"), ("email", "email HTML: email_html"),
        ("interactive", "interactive_html"), ("message", "dashboard.message"),
        ("as_bytes", "message.as_bytes()"),
    ]  # fmt: skip
    table = Table(title="time per step", title_justify="left")
    table.add_column("step")
    for label, scope in cols:
        r = results[(label, scope)]
        table.add_column(
            f"{label} {scope}\n{r['sites']} site(s), {r['charts']} charts", justify="right"
        )
    for key, name in steps:
        cells = []
        for c in cols:
            r = results[c]
            v = ms(r["t"][key])
            if key == "pngs":
                v += f"\n{ms(r['t'][key] / r['charts'])}/chart"
            cells.append(v)
        table.add_row(name, *cells)
    con.print(table)

    plotly_js = len(get_plotlyjs().encode())
    sizes = Table(title="sizes", title_justify="left")
    sizes.add_column("part")
    for label, scope in cols:
        sizes.add_column(f"{label} {scope}", justify="right")
    for key, name in [("email", "email HTML"), ("pngs", "PNGs"), ("interactive", "interactive HTML"),
                      ("text", "text/plain"), ("eml", ".eml")]:  # fmt: skip
        cells = []
        for c in cols:
            v = results[c]["bytes"][key]
            extra = ""
            if key == "pngs":
                extra = f" ({results[c]['charts']})"
            if key == "interactive":
                extra = f"\n{100 * plotly_js / v:.0f}% plotly.js"
            cells.append(kb(v) + extra)
        sizes.add_row(name, *cells)
    con.print(sizes)

    for c in cols:
        r, t, b = results[c], results[c]["t"], results[c]["bytes"]
        parts = b["email"] + b["pngs"] + b["interactive"] + b["text"]
        total = t["build"] + t["pngs"] + t["message"] + t["as_bytes"]
        mime_only = t["message"] - t["email"]  # the interactive page is cached, not re-rendered
        con.print(
            f"  {c[0]} {c[1]}: .eml = {b['eml'] / parts:.2f}x its parts (+{kb(b['eml'] - parts)} "
            f"encoding); PNGs {100 * t['pngs'] / total:.0f}% of build+PNGs+message+bytes "
            f"({ms(total)}); message() {100 * t['email'] / t['message']:.0f}% "
            f"rendering the email body, {ms(max(mime_only, 0.0))} MIME; css-inline "
            f"{100 * t['css_inline'] / t['email']:.0f}% of email_html"
        )
    con.print(f"  plotly.js inlined in every interactive HTML: {kb(plotly_js)}")

    # scaling of the summaries: N vs 10 N sites, whole network, daily period
    big_n = 10 * args.sites
    small = datasets[periods[0].label]
    reps = max(args.repeat, 5)  # short steps: more runs against noise
    _, t_small = best(lambda: dash.context(small, network, GENERATED_AT), reps)
    _, s_small = best(lambda: dd.sites(small), reps)
    big, t_gen = once(lambda: synthetic(periods[0], big_n))
    _, t_big = best(lambda: dash.context(big, network, GENERATED_AT), reps)
    _, s_big = best(lambda: dd.sites(big), reps)
    con.print(
        f"  summaries, network, {periods[0].label}: {args.sites} sites {ms(t_small)}, {big_n} "
        f"sites {ms(t_big)} = {t_big / t_small:.1f}x for {big_n / args.sites:.0f}x the sites; "
        f"the per-site table (dd.sites) {ms(s_small)} -> {ms(s_big)} = {s_big / s_small:.1f}x "
        f"({big.peak.height:,} peak rows generated in {t_gen:.1f} s)"
    )

    # the browser kept for the process (charts._keep_browser) against one started per call: what
    # a process writing several dashboards in turn (the demo's day and week, a backfill) saves
    import kaleido

    network_dash = dash.build(datasets[periods[0].label], network, GENERATED_AT)
    kept = [once(lambda: dash.render_pngs([network_dash]))[1] for _ in range(3)]
    kaleido.stop_sync_server(silence_warnings=True)
    keep, charts._keep_browser = charts._keep_browser, lambda: None
    try:
        fresh = [once(lambda: dash.render_pngs([network_dash]))[1] for _ in range(3)]
    finally:
        charts._keep_browser = keep
        charts._BROWSER_KEPT = False
    con.print(
        f"  kept browser, network {periods[0].label} ({len(network_dash.figures)} charts), 3 calls "
        f"in turn: {sum(kept) / 3:.2f} s a call kept, {sum(fresh) / 3:.2f} s a call with a "
        f"browser started each time ({sum(fresh) / sum(kept):.1f}x)"
    )

    # batching: K site dashboards + the network one, one render_pngs call vs one per dashboard
    # (the browser kept, so this is what one call carries beyond the browser start)
    k = min(args.audiences, len(audiences) - 1)
    data = datasets[periods[0].label]
    batch = [dash.build(data, a, GENERATED_AT) for a in audiences[: k + 1]]
    n_charts = sum(len(d.figures) for d in batch)
    _, t_each = once(lambda: [dash.render_pngs([d]) for d in batch])
    _, t_batched = once(lambda: dash.render_pngs(batch))
    saved = t_each - t_batched
    con.print(
        f"  batching, {periods[0].label}, network + {k} sites ({n_charts} charts): one call "
        f"{t_batched:.2f} s ({ms(t_batched / n_charts)}/chart), one call per dashboard "
        f"{t_each:.2f} s ({ms(t_each / n_charts)}/chart): batching saves {saved:.2f} s "
        f"({t_each / t_batched:.1f}x), ~{ms(saved / max(k, 1))} per extra Chromium start"
    )
    if k:  # what `dashboard.run` with the default audiences (network + every site) would take
        start = saved / k
        per_chart = max(t_batched - start, 0.0) / n_charts
        every = [dash.build(data, a, GENERATED_AT) for a in audiences]
        all_charts = sum(len(d.figures) for d in every)
        con.print(
            f"  estimate, default audiences (network + {len(audiences) - 1} sites, {all_charts} "
            f"charts) in one call: ~{start + per_chart * all_charts:.0f} s of PNGs "
            f"(~{ms(start)} start + ~{ms(per_chart)} a chart)"
        )

    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    con.print(
        f"  peak RSS of this process (ru_maxrss, Chromium not included): {me:,.0f} MB; "
        f"wall {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
