"""Figures read back from the files a person receives (the compliance report's HTML, the EV-ChART
and UK CSVs, the reconciliation exceptions CSV, the operator dashboard) and compared with the
asset rows they are built from: one source for every reported figure."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date, timedelta
from pathlib import Path

import psycopg

from chargeops.periods import quarter_label, quarter_start


def _number(text: str) -> float | None:
    text = text.replace(",", "").strip()
    m = re.search(r"-?\d+(\.\d+)?", text)
    return float(m.group(0)) if m else None


def compliance_kpis(path: Path) -> dict[str, float | None]:
    """The network summary's KPI boxes of a compliance report: label -> value."""
    text = path.read_text()
    out = {}
    for value, label in re.findall(
        r'<div class="kpi"><b>(.*?)</b><span>(.*?)</span></div>', text, flags=re.S
    ):
        label = re.sub(r"<[^>]+>", "", html.unescape(label)).strip()
        out[label] = _number(html.unescape(value))
    return out


def dashboard_kpis(path: Path) -> dict[str, str]:
    """The headline tiles of a written dashboard page: label -> the value as shown."""
    text = html.unescape(path.read_text())
    found = re.findall(
        r'<div class="kpi-label"[^>]*>(.*?)</div>\s*<div class="kpi-value"[^>]*>(.*?)</div>',
        text,
        flags=re.S,
    )
    return {label.strip(): re.sub(r"<[^>]+>", " ", value).strip() for label, value in found}


def _csv_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# the asset rows on site-local days, computed here in SQL (PostgreSQL's own time zone rules), apart
# from the reports' polars code: sessions by the local date of their start, energy by the local
# date of each load-curve interval, CO2 of each UTC site-day shared by the energy in the local days
LOCAL_SESSIONS = """
SELECT count(*) FROM analytics.sessions x LEFT JOIN site s USING (site_id)
WHERE (x.start_ts AT TIME ZONE coalesce(s.timezone, 'UTC'))::date BETWEEN %s AND %s"""
LOCAL_ENERGY = """
SELECT coalesce(sum(l.energy_kwh), 0) FROM analytics.load_curve l LEFT JOIN site s USING (site_id)
WHERE (l.interval_start AT TIME ZONE coalesce(s.timezone, 'UTC'))::date BETWEEN %s AND %s"""
LOCAL_SAVED_KG = """
WITH cells AS (
    SELECT l.day, l.site_id, l.energy_kwh,
           (l.interval_start AT TIME ZONE coalesce(s.timezone, 'UTC'))::date
               BETWEEN %s AND %s AS inside
    FROM analytics.load_curve l LEFT JOIN site s USING (site_id)),
shares AS (
    SELECT day, site_id, coalesce(sum(energy_kwh) FILTER (WHERE inside), 0) AS e_in,
           sum(energy_kwh) AS e, count(*) FILTER (WHERE inside) AS n_in, count(*) AS n
    FROM cells GROUP BY 1, 2)
SELECT coalesce(sum(m.net_saving_g
           * CASE WHEN sh.e > 0 THEN sh.e_in / sh.e ELSE sh.n_in::float8 / sh.n END), 0) / 1000
FROM analytics.emissions_site_day m JOIN shares sh USING (day, site_id)"""


def compare(
    url: str, reports: Path, first: date, last: date, dashboard_day: date | None = None
) -> list[str]:
    """Every figure of the written files for the days first..last against the asset tables;
    `dashboard_day` is the daily dashboard's day (default `last`)."""
    problems: list[str] = []
    with psycopg.connect(url) as conn:

        def q(sql: str, *params):
            return conn.execute(sql, params).fetchone()[0]

        quarters = sorted(
            {quarter_start(first + timedelta(days=i)) for i in range((last - first).days + 1)}
        )
        for qs in quarters:
            label = quarter_label(qs.isoformat())
            qe = date(qs.year + (qs.month + 2) // 12, (qs.month + 2) % 12 + 1, 1)
            qlast = qe - timedelta(days=1)
            folder = reports / label
            kpis = compliance_kpis(folder / f"compliance_{label}.html")
            expected = {  # each site's local days of the quarter
                "energy delivered": float(q(LOCAL_ENERGY, qs, qlast)),
                "charging sessions": float(q(LOCAL_SESSIONS, qs, qlast)),
                "net emissions saved": float(q(LOCAL_SAVED_KG, qs, qlast)),
            }  # fmt: skip
            for key, want in expected.items():
                got = next((v for k, v in kpis.items() if k.startswith(key)), None)
                if got is None or abs(got - want) > 0.051:
                    problems.append(f"compliance {label} {key}: file {got}, assets {want:.3f}")
            # EV-ChART module 2: one row per finished session of a port, its kWh
            m2 = folder / f"evchart_module2_{label}.csv"
            if m2.is_file():
                rows = [r for r in _csv_rows(m2) if r.get("session_id")]
                n = q(
                    """SELECT count(*) FROM analytics.sessions WHERE day BETWEEN %s AND %s
                       AND end_ts IS NOT NULL AND connector_id > 0
                       AND (energy_wh IS NULL OR energy_wh <> 'Infinity')""",
                    qs, qlast,
                )  # fmt: skip
                if len(rows) != n:
                    problems.append(f"EV-ChART module 2 {label}: {len(rows)} rows, {n} sessions")
                kwh = sum(float(r["energy_kwh"] or 0) for r in rows)
                want = float(
                    q(
                        """SELECT coalesce(sum(greatest(coalesce(energy_wh, 0), 0)), 0) / 1000
                           FROM analytics.sessions WHERE day BETWEEN %s AND %s
                           AND end_ts IS NOT NULL AND connector_id > 0""",
                        qs,
                        qlast,
                    )  # fmt: skip
                )
                if abs(kwh - want) > 0.005 * max(len(rows), 1) + 1e-9:
                    problems.append(f"EV-ChART module 2 {label}: {kwh:.2f} kWh, assets {want:.3f}")
            else:
                problems.append(f"EV-ChART module 2 {label}: no file {m2}")
        for year in sorted({first.year, last.year}):
            path = reports / str(year) / f"uk_reliability_{year}.csv"
            rows = _csv_rows(path)
            n = q(
                """SELECT count(DISTINCT u.charge_point_id) FROM analytics.uk_reliability_daily u
                   JOIN site s USING (site_id) WHERE s.country = 'GB'
                   AND u.day BETWEEN %s AND %s""",
                date(year, 1, 1), date(year, 12, 31),
            )  # fmt: skip
            if len(rows) != n:
                problems.append(
                    f"UK {year}: {len(rows)} charge points in the CSV, {n} in the assets"
                )
        # the network's daily dashboard: its headline against the asset rows of each site's
        # local day (payment exceptions: the UTC day)
        d = dashboard_day or last
        pages = sorted((reports / d.isoformat() / "dashboard").glob("operator-*/dashboard.html"))
        if not pages:
            problems.append(f"dashboard {d}: no network dashboard written")
        for page in pages[:1]:
            kpis = dashboard_kpis(page)
            expected = {
                "Sessions": float(q(LOCAL_SESSIONS, d, d)),
                "Energy": float(q(LOCAL_ENERGY, d, d)),
                "CO2 saved": float(q(LOCAL_SAVED_KG, d, d)),
                "Payment exceptions": float(q("SELECT count(*) FROM analytics.reconciliation_lines WHERE day = %s AND category <> 'matched'", d)),
            }  # fmt: skip
            for key, want in expected.items():
                got = _number(kpis.get(key, ""))
                if got is None or abs(got - want) > 0.5 + 1e-9:
                    problems.append(
                        f"dashboard {d} {key}: page {kpis.get(key)!r}, assets {want:.3f}"
                    )
        day = first
        while day <= last:
            path = reports / day.isoformat() / "reconciliation_exceptions.csv"
            n = q(
                "SELECT count(*) FROM analytics.reconciliation_lines WHERE day = %s AND category <> 'matched'",
                day,
            )
            got = len(_csv_rows(path)) if path.is_file() else None
            if got != n:
                problems.append(f"exceptions {day}: {got} rows in the CSV, {n} in the assets")
            day += timedelta(days=1)
    return problems
