"""The operator dashboard, emailed as HTML: one per audience (an operator's sites, or one site)
and period (a day, an ISO week or any period `chargeops.periods` parses), against the period
before.

One template (`templates/dashboard.html.j2`, autoescaped) renders both forms:
- the email body: table layout, styles inlined by css-inline (mail clients drop `<style>` and run
  no script), charts as PNGs referenced by `cid:` and carried as inline parts of a
  multipart/related message (reports/mail.py);
- the interactive page: the same content with live plotly charts and plotly.js inlined, so the
  attached file works offline.

Incomplete data is said, not hidden: a day an asset did not record 'ok' puts a banner at the top
of both forms (and `[incomplete] ` before the subject) naming the assets and days; the figures it
feeds are marked incomplete and not compared, or shown as `–` when none of their days are there.

Files, per audience, in `<reports>/<period>/dashboard/<audience>/`: `dashboard.eml` (the message
exactly as sent), `email.html` (the body with the charts as files beside it, to look at in a
browser), `charts/*.png` and `dashboard.html`; the period folder's manifest lists them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from functools import cached_property
from pathlib import Path

import css_inline
import jinja2
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from markupsafe import Markup

from chargeops import local_days as ld
from chargeops.periods import Period, parse_period
from reports import dashboard_charts as charts
from reports import dashboard_data as dd
from reports import mail
from reports.compliance import environment
from reports.files import period_dir, write_bytes, write_manifest, write_text
from reports.recipients import Audience

ATTACHMENT = "dashboard.html"
CATEGORY_NAMES = {
    "amount_mismatch": "amount differs", "missing_payment": "no payment",
    "orphan_payment": "payment without a session", "duplicate_payment": "paid twice",
    "refunded": "refunded", "partially_refunded": "partly refunded", "disputed": "disputed",
    "failed": "payment failed",
}  # fmt: skip


@dataclass
class Dashboard:
    audience: Audience
    period: Period
    subject: str
    context: dict
    figures: dict
    pngs: dict[str, bytes] = field(default_factory=dict)
    plotly_js: str = "inline"  # or "cdn": the attachment loads plotly.js from cdn.plot.ly

    def email_html(self, image_src: Callable[[str], str]) -> str:
        page = render(self.context, mode="email", image_src=image_src)
        return css_inline.inline(page)

    @cached_property  # 4.7 MB with plotly.js inline: rendered once, attached and written
    def interactive_html(self) -> str:
        divs = {
            name: Markup(
                pio.to_html(
                    go.Figure(fig).update_layout(width=None, autosize=True),  # fills the page
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"chart-{name}",
                    config={"displaylogo": False, "responsive": True},
                )
            )  # fmt: skip
            for name, fig in self.figures.items()
        }
        return render(
            self.context,
            mode="interactive",
            charts=divs,
            plotly_script=_plotly_script(self.plotly_js),
        )

    def text(self) -> str:
        c, h = self.context, self.context["headline"]
        lines = [
            f"{c['title']}: {c['kind_label']} {c['period_label']} (compared with {c['prev_label']})",
            c["days_note"],
            "",
        ]
        if c["incomplete"]:
            lines += [
                f"INCOMPLETE DATA: {c['incomplete_note']}",
                *[f"- {line}" for line in c["incomplete"]],
                "",
            ]
        lines += [
            f"Sessions: {_fig_text(h['sessions'], lambda v: f'{v:,}')}",
            f"Energy: {_fig_text(h['energy_kwh'], lambda v: f'{v:,.1f} kWh')}",
            f"Utilisation: {_fig_text(h['utilisation_pct'], _pct)}",
            f"Uptime: {_fig_text(h['uptime_pct'], _pct)}",
            f"Outages: {_fig_text(h['outages'], _num)}",
            f"CO2 saved: {_fig_text(h['saved_kg'], lambda v: f'{v:,.1f} kg')}",
            f"Payment exceptions: {_fig_text(h['exceptions'], _num)}",
        ]
        for r in c["revenue"]:
            lines.append(
                f"Revenue {r['currency']}: "
                f"expected {_fig_text(r['expected_gross'], lambda v, r=r: _money(v, r))}, "
                f"captured {_fig_text(r['captured'], lambda v, r=r: _money(v, r))}, "
                f"{_fig_text(r['exceptions'], _num)} reconciliation exceptions"
            )
        ports = "–" if c["status"]["uptime"] == "missing" else str(len(c["ports_below"]))
        risk = c["at_risk"]
        what = (
            "Connectors at risk of an outage in the next 7 days"
            if risk["source"] == "model"
            else f"Connectors with faults in the last 7 days (not the model's list: {risk['why']})"
        )
        lines += [
            f"Ports under {dd.NEVI_TARGET_PCT:g}% uptime: {ports}",
            f"{what}: {risk['count']}",
            "",
            f"The attached {ATTACHMENT} has the interactive charts.",
        ]
        return "\n".join(lines) + "\n"


def _plotly_script(mode: str) -> Markup:
    """plotly.js inline (the page works offline), or plotly's own CDN tag (with its SRI hash)."""
    if mode == "cdn":
        tag = re.search(
            r"<script[^>]*\bsrc=[^>]*></script>",
            pio.to_html(go.Figure(), include_plotlyjs="cdn", full_html=False),
        )
        assert tag is not None, "plotly's CDN script tag"
        return Markup(tag[0])
    from plotly.offline import get_plotlyjs

    return Markup(f"<script>{get_plotlyjs()}</script>")


# -- formatting -----------------------------------------------------------------------------------
def _pct(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}%"


def _num(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def _money(minor: int | None, row: dict) -> str:
    if minor is None:
        return "–"
    exp = int(row["exponent"])
    return f"{minor / 10**exp:,.{exp}f} {row['currency']}"


INCOMPLETE_NOTE = (
    "the days below are missing from the figures (not computed, or failed). A figure marked "
    "incomplete is from the other days and is not compared; – means none of its days are there."
)
UTC_DAYS_NOTE = (
    " The days named are UTC days (the analytics' partitions); a site's local day is whole only "
    "when each UTC day it overlaps is."
)
INCOMPLETE_TAG = Markup(' <span class="incomplete">incomplete</span>')


def _fig_text(fig: dict, fmt: Callable) -> str:
    """A figure in plain text (and the subject): `–` without a value, marked when partial."""
    if fig["value"] is None:
        return "– (not computed)" if fig.get("status") == "missing" else "–"
    return fmt(fig["value"]) + (" (incomplete)" if fig.get("status") == "partial" else "")


def _value(fig: dict, text: str) -> Markup:
    """A figure's formatted value in HTML: `–` without one, tagged when only some days count."""
    if fig["value"] is None:
        return Markup("–")
    return Markup("{}").format(text) + (INCOMPLETE_TAG if fig.get("status") == "partial" else "")


def _mark(status: str) -> Markup:
    """Beside a column or section title: whether its asset lacks some or all of the period."""
    if status == "partial":
        return INCOMPLETE_TAG
    if status == "missing":
        return Markup(' <span class="incomplete">not computed</span>')
    return Markup("")


def _change(fig: dict) -> Markup:
    """`▲ 12.3%` coloured by whether the change is good news; `–` without a previous value;
    never a change where either period lacks days."""
    if fig.get("status") == "missing":
        return Markup('<span class="incomplete">not computed</span>')
    if fig.get("status") == "partial":
        return Markup('<span class="incomplete">not compared (incomplete)</span>')
    if fig.get("prev_status", "complete") != "complete":
        return Markup('<span class="flat">not compared (before incomplete)</span>')
    c, arrow = fig["change_pct"], {"up": "▲", "down": "▼", None: "■"}[fig["direction"]]
    if c is not None:
        return Markup('<span class="{}">{} {:.1f}%</span>').format(fig["tone"], arrow, abs(c))
    if fig["direction"]:
        return Markup('<span class="{}">{} from 0</span>').format(fig["tone"], arrow)
    if fig["previous"] is None or fig["value"] is None:
        return Markup('<span class="flat">no comparison</span>')
    return Markup('<span class="flat">■ unchanged</span>')


def _env() -> jinja2.Environment:
    env = environment()
    env.filters.update(pct=_pct, num=_num, money=_money, change=_change)
    env.globals["category_name"] = lambda c: CATEGORY_NAMES.get(c, c)
    env.globals.update(value=_value, mark=_mark)
    return env


def render(ctx: dict, *, mode: str, **extra) -> str:
    return _env().get_template("dashboard.html.j2").render(**ctx, mode=mode, **extra)


# -- content --------------------------------------------------------------------------------------
KIND_LABELS = {"day": "daily dashboard", "week": "weekly dashboard", "month": "monthly dashboard"}


def _period_text(p: Period) -> str:
    if p.kind == "day":
        return p.start.strftime("%a %d %b %Y")
    if p.kind == "week":
        return f"{p.label} ({p.start:%d %b} – {p.end:%d %b %Y})"
    return f"{p.label} ({p.start} – {p.end})"


def context(data: dd.DashboardData, audience: Audience, generated_at: datetime) -> dict:
    """Everything the template shows, from the audience's own data."""
    sites = dd.sites(data)
    revenue = dd.revenue(data)
    return {
        "incomplete": dd.banner(data),
        "incomplete_note": INCOMPLETE_NOTE + UTC_DAYS_NOTE,
        "days_note": dd.days_note(data),
        "status": {a: dd.coverage(data, a, data.period) for a in dd.FIGURE_ASSETS},
        "site_columns": dd.site_columns(data),
        "period_end": data.period.end,
        "title": audience.title,
        "scope": audience.scope,
        "kind_label": KIND_LABELS.get(data.period.kind, "dashboard"),
        "period_label": _period_text(data.period),
        "prev_label": _period_text(data.prev),
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "headline": dd.headline(data),
        "sites": sites,
        "revenue": revenue,
        "ports_below": dd.ports_below_target(data),
        "outages": dd.outages(data),
        "at_risk": dd.at_risk(data),
        "exceptions": dd.exceptions(data),
        "target": dd.NEVI_TARGET_PCT,
        "trend_days": dd.trend_days(data.period),
        "heatmap_days": dd.heatmap_days(data.period),
        "list_rows": dd.LIST_ROWS,
        "chart_names": [],  # filled by build()
    }


INCOMPLETE_PREFIX = "[incomplete] "


def subject(ctx: dict) -> str:
    """The subject line; `[incomplete] ` first when any day is missing from the figures."""
    h = ctx["headline"]
    uptime = _pct(h["uptime_pct"]["value"])
    return (
        f"{INCOMPLETE_PREFIX if ctx['incomplete'] else ''}"
        f"{ctx['title']} – {ctx['kind_label']} {ctx['period_label']}: "
        f"{_num(h['sessions']['value'])} sessions, {_num(h['energy_kwh']['value'])} kWh, "
        f"uptime {uptime}"
    )


def build(data: dd.DashboardData, audience: Audience, generated_at: datetime) -> Dashboard:
    """The dashboard of one audience (figures built, PNGs not yet rendered)."""
    mine = dd.scoped(data, audience.site_ids)
    ctx = context(mine, audience, generated_at)
    currencies = [r["currency"] for r in ctx["revenue"]]
    figures = charts.build(mine, ctx["sites"], currencies)
    if len(ctx["sites"]) < 2:  # one site: the per-site charts would repeat the headline
        figures.pop("sites", None)
        figures.pop("uptime", None)
    ctx["chart_names"] = list(figures)
    return Dashboard(audience, data.period, subject(ctx), ctx, figures)


def render_pngs(dashboards: Sequence[Dashboard]) -> None:
    """Every dashboard's PNGs in one browser session (starting Chromium is the slow part)."""
    flat = {f"{i}/{n}": fig for i, d in enumerate(dashboards) for n, fig in d.figures.items()}
    pngs = charts.to_pngs(flat) if flat else {}
    for i, d in enumerate(dashboards):
        d.pngs = {n: pngs[f"{i}/{n}"] for n in d.figures}


def cid(name: str) -> str:
    return f"{name}.png"


def message(d: Dashboard, sender: str) -> EmailMessage:
    return mail.compose(
        subject=d.subject,
        sender=sender,
        to=list(d.audience.to),
        cc=list(d.audience.cc),
        html=d.email_html(lambda n: f"cid:{cid(n)}"),
        text=d.text(),
        inline_images={cid(n): png for n, png in d.pngs.items()},
        attachments=[(ATTACHMENT, d.interactive_html.encode("utf-8"), "text/html")],
    )


def write(d: Dashboard, msg: EmailMessage, folder: Path) -> list[Path]:
    paths = [mail.write_eml(msg, folder / "dashboard.eml")]
    for name, png in d.pngs.items():
        paths.append(write_bytes(folder / "charts" / cid(name), png))
    paths.append(write_text(folder / "email.html", d.email_html(lambda n: f"charts/{cid(n)}")))
    paths.append(write_text(folder / ATTACHMENT, d.interactive_html))
    return paths


# -- delivery -------------------------------------------------------------------------------------
@dataclass
class Result:
    audience: Audience
    folder: Path
    files: list[Path]
    subject: str
    status: str  # "written" | "sent" | "already sent" | "no recipients" | "failed: ..."
    accepted: list[str] = field(default_factory=list)
    message_id: str = ""
    headline: dict = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)  # the banner's lines; empty: complete


def _delivered(url: str, period: str, key: str) -> bool:
    from chargeops.db import connect

    with connect(url) as conn:
        row = conn.execute(
            "SELECT 1 FROM dashboard_delivery WHERE period = %s AND audience = %s",
            (period, key),
        ).fetchone()
    return row is not None


def _record(url: str, period: str, key: str, message_id: str, accepted: list[str]) -> None:
    from chargeops.db import connect

    with connect(url) as conn:
        conn.execute(
            "INSERT INTO dashboard_delivery (period, audience, message_id, recipients) "
            "VALUES (%s, %s, %s, %s)",
            (period, key, message_id, accepted),
        )


PLOTLYJS_ENV = "CHARGEOPS_DASHBOARD_PLOTLYJS"


def plotly_js_mode() -> str:
    """`inline` (default: the attachment works offline, ~4.7 MB) or `cdn` (~100 KB; the reader's
    browser fetches plotly.js from cdn.plot.ly)."""
    from chargeops.settings import ConfigError

    mode = os.environ.get(PLOTLYJS_ENV, "").strip().lower() or "inline"
    if mode not in {"inline", "cdn"}:
        raise ConfigError(f"{PLOTLYJS_ENV}={mode!r}: use inline or cdn")
    return mode


def site_names(url: str) -> dict[str, str]:
    from chargeops import frames

    schema = {"site_id": pl.String, "name": pl.String}
    df = frames.read_table(url, "SELECT site_id, name FROM site", schema)
    return {r["site_id"]: r["name"] or r["site_id"] for r in df.to_dicts()}


def run(
    url: str,
    reports_dir: Path,
    period: str | Period,
    audiences: Sequence[Audience],
    *,
    smtp: mail.SmtpConfig | None = None,
    send: bool = True,
    resend: bool = False,
    model_card: dict | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> list[Result]:
    """Build, write and (with `smtp`, `send` and recipients) send each audience's dashboard.

    `model_card` is the latest maintenance model's card (`models.artifacts.load_card`): the
    at-risk list is the model's only when the card says it beats the baseline, else (and without
    a card) the baseline rule's.

    A dashboard already sent for this period and audience is not sent again unless `resend`, so a
    re-run after a failure mails only those who did not get it. Files are always written."""
    p = period if isinstance(period, Period) else parse_period(period)
    plotly_js = plotly_js_mode()
    data = dd.read(url, p, model_card)
    now = datetime.now(UTC)
    dashboards = [build(data, a, now) for a in audiences]
    for d in dashboards:
        d.plotly_js = plotly_js
    log(f"rendering {sum(len(d.figures) for d in dashboards)} charts")
    render_pngs(dashboards)
    sender = smtp.sender if smtp else "chargeops <dashboard@localhost>"
    base = period_dir(Path(reports_dir), p.label) / "dashboard"
    results, failed = [], []
    for d in dashboards:
        msg = message(d, sender)
        folder = base / d.audience.key
        files = write(d, msg, folder)
        res = Result(
            d.audience, folder, files, d.subject, "written",
            message_id=str(msg["Message-ID"]),
            headline={k: v["value"] for k, v in d.context["headline"].items()},
            incomplete=list(d.context["incomplete"]),
        )  # fmt: skip
        if send and smtp is not None:
            if not d.audience.to:
                res.status = "no recipients"
            elif not resend and _delivered(url, p.label, d.audience.key):
                res.status = "already sent"
            else:
                try:
                    res.accepted = mail.send(msg, smtp)
                except mail.MailError as e:  # the others still go out; the run fails at the end
                    res.status = f"failed: {e}"
                    failed.append(f"{d.audience.key}: {e}")
                else:
                    _record(url, p.label, d.audience.key, res.message_id, res.accepted)
                    res.status = "sent"
        log(
            f"{d.audience.key}: {res.status}" + (f" to {len(res.accepted)}" if res.accepted else "")
        )
        results.append(res)
    write_manifest(base.parent)
    if failed:
        raise mail.MailError(
            f"{len(failed)} of {len(results)} dashboards not sent (files written; a re-run "
            f"sends only these): " + "; ".join(failed)
        )
    return results


# -- command line ---------------------------------------------------------------------------------
def last_period(weekly: bool, today: date, zones: Sequence[str] = (ld.UTC_ZONE,)) -> Period:
    """What a dashboard made on `today` covers: the last local day whole in the UTC partitions
    before `today` in every site zone of `zones` (yesterday, or the day before when a site is
    west of UTC), or (`weekly`) the last ISO week ending on or before that day; the CLI's
    default and the Dagster schedules' partitions."""
    from chargeops.periods import day_period, iso_week

    last = ld.last_whole_day(today, zones)
    if weekly:
        return iso_week(last - timedelta(days=last.isoweekday() % 7))
    return day_period(last)


def new_period(weekly: bool, today: date, zones: Sequence[str]) -> Period | None:
    """The period that became whole on `today` (`last_period`), or None when it is the one that
    was already whole yesterday: what a schedule evaluated every day requests."""
    period = last_period(weekly, today, zones)
    return None if period == last_period(weekly, today - timedelta(days=1), zones) else period


def site_zones(url: str) -> list[str]:
    """The time zones of every site (UTC when none): the local days of the dashboards."""
    from chargeops import frames

    schema = {"site_id": pl.String, "timezone": pl.String}
    return ld.zones_of(frames.read_table(url, "SELECT site_id, timezone FROM site", schema))


def cli(args, settings) -> int:
    from chargeops.db import resolve_database_url
    from chargeops.settings import ConfigError
    from models import artifacts
    from reports import recipients
    from reports.browser import BrowserNotFound

    try:
        period = parse_period(args.period) if args.period else None
    except ValueError as e:
        raise ConfigError(str(e)) from None
    smtp = None if args.dry_run else mail.SmtpConfig.from_env()
    if not args.dry_run and smtp is None:
        raise ConfigError(
            "CHARGEOPS_SMTP_HOST is not set: configure SMTP (see README, 'Operator dashboard') "
            "or use --dry-run to write the files only"
        )
    url = resolve_database_url(settings)
    if period is None:
        period = last_period(args.weekly, datetime.now(UTC).date(), site_zones(url))
    audiences = recipients.from_env(site_names(url), path=args.recipients)
    if args.audience:
        known = {a.key for a in audiences}
        unknown = sorted(set(args.audience) - known)
        if unknown:
            raise ConfigError(
                f"unknown audience {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        audiences = [a for a in audiences if a.key in args.audience]
    out = Path(args.out) if args.out else settings.reports_path
    card = artifacts.load_card(settings.data_dir / "models")  # the model store's default folder
    try:
        results = run(
            url, out, period, audiences, smtp=smtp, send=not args.dry_run, resend=args.resend,
            model_card=card, log=lambda m: print(f"  {m}"),
        )  # fmt: skip
    except (BrowserNotFound, mail.MailError) as e:
        raise ConfigError(str(e)) from None
    for r in results:
        to = ", ".join(r.accepted or r.audience.to) or "no recipients"
        print(f"{r.audience.key} ({r.status}; {to}): {r.subject}")
        print(f"  {r.folder}")
    return 0
