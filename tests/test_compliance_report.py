"""The compliance report on a crafted dataset in a real PostgreSQL: HTML rendered (a hostile site
name escaped), PDF printed by real headless Chromium and read back with pypdf to find the key
figures, files and manifest written by the CLI and the Dagster asset, bad periods refused."""

import json
from datetime import date

import dagster as dg
import pypdf
import pytest

from chargeops.cli import main
from chargeops.periods import Period, parse_period, quarter_key, quarter_label
from pipelines.defs.reports.report_assets import compliance_files_in_manifest, compliance_report
from pipelines.resources import DatabaseResource, ReportsResource
from reports import compliance
from tests.conftest import mark_ok

# HTML and PDF through headless Chromium around simple reads: CI runs these once (marker `once`)
pytestmark = pytest.mark.once

D1, D2 = date(2025, 7, 1), date(2025, 7, 2)
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def scenario(db):
    db.execute(
        """INSERT INTO site (site_id, name, timezone, country, grid_region) VALUES
           ('GB-EVIL', %s, 'Europe/London', 'GB', 'GB'),
           ('US-B', 'Depot B', 'America/Los_Angeles', 'US', 'CAMX')""",
        (EVIL,),
    )
    tables = ("uptime_daily", "outages", "sessions", "energy_site_day", "load_curve",
              "emissions_site_day", "uk_reliability_daily")  # fmt: skip
    for t in tables:
        db.execute(f"DELETE FROM analytics.{t} WHERE day BETWEEN '2025-07-01' AND '2025-09-30'")
    # port X (GB, rapid): 60 outage minutes on D1; port Y (US): none
    for day, cp, site, out in ((D1, "CP-X", "GB-EVIL", 60), (D2, "CP-X", "GB-EVIL", 0),
                               (D1, "CP-Y", "US-B", 0), (D2, "CP-Y", "US-B", 0)):  # fmt: skip
        db.execute(
            """INSERT INTO analytics.uptime_daily (day, charge_point_id, evse_id, connector_id,
                   site_id, minutes_in_period, outage_minutes, excluded_minutes, uptime_pct)
               VALUES (%s, %s, 1, 1, %s, 1440, %s, 0, 0)""",
            (day, cp, site, out),
        )
        if cp == "CP-X":
            db.execute(
                """INSERT INTO analytics.uk_reliability_daily (day, charge_point_id, site_id,
                       minutes_in_period, inoperative_minutes, excluded_minutes, reliability_pct,
                       closed_minutes, offline_minutes)
                   VALUES (%s, 'CP-X', 'GB-EVIL', 1440, %s, 0, 0, 0, 0)""",
                (day, out),
            )
    db.execute(
        """INSERT INTO analytics.outages (day, charge_point_id, evse_id, connector_id, site_id,
               start_ts, end_ts, duration_min, cause, excluded)
           VALUES (%s, 'CP-X', 1, 1, 'GB-EVIL', '2025-07-01 09:00+00', '2025-07-01 10:00+00', 60,
                   'faulted', false)""",
        (D1,),
    )
    for i, (site, day) in enumerate((("GB-EVIL", D1), ("US-B", D1), ("US-B", D2))):
        db.execute(
            """INSERT INTO analytics.sessions (day, session_id, charge_point_id, transaction_id,
                   site_id) VALUES (%s, %s, 'CP', %s, %s)""",
            (day, f"CP:{i}", str(i), site),
        )
    db.execute(
        """INSERT INTO analytics.energy_site_day (day, site_id, energy_kwh, sessions) VALUES
           (%s, 'GB-EVIL', 10, 1), (%s, 'US-B', 40, 1), (%s, 'US-B', 2.5, 1)""",
        (D1, D1, D2),
    )
    db.execute(  # the load curve the energy comes from: one interval at noon UTC
        """INSERT INTO analytics.load_curve (day, site_id, interval_start, energy_kwh, mean_kw)
           SELECT day, site_id, (day + time '12:00') AT TIME ZONE 'UTC', energy_kwh, 4 * energy_kwh
           FROM analytics.energy_site_day WHERE day BETWEEN '2025-07-01' AND '2025-07-02'"""
    )
    db.execute(
        """INSERT INTO analytics.emissions_site_day (day, site_id, grid_region, baseline,
               energy_kwh, sessions, factor_basis, grid_g_per_kwh, grid_g, tailpipe_g, net_saving_g)
           VALUES (%s, 'GB-EVIL', 'GB', 'US-EPA', 10, 1, 'annual', 207.05, 2070.5, 11786.47, 9715.97),
                  (%s, 'US-B', 'CAMX', 'US-EPA', 40, 1, 'annual', 195.04, 7801.48, 47145.89,
                   39344.41)""",
        (D1, D1),
    )
    mark_ok(db, compliance.SOURCES, (D1, D2))  # the days the assets computed
    return db


def test_html_and_pdf_carry_the_figures(scenario, database_url, tmp_path):
    paths, ctx = compliance.run(database_url, tmp_path, "2025Q3")
    html_path, pdf_path = paths
    assert (html_path.name, pdf_path.name) == ("compliance_2025Q3.html", "compliance_2025Q3.pdf")
    net = ctx["network"]
    # on local days: Depot B's quarter starts at 07:00 UTC on 1 July (midnight in Los Angeles),
    # so 420 of its 2,880 UTC minutes are 30 June's; London's starts at 23:00 UTC on 30 June
    assert net["uptime_pct"] == pytest.approx(100 * (5340 - 60) / 5340)  # 98.88%
    assert (net["sessions"], net["energy_kwh"]) == (3, 52.5)
    assert net["saved_kg"] == pytest.approx(49.06038)

    html = html_path.read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    text = " ".join(p.extract_text() for p in pypdf.PdfReader(pdf_path).pages)
    for figure in (
        "98.88%",  # network uptime in the period
        "97.92%",  # port CP-X: 100 * (2880 - 60) / 2880, and CP-X's UK reliability
        "100.00%",  # port CP-Y
        "52.5 kWh",  # energy delivered
        "49.1 kg CO2",  # net emissions saved
        "Period 2025Q3",
        "2025-07-01 to 2025-09-30",
    ):
        assert figure in text, figure
    assert "3\ncharging sessions" in text or "3 charging sessions" in text
    assert "<script>alert(1)</script>" in text  # shown as text, not run

    manifest = json.loads((tmp_path / "2025Q3" / "manifest.json").read_text())
    assert {e["file"] for e in manifest["files"]} == {html_path.name, pdf_path.name}


def test_a_failed_day_is_named_in_a_banner_a_mark_and_a_note(scenario, database_url, tmp_path):
    """The report must still go out: it is built from what exists and says what does not."""
    scenario.execute(
        """UPDATE analytics.partition_status SET status = 'failed',
               detail = 'blocking check energy_adds_up failed'
           WHERE asset = 'energy' AND day = %s""",
        (D2,),
    )
    paths, ctx = compliance.run(database_url, tmp_path, "2025Q3")
    assert [p.name for p in paths] == [
        "compliance_2025Q3.html", "compliance_2025Q3.pdf", "compliance_2025Q3.INCOMPLETE.txt",
    ]  # fmt: skip
    assert ctx["incomplete"] == [
        "energy: failed on 2025-07-02 (blocking check energy_adds_up failed)"
    ]
    assert (ctx["data_from"], ctx["data_to"]) == (D1, D2)
    html = paths[0].read_text()
    assert 'id="incomplete"' in html and "energy: failed on 2025-07-02" in html
    assert html.count('<span class="inc">incomplete</span>') >= 2  # the energy KPI and row
    text = " ".join(p.extract_text() for p in pypdf.PdfReader(paths[1]).pages)
    assert "Incomplete" in text and "energy: failed on 2025-07-02" in text
    note = paths[2].read_text()
    assert "energy: failed on 2025-07-02" in note
    manifest = json.loads((tmp_path / "2025Q3" / "manifest.json").read_text())
    assert paths[2].name in {e["file"] for e in manifest["files"]}
    # a re-run once the day is fixed takes the note away again
    scenario.execute("UPDATE analytics.partition_status SET status = 'ok', detail = ''")
    paths, ctx = compliance.run(database_url, tmp_path, "2025Q3", pdf=False)
    assert ctx["incomplete"] == [] and not (tmp_path / "2025Q3" / note_name()).exists()
    assert 'id="incomplete"' not in paths[0].read_text()


def note_name() -> str:
    return "compliance_2025Q3.INCOMPLETE.txt"


def test_imported_history_is_flagged_as_no_evidence_of_uptime(scenario, database_url, tmp_path):
    """Session exports carry no outage records: a report over imported charge points says so."""
    _, ctx = compliance.run(database_url, tmp_path, "2025Q3", pdf=False)
    assert ctx["imported"] == [] and "Imported history" not in compliance.render_html(ctx)
    scenario.execute(
        "INSERT INTO charge_point (charge_point_id, site_id, source) VALUES ('CP-Y', 'US-B', 'acn')"
    )
    paths, ctx = compliance.run(database_url, tmp_path, "2025Q3", pdf=False)
    html = paths[0].read_text()
    assert ctx["imported"] == [{"source": "acn", "charge_points": 1}]
    assert "Imported history" in html and "1 charge point(s) from\nacn exports" in html


def test_an_exports_own_co2_figure_is_shown_beside_ours_and_explained(
    scenario, database_url, tmp_path
):
    """Issue 17 row 5: a ChargePoint export's GHG Savings column uses 0.42 kg/kWh; the report
    shows it beside its own figure and says why they differ."""
    _, ctx = compliance.run(database_url, tmp_path, "2025Q3", pdf=False)
    assert ctx["stated_ghg"] == []
    scenario.execute(
        """INSERT INTO import_batch (format, file_name, file_sha256, rows_read, rows_imported,
               rows_skipped, energy_wh, first_start_ts, last_stop_ts, stated_ghg_kg,
               stated_ghg_energy_wh)
           VALUES ('chargepoint', 'palo_alto.csv', 'x', 4, 4, 0, 28999.457, '2025-07-01 10:00+00',
                   '2025-07-02 11:00+00', 12.18, 28999.457),
                  ('chargepoint', 'other_year.csv', 'y', 1, 1, 0, 1000, '2024-07-01 10:00+00',
                   '2024-07-01 11:00+00', 0.42, 1000)"""
    )
    paths, ctx = compliance.run(database_url, tmp_path, "2025Q3", pdf=False)
    html = " ".join(paths[0].read_text().split())
    # ours: (9715.97 + 39344.41) g saved for 10 + 40 + 2.5 kWh = 0.93 kg/kWh
    assert [(g["file_name"], round(g["kg_per_kwh"], 3)) for g in ctx["stated_ghg"]] == [
        ("palo_alto.csv", 0.42)
    ]
    assert "states 12.2 kg CO2 saved for 29.0 kWh, 0.42 kg per kWh" in html
    assert "this report computes 0.93 kg per kWh over the period" in html
    assert "They differ because the export's figure comes from its own network's grid" in html


def test_cli_and_asset_write_the_files(scenario, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "cli"
    period = "2025-07-01..2025-07-02"
    assert main(["report", "compliance", "--period", period, "--out", str(out)]) == 0
    assert (out / period / f"compliance_{period}.pdf").stat().st_size > 1000
    assert (out / period / "manifest.json").is_file()

    result = dg.materialize(
        [compliance_report, compliance_files_in_manifest],
        partition_key="2025-07-01",
        resources={
            "database": DatabaseResource(url=database_url),
            "reports": ReportsResource(directory=str(tmp_path / "dagster")),
        },
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    meta = result.asset_materializations_for_node("compliance_report")[0].metadata
    assert meta["sessions"].value == 3
    assert meta["ports_below_97pct"].value == []  # 97.92 > 97


@pytest.mark.parametrize("period", ["2025Q5", "2025-13", "July", "2025-07-02..2025-07-01"])
def test_bad_period_exits_2(period, capsys):
    assert main(["report", "compliance", "--period", period]) == 2
    assert "period" in capsys.readouterr().err


def test_periods_parse():
    assert parse_period("2026q3") == Period(
        "2026Q3", date(2026, 7, 1), date(2026, 9, 30), "quarter"
    )
    assert parse_period("2024") == Period("2024", date(2024, 1, 1), date(2024, 12, 31), "year")
    assert parse_period(" 2024-02") == Period(
        "2024-02", date(2024, 2, 1), date(2024, 2, 29), "month"
    )
    assert parse_period("2025-07-01..2025-07-02") == Period(
        "2025-07-01..2025-07-02", date(2025, 7, 1), date(2025, 7, 2), "range"
    )
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_period("2025-07-02..2025-07-01")
    with pytest.raises(ValueError, match="2026Q3, 2026, 2026-07, 2026-W47, 2026-11-24 or START"):
        parse_period("July")


def test_quarter_keys_and_labels_share_the_parser():
    # the quarterly partition key (first day) and the report label round-trip
    assert quarter_key(" 2026q3 ") == "2026-07-01"
    assert quarter_label("2026-07-01") == "2026Q3"
    assert quarter_label("2024-12-31") == "2024Q4"
    assert [quarter_label(quarter_key(f"2025Q{q}")) for q in range(1, 5)] == [
        "2025Q1", "2025Q2", "2025Q3", "2025Q4",
    ]  # fmt: skip
    for bad in ("2025Q5", "2025", "2025-07", "Q3"):
        with pytest.raises(ValueError, match="not a calendar quarter such as 2026Q3"):
            quarter_key(bad)
