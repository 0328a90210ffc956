"""The operator dashboard end to end on PostgreSQL: figures against hand-computed values, mail
through a real SMTP server (aiosmtpd) parsed back as a mail client would, both HTML forms opened in
headless Chromium (Debian's, driven by Playwright) with screenshots kept as test artifacts, the CLI,
and the Dagster assets and schedules.

The fixture day is Tue 2026-11-24 against Mon 2026-11-23, two sites, one of them named
`<script>alert(1)</script>`, one charger id with an ampersand; every asset the dashboard reads
recorded 'ok' for both days in analytics.partition_status, as the daily assets do (`record`)."""

from __future__ import annotations

import base64
import email
import email.policy
import html as html_lib
import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import polars as pl
import psycopg
import pytest

from chargeops import completeness
from chargeops.cli import main
from chargeops.periods import day_period, iso_week, parse_period, previous
from models import artifacts
from reports import dashboard, dashboard_charts
from reports import dashboard_data as dd
from reports.browser import find_chromium
from reports.mail import SmtpConfig, cid_references
from reports.recipients import Audience
from tests.smtp import Collector, smtp_server

# browsers, plotly and mail around simple reads: CI runs these once (marker `once`)
pytestmark = pytest.mark.once

EVIL = "<script>alert(1)</script>"
CP2 = "CP&2"
DAY = "2026-11-24"
ARTIFACTS = Path(
    os.environ.get("CHARGEOPS_TEST_ARTIFACTS")
    or Path(__file__).resolve().parent.parent / "test-artifacts"
)
RECIPIENTS = """
operators:
  - name: Acme Charging
    sites: all
    to: [ops@example.com, "Night Desk <night@example.com>"]
sites:
  S2:
    to: [manager@example.com]
"""


# every asset whose days the dashboard checks: its figures' and both at-risk lists'
ASSETS = (*dd.FIGURE_ASSETS, dd.MODEL_ASSET, dd.BASELINE_ASSET)
NETWORK = Audience("operator-acme", "Acme Charging", "operator", None, ())


def record(conn, first: str, last: str, assets=ASSETS, status: str = "ok", detail: str = ""):
    """analytics.partition_status rows for `assets` over `first..last`, as the assets write them."""
    day, end = date.fromisoformat(first), date.fromisoformat(last)
    while day <= end:
        for asset in assets:
            conn.execute(
                "INSERT INTO analytics.partition_status (asset, day, status, detail) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (asset, day) DO UPDATE "
                "SET status = excluded.status, detail = excluded.detail",
                (asset, day, status, detail),
            )
        day += timedelta(days=1)


def card(beats: bool | None, model: float = 0.412, baseline: float = 0.257) -> dict:
    """A model card as `models.artifacts.build_card` writes it, the parts the dashboard reads."""
    pr = {"model": {"pr_auc": model}, "baseline": {"pr_auc": baseline}}
    return {"beats_baseline": beats, "metrics": pr, "notes": []}


def store(root: Path, beats: bool | None) -> Path:
    """A model store holding one version with `card(beats)`, written by `artifacts.save`."""
    artifacts.save(SimpleNamespace(), card(beats), root)
    return root


def text_of(page: str) -> str:
    """What a reader sees of an HTML page: the text without tags, whitespace collapsed."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def email_text(d: dashboard.Dashboard) -> str:
    return text_of(d.email_html(lambda n: f"charts/{n}.png"))


def seed(conn) -> None:
    """Two sites over two days; the comments give what the dashboard must show."""
    conn.execute(
        "INSERT INTO site (site_id, name, timezone) VALUES "
        "('S1', 'Riverside Depot', 'UTC'), ('S2', %s, 'UTC')",
        (EVIL,),
    )
    conn.execute(
        "INSERT INTO charge_point (charge_point_id, site_id, model) VALUES "
        "('CP-1', 'S1', 'RTM75'), (%s, 'S2', 'HYC300')",
        (CP2,),
    )
    # sessions 15 vs 10 (+50 %), counted in analytics.sessions; energy 150 vs 100 kWh (+50 %)
    for day, site, cp, n in [
        ("2026-11-24", "S1", "CP-1", 10), ("2026-11-24", "S2", CP2, 5),
        ("2026-11-23", "S1", "CP-1", 8), ("2026-11-23", "S2", CP2, 2),
    ]:  # fmt: skip
        conn.execute(
            "INSERT INTO analytics.sessions (day, session_id, charge_point_id, transaction_id, "
            "site_id, evse_id, connector_id) SELECT %(day)s::date, "
            "%(site)s || ':' || %(day)s::text || ':' || i, "
            "%(cp)s, i::text, %(site)s, 1, 1 FROM generate_series(1, %(n)s) AS i",
            {"day": day, "site": site, "cp": cp, "n": n},
        )
    conn.execute(
        "INSERT INTO analytics.energy_site_day (day, site_id, energy_kwh, sessions) VALUES "
        "('2026-11-24', 'S1', 100, 10), ('2026-11-24', 'S2', 50, 5), "
        "('2026-11-23', 'S1', 80, 8), ('2026-11-23', 'S2', 20, 2)"
    )
    # ... from the 15-minute load curve (one interval at noon carries the day's energy)
    conn.execute(
        "INSERT INTO analytics.load_curve (day, site_id, interval_start, energy_kwh, mean_kw) "
        "SELECT day, site_id, day + time '12:00' AT TIME ZONE 'UTC', energy_kwh, 4 * energy_kwh "
        "FROM analytics.energy_site_day"
    )
    # utilisation 18 / 72 = 25 % vs 12 / 72: connector-hours (S1 two connectors, S2 one), the
    # first `occupied` hours of each connector occupied (50 min charging, 10 min suspended)
    for day, site, cp, connectors, occupied in [
        ("2026-11-24", "S1", "CP-1", 2, 6), ("2026-11-24", "S2", CP2, 1, 6),
        ("2026-11-23", "S1", "CP-1", 2, 3), ("2026-11-23", "S2", CP2, 1, 6),
    ]:  # fmt: skip
        conn.execute(
            "INSERT INTO analytics.utilisation_hourly (day, hour_ts, charge_point_id, evse_id, "
            "connector_id, site_id, minutes_available, minutes_charging, minutes_suspended, "
            "minutes_occupied_other) SELECT %(day)s::date, "
            "(%(day)s::date + make_interval(hours => h)) AT TIME ZONE 'UTC', %(cp)s, 1, c, "
            "%(site)s, CASE WHEN h < %(occ)s THEN 0 ELSE 60 END, "
            "CASE WHEN h < %(occ)s THEN 50 ELSE 0 END, CASE WHEN h < %(occ)s THEN 10 ELSE 0 END, "
            "0 FROM generate_series(0, 23) AS h, generate_series(1, %(n)s) AS c",
            {"day": day, "site": site, "cp": cp, "n": connectors, "occ": occupied},
        )
    # Tuesday (weekday 2) 09:00 half occupied
    conn.execute(
        "INSERT INTO analytics.peak_usage (day, site_id, local_weekday, local_hour, "
        "connector_hours, occupied_hours, charging_hours, energy_kwh, sessions_started) VALUES "
        "('2026-11-24', 'S1', 2, 9, 2, 1, 1, 10, 1), ('2026-11-24', 'S2', 2, 9, 1, 0.5, 0.5, 5, 1)"
    )
    # uptime: CP&2 down 120 of 1,440 min -> 91.67 %; network (2880 - 120) / 2880 = 95.83 %
    conn.execute(
        "INSERT INTO analytics.uptime_daily (day, charge_point_id, evse_id, connector_id, site_id, "
        "minutes_in_period, outage_minutes, excluded_minutes) VALUES "
        "('2026-11-24', 'CP-1', 1, 1, 'S1', 1440, 0, 0), ('2026-11-24', %(cp2)s, 1, 1, 'S2', 1440, 120, 0), "
        "('2026-11-23', 'CP-1', 1, 1, 'S1', 1440, 0, 0), ('2026-11-23', %(cp2)s, 1, 1, 'S2', 1440, 0, 0)",
        {"cp2": CP2},
    )
    conn.execute(
        "INSERT INTO analytics.outages (day, charge_point_id, evse_id, connector_id, site_id, "
        "start_ts, end_ts, duration_min, cause, excluded) VALUES ('2026-11-24', %s, 1, 1, 'S2', "
        "'2026-11-24 08:00+00', '2026-11-24 10:00+00', 120, 'faulted', false)",
        (CP2,),
    )
    # revenue EUR: expected 15.00, captured 10.00; one missing payment of 5.00 at S2
    conn.execute(
        "INSERT INTO analytics.expected_revenue (day, session_id, charge_point_id, site_id, "
        "tariff_id, currency, minor_unit_exponent, gross_amount) VALUES "
        "('2026-11-24', 's1', 'CP-1', 'S1', 't', 'EUR', 2, 1000), "
        "('2026-11-24', 's2', %s, 'S2', 't', 'EUR', 2, 500)",
        (CP2,),
    )
    zeros = "0, 0, 0, 0, 0, 0, 0"
    conn.execute(
        "INSERT INTO analytics.reconciliation_site_day (day, site_id, currency, sessions, "
        "expected_gross, captured, refunded, disputed, fees, net, bt_net, paid_out, "
        "settled_elsewhere, n_matched, n_amount_mismatch, n_missing_payment, n_orphan_payment, "
        "n_duplicate_payment, n_refunded, n_partially_refunded, n_disputed, n_failed) VALUES "
        f"('2026-11-24', 'S1', 'EUR', 1, 1000, 1000, 0, 0, 59, 941, 941, 0, 0, 1, {zeros}, 0), "
        f"('2026-11-24', 'S2', 'EUR', 1, 500, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, {zeros[3:]})"
    )
    conn.execute(
        "INSERT INTO analytics.reconciliation_lines (day, line_key, session_id, site_id, "
        "currency, minor_unit_exponent, expected_gross, captured, refunded, disputed, fees, net, "
        "bt_net, paid_out, payment_intent_ids, payments, captured_payments, settled_elsewhere, "
        "category, reason) VALUES ('2026-11-24', 's2', 's2', 'S2', 'EUR', 2, 500, 0, 0, 0, 0, "
        "0, 0, 0, '', 0, 0, 0, 'missing_payment', 'no payment names this session')"
    )
    # 75 kg CO2 saved
    conn.execute(
        "INSERT INTO analytics.emissions_site_day (day, site_id, net_saving_g) VALUES "
        "('2026-11-24', 'S1', 50000), ('2026-11-24', 'S2', 25000)"
    )
    conn.execute(
        "INSERT INTO analytics.maintenance_scores (day, charge_point_id, evse_id, connector_id, "
        "model, risk, score_source, rank, at_risk, top_features) VALUES "
        "('2026-11-24', %s, 1, 1, 'HYC300', 0.6, 'model', 1, true, "
        """'[{"feature": "faults_7d", "value": 3, "contribution": 0.2}]'), """
        "('2026-11-24', 'CP-1', 1, 1, 'RTM75', 0.05, 'model', 2, false, '[]')",
        (CP2,),
    )
    record(conn, "2026-11-23", "2026-11-24")


@pytest.fixture
def seeded(db, database_url: str) -> str:
    seed(db)
    return database_url


@pytest.fixture
def recipients_file(tmp_path: Path) -> Path:
    path = tmp_path / "recipients.yaml"
    path.write_text(RECIPIENTS)
    return path


@pytest.fixture
def smtp():
    handler = Collector()
    with smtp_server(handler) as controller:
        yield handler, SmtpConfig(
            host="127.0.0.1", port=controller.port, security="none",
            sender="Acme dashboards <dashboard@acme.example>",
        )  # fmt: skip


def audiences(path: Path):
    from reports import recipients

    return recipients.load(path, {"S1": "Riverside Depot", "S2": EVIL})


# -- periods and figures --------------------------------------------------------------------------
def test_day_and_week_periods_and_the_one_before():
    assert parse_period("2026-11-24") == day_period(datetime(2026, 11, 24).date())
    week = parse_period("2026-W47")
    assert (week.start.isoformat(), week.end.isoformat(), week.kind) == (
        "2026-11-16", "2026-11-22", "week",
    )  # fmt: skip
    assert iso_week(datetime(2026, 11, 22).date()) == week
    assert previous(week).label == "2026-W46"
    assert previous(parse_period("2026-W01")).label == "2025-W52"
    assert previous(parse_period("2026-03")).label == "2026-02"
    assert previous(parse_period("2026Q1")).label == "2025Q4"
    r = previous(parse_period("2026-07-01..2026-07-10"))
    assert (str(r.start), str(r.end)) == ("2026-06-21", "2026-06-30")
    with pytest.raises(ValueError):
        parse_period("2026-W60")


def test_figures_match_hand_computed_values(seeded: str):
    data = dd.read(seeded, parse_period(DAY), card(True))
    net = dashboard.context(data, Audience("n", "Net", "operator", None, ()), datetime.now(UTC))
    h = net["headline"]
    assert (h["sessions"]["value"], h["sessions"]["previous"]) == (15, 10)
    assert h["sessions"]["change_pct"] == pytest.approx(50.0)
    assert h["energy_kwh"]["value"] == pytest.approx(150.0)
    assert h["utilisation_pct"]["value"] == pytest.approx(25.0)
    assert h["uptime_pct"]["value"] == pytest.approx(100 * 2760 / 2880)
    assert h["uptime_pct"]["tone"] == "bad"  # down from 100 %
    assert h["outages"]["value"] == 1 and h["outages"]["tone"] == "bad"
    assert h["saved_kg"]["value"] == pytest.approx(75.0)
    assert h["exceptions"]["value"] == 1
    [eur] = net["revenue"]
    assert (eur["expected_gross"]["value"], eur["captured"]["value"]) == (1500, 1000)
    assert eur["exceptions"]["value"] == 1
    [port] = net["ports_below"]
    assert (port["charge_point_id"], port["site_name"]) == (CP2, EVIL)
    assert port["uptime_pct"] == pytest.approx(100 * 1320 / 1440)
    assert net["at_risk"]["count"] == 1 and net["at_risk"]["source"] == "model"
    assert net["at_risk"]["rows"][0]["signals"] == ["faults_7d"]
    assert net["incomplete"] == [] and all(v == "complete" for v in net["status"].values())
    assert net["exceptions"]["by_category"] == [{"category": "missing_payment", "lines": 1}]
    by_site = {s["site_id"]: s for s in net["sites"]}
    assert by_site["S2"]["below_target"] and not by_site["S1"]["below_target"]
    assert by_site["S1"]["energy"]["change_pct"] == pytest.approx(25.0)

    # one site's dashboard sees only that site
    site = dashboard.context(
        dd.scoped(data, ("S1",)), Audience("s", "S1", "site", ("S1",), ()), datetime.now(UTC)
    )
    assert site["headline"]["sessions"]["value"] == 10
    assert site["headline"]["uptime_pct"]["value"] == pytest.approx(100.0)
    assert site["ports_below"] == [] and site["at_risk"]["count"] == 0
    assert site["exceptions"]["count"] == 0

    cells = dd.heatmap(data)
    assert cells.height == 7 * 24
    tue9 = cells.filter((cells["local_weekday"] == 2) & (cells["local_hour"] == 9))
    assert tue9["occupancy_pct"][0] == pytest.approx(50.0)


# -- incomplete data ------------------------------------------------------------------------------
FAILED = ("energy", "peak_usage", "expected_revenue", "emissions", "reconciliation")
WHY = "blocking check energy_register_steps failed"


def fail_day(conn, day: str = DAY) -> None:
    """`day` as a failed energy run leaves it: sessions there, the assets after energy failed
    (refusing their upstream) with no rows, the others ok."""
    for table in (
        "energy_site_day", "load_curve", "peak_usage", "expected_revenue", "emissions_site_day",
        "reconciliation_site_day", "reconciliation_lines",
    ):  # fmt: skip
        conn.execute(f"DELETE FROM analytics.{table} WHERE day = %s", (day,))
    record(conn, day, day, ("energy",), "failed", WHY)
    record(conn, day, day, FAILED[1:], "failed", f"upstream energy failed for {day}")


def test_a_failed_day_is_named_and_never_shown_as_zero(seeded, db, tmp_path):
    """Energy failed on the day: the sessions are still counted (from analytics.sessions), the
    figures of the failed assets are `–`, not 0, and a banner, the subject, the plain text and
    the asset's metadata name the day and the assets; the charts leave the day blank."""
    from pipelines.defs.dashboard import assets as dashboard_asset
    from pipelines.resources import (
        DashboardResource,
        DatabaseResource,
        ModelStoreResource,
        ReportsResource,
        SmtpResource,
    )  # fmt: skip

    fail_day(db)
    data = dd.read(seeded, parse_period(DAY))
    found = completeness.gaps(seeded, data.prev.start, data.period.end, dd.FIGURE_ASSETS)
    expected_lines = completeness.lines(found)
    assert [line.split(":")[0] for line in expected_lines] == list(
        sorted(FAILED, key=dd.FIGURE_ASSETS.index)
    )
    assert expected_lines[0].startswith("energy: failed on 2026-11-24 (blocking check")

    d = dashboard.build(data, NETWORK, datetime.now(UTC))
    h = d.context["headline"]
    assert h["sessions"]["value"] == 15 and h["sessions"]["change_pct"] == pytest.approx(50.0)
    for k in ("energy_kwh", "saved_kg", "exceptions"):
        assert h[k]["value"] is None and h[k]["status"] == "missing" and h[k]["change_pct"] is None
    assert h["uptime_pct"]["status"] == "complete"  # uptime ran: its figure stands
    assert d.context["incomplete"] == expected_lines
    assert d.subject.startswith("[incomplete] Acme Charging – daily dashboard")
    assert "15 sessions, – kWh" in d.subject

    body = email_text(d)
    assert body.index("Incomplete data") < body.index("Sessions")  # at the top
    for line in expected_lines:
        assert line in body
    assert "Sessions 15" in body and "Energy – not computed" in body
    for wrong in ("Energy 0 kWh", "CO2 saved 0 kg", "0 kg CO2 saved",
                  "Every payment matches its session", "No priced sessions"):  # fmt: skip
        assert wrong not in body, wrong
    assert "CO2 saved – not computed" in body and "Payment exceptions – not computed" in body
    assert "Riverside Depot 10 – not computed" in body  # the site row: sessions, no kWh
    assert "Payments were not reconciled for this period" in body
    assert "CO2 savings were not computed for this period" in body
    interactive = text_of(d.interactive_html)
    assert "Incomplete data" in interactive and expected_lines[0] in interactive

    plain = d.text()
    assert "INCOMPLETE DATA" in plain and expected_lines[0] in plain
    assert "Sessions: 15\n" in plain and "Energy: – (not computed)" in plain
    assert "CO2 saved: – (not computed)" in plain

    # the trend charts leave the failed day blank, not 0; the day before is there
    series = dd.daily_series(data).filter(pl.col("day") >= date(2026, 11, 23))
    assert series.select("sessions", "energy_kwh", "saved_kg").rows() == [
        (10, 100.0, 0.0), (15, None, None),
    ]  # fmt: skip
    assert "blank days: not computed" in d.figures["trend"].layout.title.text

    # two days, the second failed: energy is the first day's, marked, and not compared
    two = dd.read(seeded, parse_period("2026-11-23..2026-11-24"))
    energy = dd.headline(two)["energy_kwh"]
    assert (energy["value"], energy["status"], energy["change_pct"]) == (100.0, "partial", None)
    two_body = email_text(dashboard.build(two, NETWORK, datetime.now(UTC)))
    assert "Energy 100 kWh incomplete" in two_body

    # the Dagster asset: the banner's lines in its metadata, no 0 for the missing energy
    result = dg.materialize(
        [dashboard_asset.operator_dashboard_daily], partition_key=DAY,
        resources={
            "database": DatabaseResource(url=seeded),
            "reports": ReportsResource(directory=str(tmp_path)),
            "smtp": SmtpResource(),
            "dashboard_recipients": DashboardResource(),
            "model_store": ModelStoreResource(directory=str(tmp_path / "models")),
        },
        run_config={"ops": {"operator_dashboard_daily": {"config": {"send": False}}}},
    )  # fmt: skip
    [mat] = result.asset_materializations_for_node("operator_dashboard_daily")
    assert mat.metadata["incomplete"].value == expected_lines
    assert mat.metadata["sessions"].value == 15 and mat.metadata["energy_kwh"].value is None
    folder = tmp_path / DAY / "dashboard" / "operator-chargeops-network"
    assert "Incomplete data" in text_of((folder / "dashboard.html").read_text())
    msg = email.message_from_bytes(
        (folder / "dashboard.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["Subject"].startswith("[incomplete] ")


def test_a_complete_day_has_no_banner(seeded, db):
    d = dashboard.build(dd.read(seeded, parse_period(DAY)), NETWORK, datetime.now(UTC))
    assert d.context["incomplete"] == [] and not d.subject.startswith("[incomplete]")
    body = email_text(d)
    assert "Incomplete data" not in body and "not computed" not in body
    assert "incomplete" not in body.lower() and "INCOMPLETE" not in d.text()
    assert "Every payment matches its session" not in body  # one missing payment, listed
    assert "1 reconciliation exception" in body

    # without any recorded day nothing is known to be there: every figure is missing
    db.execute("TRUNCATE analytics.partition_status")
    bare = dashboard.context(dd.read(seeded, parse_period(DAY)), NETWORK, datetime.now(UTC))
    assert bare["headline"]["sessions"]["value"] is None and bare["incomplete"]


# -- currencies, outages, the uptime axis ---------------------------------------------------------
def test_exceptions_add_up_over_currencies_and_each_currency_is_shown(seeded, db):
    """A GBP site day with two mismatches beside the EUR one: the tile counts 3, as the site rows
    and the exceptions list do; the captured tile has a line per currency."""
    zeros = "0, 0, 0, 0, 0"
    db.execute(
        "INSERT INTO analytics.reconciliation_site_day (day, site_id, currency, sessions, "
        "expected_gross, captured, refunded, disputed, fees, net, bt_net, paid_out, "
        "settled_elsewhere, n_matched, n_amount_mismatch, n_missing_payment, n_orphan_payment, "
        "n_duplicate_payment, n_refunded, n_partially_refunded, n_disputed, n_failed) VALUES "
        f"('2026-11-24', 'S1', 'GBP', 2, 4000, 3500, 0, 0, 0, 3500, 3500, 0, 0, 0, 2, 0, {zeros}, 0)"
    )
    for key, captured in (("g1", 1500), ("g2", 2000)):
        db.execute(
            "INSERT INTO analytics.reconciliation_lines (day, line_key, session_id, site_id, "
            "currency, minor_unit_exponent, expected_gross, captured, refunded, disputed, fees, "
            "net, bt_net, paid_out, payment_intent_ids, payments, captured_payments, "
            "settled_elsewhere, category, reason) VALUES ('2026-11-24', %s, %s, 'S1', 'GBP', 2, "
            "2000, %s, 0, 0, 0, 0, 0, 0, '', 1, 1, 0, 'amount_mismatch', 'differs')",
            (key, key, captured),
        )
    d = dashboard.build(dd.read(seeded, parse_period(DAY)), NETWORK, datetime.now(UTC))
    c = d.context
    assert c["headline"]["exceptions"]["value"] == 3
    assert sum(s["exceptions"] for s in c["sites"]) == 3 == c["exceptions"]["count"]
    assert [(r["currency"], r["captured"]["value"]) for r in c["revenue"]] == [
        ("EUR", 1000), ("GBP", 3500),
    ]  # fmt: skip
    page = dashboard.render(c, mode="email", image_src=lambda n: n)
    tile = re.search(r'kpi-label">Captured</div>(.*?)</td>', page, re.S)[1]
    assert "10.00 EUR" in tile and "35.00 GBP" in tile
    exc = re.search(r'kpi-label">Payment exceptions</div>(.*?)</td>', page, re.S)[1]
    assert re.search(r'kpi-value">\s*3\s*<', exc)
    assert "Payment exceptions: 3" in d.text()


def test_longest_outages_rank_counted_minutes_and_list_excluded_apart(seeded, db):
    db.execute(
        "INSERT INTO analytics.outages (day, charge_point_id, evse_id, connector_id, site_id, "
        "start_ts, end_ts, duration_min, cause, excluded) VALUES "
        "('2026-11-24', 'CP-1', 1, 1, 'S1', '2026-11-24 01:00+00', '2026-11-24 11:00+00', 600, "
        "'unavailable', true), "
        "('2026-11-24', 'CP-1', 1, 1, 'S1', '2026-11-24 12:00+00', '2026-11-24 17:00+00', 300, "
        "'faulted', false)"
    )
    d = dashboard.build(dd.read(seeded, parse_period(DAY)), NETWORK, datetime.now(UTC))
    o = d.context["outages"]
    assert [r["duration_min"] for r in o["longest"]] == [300, 120]
    assert [r["duration_min"] for r in o["excluded_rows"]] == [600]
    assert (o["count"], o["excluded"], o["hours"]) == (2, 1, pytest.approx(7.0))
    assert d.context["headline"]["outages"]["value"] == 2
    assert d.context["headline"]["outage_hours"]["value"] == pytest.approx(7.0)
    body = email_text(d)
    counted = body.index("Longest outages (counted)")
    apart = body.index("Excluded outages (not counted)")
    assert counted < body.index("300", counted) < body.index("120", counted) < apart
    assert "600" not in body[counted:apart] and "600" in body[apart:]


def test_uptime_axis_starts_at_zero_and_says_so(seeded):
    data = dd.read(seeded, parse_period(DAY))
    fig = dashboard_charts.build(data, dd.sites(data), ["EUR"])["uptime"]
    assert fig.layout.yaxis.range[0] == 0
    assert "axis from 0" in fig.layout.yaxis.title.text
    assert [round(v, 1) for v in fig.data[0].y] == [91.7, 100.0]


# -- at-risk connectors ---------------------------------------------------------------------------
def features(conn) -> None:
    """Maintenance features of the day: CP&2 had 5 faults in 7 days, CP-1 2, CP-1/2 none."""
    conn.execute(
        "INSERT INTO analytics.maintenance_features (day, charge_point_id, evse_id, connector_id, "
        "faults_7d, model) VALUES ('2026-11-24', 'CP-1', 1, 1, 2, 'RTM75'), "
        "('2026-11-24', %s, 1, 1, 5, 'HYC300'), ('2026-11-24', 'CP-1', 2, 1, 0, 'RTM75'), "
        "('2026-11-23', 'CP-1', 1, 1, 9, 'RTM75')",
        (CP2,),
    )


@pytest.mark.parametrize("verdict", [False, None, "no card"])
def test_at_risk_is_the_baseline_rule_unless_the_model_beats_it(seeded, db, verdict):
    features(db)
    model_card = None if verdict == "no card" else card(verdict, model=0.257, baseline=0.257)
    d = dashboard.build(dd.read(seeded, parse_period(DAY), model_card), NETWORK, datetime.now(UTC))
    risk = d.context["at_risk"]
    assert risk["source"] == "baseline" and risk["day"] == date(2026, 11, 24)
    assert [(r["charge_point_id"], r["faults_7d"]) for r in risk["rows"]] == [(CP2, 5), ("CP-1", 2)]
    assert [r["rank"] for r in risk["rows"]] == [1, 2]
    why = {
        False: "the model does not beat the fault-count baseline on held-out data "
        "(PR-AUC 0.257 vs 0.257), so this list is the baseline rule: faults in the last 7 days",
        None: "the model could not be evaluated against the fault-count baseline on held-out "
        "data, so this list is the baseline rule: faults in the last 7 days",
        "no card": "no maintenance model has been trained yet, so this list is the baseline "
        "rule: faults in the last 7 days",
    }[verdict]
    assert risk["why"] == why
    body = email_text(d)
    assert why in body and "2 connectors with faults in the last 7 days" in body
    assert "likely to have an outage" not in body and "60%" not in body  # the model's row
    assert why in d.text()


def test_at_risk_is_the_models_list_while_it_beats_the_baseline(seeded, db):
    features(db)
    d = dashboard.build(dd.read(seeded, parse_period(DAY), card(True)), NETWORK, datetime.now(UTC))
    risk = d.context["at_risk"]
    assert risk["source"] == "model" and [r["charge_point_id"] for r in risk["rows"]] == [CP2]
    body = email_text(d)
    assert "1 connector likely to have an outage in the next 7 days" in body
    assert "the model beats the fault-count baseline on held-out data (PR-AUC 0.412" in body
    assert "faults in the last 7 days (maintenance features" not in body
    # the scores of the period's end missing: the list says it is older, the banner names it
    db.execute("UPDATE analytics.partition_status SET status = 'failed' WHERE asset = %s "
               "AND day = %s", (dd.MODEL_ASSET, DAY))  # fmt: skip
    d = dashboard.build(dd.read(seeded, parse_period(DAY), card(True)), NETWORK, datetime.now(UTC))
    assert d.context["at_risk"]["missing"]
    assert d.context["incomplete"] == ["maintenance_scores: failed on 2026-11-24"]
    assert "maintenance_scores was not computed for 2026-11-24" in email_text(d)


# -- mail -----------------------------------------------------------------------------------------
def _parts(msg) -> list[str]:
    return [p.get_content_type() for p in msg.walk()]


def test_dashboards_are_mailed_whole_and_once(seeded, tmp_path, recipients_file, smtp):
    handler, config = smtp
    results = dashboard.run(
        seeded, tmp_path / "reports", DAY, audiences(recipients_file), smtp=config
    )
    assert [r.status for r in results] == ["sent", "sent"]
    assert len(handler.received) == 2
    by_rcpt = {tuple(sorted(rcpts)): raw for _, rcpts, raw in handler.received}
    operator = email.message_from_bytes(
        by_rcpt[("night@example.com", "ops@example.com")], policy=email.policy.default
    )
    site = email.message_from_bytes(by_rcpt[("manager@example.com",)], policy=email.policy.default)

    for msg in (operator, site):
        assert _parts(msg)[:5] == [
            "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related",
            "text/html",
        ]  # fmt: skip
        related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
        html = related.get_body(("html",)).get_content()
        images = {
            p["Content-ID"].strip("<>"): p.get_content()
            for p in related.iter_parts()
            if p.get_content_type() == "image/png"
        }
        refs = cid_references(html)
        assert refs and set(refs) == set(images), "every cid: resolves, every image is used"
        assert all(png.startswith(b"\x89PNG") and len(png) > 5000 for png in images.values())
        [attachment] = list(msg.iter_attachments())
        assert attachment.get_filename() == "dashboard.html"
        assert "Plotly.newPlot" in attachment.get_content()
        assert "daily dashboard Tue 24 Nov 2026" in msg["Subject"]

    assert operator["Subject"].startswith("Acme Charging – daily dashboard Tue 24 Nov 2026: ")
    assert "15 sessions, 150 kWh, uptime 95.8%" in operator["Subject"]
    assert site["Subject"].startswith(f"{EVIL} – daily dashboard")  # a header, not HTML
    assert site["To"] == "manager@example.com"
    assert operator["From"] == "Acme dashboards <dashboard@acme.example>"
    assert "5 sessions" in site["Subject"]

    # a re-run mails nobody twice; a resend does
    again = dashboard.run(
        seeded, tmp_path / "reports", DAY, audiences(recipients_file), smtp=config
    )
    assert [r.status for r in again] == ["already sent", "already sent"]
    assert len(handler.received) == 2
    dashboard.run(
        seeded, tmp_path / "reports", DAY, audiences(recipients_file)[1:], smtp=config,
        resend=True,
    )  # fmt: skip
    assert len(handler.received) == 3


# -- in a browser ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, url: str, width: int):
    """A page with every console error, page error and dialog recorded."""
    page = browser.new_page(viewport={"width": width, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)  # fmt: skip
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems


IMAGES_LOADED = "[...document.images].map(i => i.complete && i.naturalWidth > 0)"


def test_both_html_files_render_in_chromium(seeded, tmp_path, browser):
    """The email body (as files, and as the message carries it with cid: resolved the way a mail
    client does) and the interactive attachment; screenshots go to test-artifacts/."""
    [net] = dashboard.run(
        seeded, tmp_path, DAY, [Audience("operator-acme", "Acme Charging", "operator", None, ())]
    )
    charts = sorted(p.stem for p in (net.folder / "charts").glob("*.png"))
    assert charts == ["emissions", "heatmap", "revenue_eur", "sites", "trend", "uptime"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # 1. the email body with its images beside it
    page, problems = open_page(browser, (net.folder / "email.html").as_uri(), 720)
    assert page.evaluate(IMAGES_LOADED) == [True] * len(charts)
    assert EVIL in page.inner_text("body")  # shown as text ...
    assert page.locator("script").count() == 0  # ... never as a script
    page.screenshot(path=ARTIFACTS / "dashboard_email.png", full_page=True)
    assert problems == []
    page.close()

    # 2. the body as sent: cid: parts turned into data: URIs, as a mail client resolves them
    msg = email.message_from_bytes(
        (net.folder / "dashboard.eml").read_bytes(), policy=email.policy.default
    )
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    body = related.get_body(("html",)).get_content()
    assert "<script" not in body.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert 'style="' in body and "<style" not in body  # styles inlined for mail clients
    for part in related.iter_parts():
        if part.get_content_type() == "image/png":
            data = base64.b64encode(part.get_content()).decode()
            body = body.replace(
                f"cid:{part['Content-ID'].strip('<>')}", f"data:image/png;base64,{data}"
            )
    sent = tmp_path / "as_sent.html"
    sent.write_text(body)
    page, problems = open_page(browser, sent.as_uri(), 720)
    assert page.evaluate(IMAGES_LOADED) == [True] * len(charts)
    page.screenshot(path=ARTIFACTS / "dashboard_email_as_sent.png", full_page=True)
    assert problems == []
    page.close()

    # 3. the interactive attachment: plotly draws every chart
    raw = (net.folder / "dashboard.html").read_text()
    assert EVIL not in raw  # escaped in the tables and in the charts' JSON
    page, problems = open_page(browser, (net.folder / "dashboard.html").as_uri(), 1100)
    page.wait_for_function(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(charts)}"
    )
    drawn = page.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')].map(d => ({
            id: d.id, svgs: d.querySelectorAll('.main-svg').length,
            marks: d.querySelectorAll('.bars path, .scatterlayer path, .hm image, .heatmaplayer image').length }))"""
    )
    assert sorted(d["id"] for d in drawn) == sorted(f"chart-{c}" for c in charts)
    assert all(d["svgs"] > 0 and d["marks"] > 0 for d in drawn), drawn
    assert EVIL in page.inner_text("body")
    page.screenshot(path=ARTIFACTS / "dashboard_interactive.png", full_page=True)
    assert problems == []
    page.close()
    for name in ("dashboard_email", "dashboard_email_as_sent", "dashboard_interactive"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 50_000
    # the folder's manifest lists what was written
    manifest = (net.folder.parent.parent / "manifest.json").read_text()
    assert "dashboard/operator-acme/dashboard.eml" in manifest


def test_an_empty_period_still_makes_a_dashboard(db, database_url, tmp_path):
    record(db, "2026-11-09", "2026-11-22")  # every asset ran, and found nothing
    [res] = dashboard.run(
        database_url, tmp_path, "2026-W47", [Audience("operator-x", "X", "operator", None, ())]
    )
    assert res.headline["sessions"] == 0 and res.headline["uptime_pct"] is None
    assert res.incomplete == [] and not res.subject.startswith("[incomplete]")
    html = (res.folder / "email.html").read_text()
    assert "No sites in this dashboard." in html and "16 Nov – 22 Nov 2026" in html


# -- command line ---------------------------------------------------------------------------------
def test_cli_dry_run_writes_files_and_sending_needs_smtp(
    seeded, tmp_path, recipients_file, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", seeded)
    monkeypatch.delenv("CHARGEOPS_SMTP_HOST", raising=False)
    out = tmp_path / "out"
    args = ["dashboard", "send", "--period", DAY, "--recipients", str(recipients_file)]
    assert main([*args, "--dry-run", "--out", str(out)]) == 0
    for key in ("operator-acme-charging", "site-s2"):
        folder = out / DAY / "dashboard" / key
        assert {p.name for p in folder.iterdir()} >= {
            "dashboard.eml", "email.html", "dashboard.html", "charts",
        }  # fmt: skip
    assert "operator-acme-charging (written" in capsys.readouterr().out

    assert main([*args, "--out", str(out)]) == 2
    assert "CHARGEOPS_SMTP_HOST is not set" in capsys.readouterr().err
    assert main([*args, "--dry-run", "--audience", "nobody"]) == 2
    assert "unknown audience nobody" in capsys.readouterr().err
    assert main(["dashboard", "send", "--period", "2026-W99", "--dry-run"]) == 2


def test_cli_sends_through_smtp_from_the_environment(
    seeded, tmp_path, recipients_file, monkeypatch, smtp
):
    handler, config = smtp
    monkeypatch.setenv("DATABASE_URL", seeded)
    monkeypatch.setenv("CHARGEOPS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CHARGEOPS_SMTP_PORT", str(config.port))
    monkeypatch.setenv("CHARGEOPS_SMTP_SECURITY", "none")
    monkeypatch.setenv("CHARGEOPS_DASHBOARD_RECIPIENTS", str(recipients_file))
    argv = ["dashboard", "send", "--period", DAY, "--audience", "site-s2", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert [rcpts for _, rcpts, _ in handler.received] == [["manager@example.com"]]


# -- Dagster --------------------------------------------------------------------------------------
def test_assets_mail_and_schedules_pick_the_period(seeded, tmp_path, recipients_file, smtp):
    from pipelines.defs.dashboard import assets as dashboard_asset
    from pipelines.resources import (
        DashboardResource,
        DatabaseResource,
        ModelStoreResource,
        ReportsResource,
        SmtpResource,
    )  # fmt: skip

    handler, config = smtp
    models = store(tmp_path / "models", beats=True)
    resources = {
        "database": DatabaseResource(url=seeded),
        "reports": ReportsResource(directory=str(tmp_path)),
        "smtp": SmtpResource(host="127.0.0.1", port=config.port, security="none"),
        "dashboard_recipients": DashboardResource(recipients_file=str(recipients_file)),
        "model_store": ModelStoreResource(directory=str(models)),
    }
    result = dg.materialize(
        [dashboard_asset.operator_dashboard_daily], partition_key=DAY, resources=resources
    )
    [mat] = result.asset_materializations_for_node("operator_dashboard_daily")
    assert mat.metadata["sent"].value == 2 and mat.metadata["sessions"].value == 15
    assert mat.metadata["incomplete"].value == []
    assert len(handler.received) == 2
    # the model store's card beats the baseline: the model's list, with its verdict
    body = text_of(
        (tmp_path / DAY / "dashboard" / "operator-acme-charging" / "email.html").read_text()
    )
    assert "1 connector likely to have an outage in the next 7 days" in body
    assert (
        "the model beats the fault-count baseline on held-out data (PR-AUC 0.412 vs 0.257)" in body
    )

    weekly = dg.materialize(
        [dashboard_asset.operator_dashboard_weekly], partition_key="2026-11-23",
        resources=resources,
        run_config={"ops": {"operator_dashboard_weekly": {"config": {"send": False}}}},
    )  # fmt: skip
    [wmat] = weekly.asset_materializations_for_node("operator_dashboard_weekly")
    assert wmat.metadata["period"].value == "2026-W48" and len(handler.received) == 2
    # 25..29 Nov were never computed: the weekly dashboard says so
    assert any("not computed for 2026-11-25..2026-11-29" in line
               for line in wmat.metadata["incomplete"].value)  # fmt: skip
    assert (
        tmp_path / "2026-W48" / "dashboard" / "operator-acme-charging" / "dashboard.eml"
    ).is_file()

    def key(schedule, when: datetime) -> str | None:
        ctx = dg.build_schedule_context(
            scheduled_execution_time=when, resources={"database": resources["database"]}
        )
        request = schedule(ctx)
        return request.partition_key if isinstance(request, dg.RunRequest) else None

    assert key(dashboard_asset.dashboard_daily, datetime(2026, 11, 25, 6, tzinfo=UTC)) == DAY
    assert key(dashboard_asset.dashboard_weekly, datetime(2026, 11, 30, 7, tzinfo=UTC)) == (
        "2026-11-23"
    )
    # the ISO week that spans the new year
    assert key(dashboard_asset.dashboard_weekly, datetime(2026, 1, 5, 7, tzinfo=UTC)) == (
        "2025-12-29"
    )
    # the week is sent once: on Tuesday there is no new one
    assert key(dashboard_asset.dashboard_weekly, datetime(2026, 12, 1, 7, tzinfo=UTC)) is None

    # a site west of UTC: its Tuesday ends at 08:00 UTC on Wednesday, in Wednesday's UTC
    # partition (computed on Thursday), so Thursday's dashboard is Tuesday's, and the week is
    # whole on Tuesday, not Monday
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("UPDATE site SET timezone = 'America/Los_Angeles' WHERE site_id = 'S2'")
    assert key(dashboard_asset.dashboard_daily, datetime(2026, 11, 25, 6, tzinfo=UTC)) == (
        "2026-11-23"
    )
    assert key(dashboard_asset.dashboard_daily, datetime(2026, 11, 26, 6, tzinfo=UTC)) == DAY
    assert key(dashboard_asset.dashboard_weekly, datetime(2026, 11, 30, 7, tzinfo=UTC)) is None
    assert key(dashboard_asset.dashboard_weekly, datetime(2026, 12, 1, 7, tzinfo=UTC)) == (
        "2026-11-23"
    )


def test_plotly_js_from_the_cdn_makes_a_small_attachment(db, database_url, tmp_path, monkeypatch):
    from chargeops.settings import ConfigError

    audience = [Audience("operator-x", "X", "operator", None, ())]
    monkeypatch.setenv("CHARGEOPS_DASHBOARD_PLOTLYJS", "cdn")
    [res] = dashboard.run(database_url, tmp_path, DAY, audience)
    page = (res.folder / "dashboard.html").read_text()
    assert re.search(r'<script[^>]*src="https://cdn\.plot\.ly/plotly-[\d.]+\.min\.js"', page)
    assert 'integrity="sha256-' in page and len(page) < 500_000
    monkeypatch.setenv("CHARGEOPS_DASHBOARD_PLOTLYJS", "both")
    with pytest.raises(ConfigError, match="use inline or cdn"):
        dashboard.run(database_url, tmp_path, DAY, audience)
