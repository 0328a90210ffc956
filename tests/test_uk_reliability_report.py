"""The UK reliability report on crafted uk_reliability_daily / outages rows in a real PostgreSQL:
per charge point and network figures hand-computed, closed hours not counted, offline shown
apart, files and manifest written by the library, the CLI and the Dagster asset."""

import csv
import json
from datetime import UTC, date, datetime

import dagster as dg
import pytest

from chargeops.cli import main
from pipelines.report_assets import uk_reliability_files_in_manifest, uk_reliability_report
from pipelines.resources import DatabaseResource, ReportsResource
from reports import uk_reliability as ukr

D1, D2 = date(2025, 1, 6), date(2025, 1, 7)  # Monday, Tuesday; London on GMT (= UTC)
OPEN_8_20 = '{"mon": ["08:00", "20:00"], "tue": ["08:00", "20:00"]}'


@pytest.fixture
def scenario(db):
    db.execute(
        """INSERT INTO site (site_id, name, timezone, country, operating_hours) VALUES
           ('GB-A', 'Always open', 'Europe/London', 'GB', NULL),
           ('GB-B', 'Open 08-20', 'Europe/London', 'GB', %s),
           ('US-X', 'Not in the UK', 'America/New_York', 'US', NULL)""",
        (OPEN_8_20,),
    )
    db.execute("DELETE FROM analytics.uk_reliability_daily WHERE day IN (%s, %s)", (D1, D2))
    db.execute("DELETE FROM analytics.outages WHERE day IN (%s, %s)", (D1, D2))
    rows = [  # day, charge point, site, inoperative, excluded
        (D1, "CP1", "GB-A", 60, 0),
        (D2, "CP1", "GB-A", 30, 30),  # inside an operator exclusion window
        (D1, "CP2", "GB-B", 600, 540),  # 540 of the 600 minutes while the site was closed
        (D2, "CP2", "GB-B", 0, 0),
        (D1, "CP3", "US-X", 720, 0),  # rapid, but not a UK site: not reported
    ]
    for day, cp, site, inop, excl in rows:
        db.execute(
            """INSERT INTO analytics.uk_reliability_daily (day, charge_point_id, site_id,
                   minutes_in_period, inoperative_minutes, excluded_minutes, reliability_pct)
               VALUES (%s, %s, %s, 1440, %s, %s, 0)""",
            (day, cp, site, inop, excl),
        )
    # CP1 offline (counted) 10:00-10:30 on connector 1 and 10:00-10:40 on connector 2: union 40 min
    for evse, end in ((1, "10:30"), (2, "10:40")):
        db.execute(
            """INSERT INTO analytics.outages (day, charge_point_id, evse_id, connector_id, site_id,
                   start_ts, end_ts, duration_min, cause, excluded)
               VALUES (%s, 'CP1', %s, 1, 'GB-A', %s, %s, 0, 'offline', false)""",
            (D1, evse, datetime(2025, 1, 6, 10, tzinfo=UTC),
             datetime.fromisoformat(f"2025-01-06T{end}:00+00:00")),
        )  # fmt: skip
    return db


def test_per_charger_and_network_figures(scenario, database_url):
    report = ukr.read(database_url, date(2025, 1, 1), date(2025, 12, 31))
    rows = {r["charge_point_id"]: r for r in report.per_cp.iter_rows(named=True)}
    assert set(rows) == {"CP1", "CP2"}  # CP3's site is in the US

    cp1 = rows["CP1"]  # 24/7: accessible 2 x 1440; counted (60 - 0) + (30 - 30) = 60
    assert (cp1["accessible_minutes"], cp1["counted_inoperative_minutes"]) == (2880.0, 60.0)
    assert round(cp1["reliability_pct"], 2) == 97.92  # 100 * 2820 / 2880 = 97.9167
    assert cp1["offline_minutes"] == 40.0
    assert round(cp1["reliability_if_offline_unknown_pct"], 2) == 99.31  # 100 * 2860 / 2880

    cp2 = rows["CP2"]  # open 08-20: accessible 2 x 720; the 540 closed minutes do not count
    assert (cp2["accessible_minutes"], cp2["counted_inoperative_minutes"]) == (1440.0, 60.0)
    assert round(cp2["reliability_pct"], 2) == 95.83  # 100 * 1380 / 1440 (not 97.92 of 2880)
    assert not cp2["meets_99pct"]

    net = report.network  # mean of the per-charger percentages: (97.9167 + 95.8333) / 2
    assert net["charge_points"] == 2
    assert net["network_average_pct"] == pytest.approx((2820 / 2880 + 1380 / 1440) * 50)
    assert round(net["network_average_pct"], 2) == 96.88
    assert net["meets_target"] is False
    assert sorted(net["below_99pct"]) == ["CP1", "CP2"]


def test_cli_writes_csv_summary_and_manifest(scenario, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["report", "uk-reliability", "--year", "2025", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "2025"
    with open(folder / "uk_reliability_2025.csv") as f:
        rows = {r["charge_point_id"]: r for r in csv.DictReader(f)}
    assert float(rows["CP2"]["reliability_pct"]) == pytest.approx(95.8333, abs=1e-4)
    assert rows["CP2"]["accessible_minutes"] == "1440.0"
    summary = json.loads((folder / "uk_reliability_2025_summary.json").read_text())
    assert round(summary["network_average_pct"], 2) == 96.88
    offline = next(m for m in summary["status_mapping"] if m["state"] == "offline")
    assert offline["ocpi"] == "INOPERATIVE" and offline["regulation"] == "unreliable"
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {e["file"]: e for e in manifest["files"]}
    assert files["uk_reliability_2025.csv"]["rows"] == 2
    assert len(files["uk_reliability_2025_summary.json"]["sha256"]) == 64


def test_cli_refuses_a_bad_year(capsys):
    assert main(["report", "uk-reliability", "--year", "99"]) == 2
    assert "calendar year" in capsys.readouterr().err


def test_asset_materialises_the_year(scenario, database_url, tmp_path):
    result = dg.materialize(
        [uk_reliability_report, uk_reliability_files_in_manifest],
        partition_key="2025-01-01",
        resources={
            "database": DatabaseResource(url=database_url),
            "reports": ReportsResource(directory=str(tmp_path)),
        },
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    meta = result.asset_materializations_for_node("uk_reliability_report")[0].metadata
    assert meta["network_average_pct"].value == pytest.approx(96.875, abs=1e-3)
    assert (tmp_path / "2025" / "uk_reliability_2025.csv").is_file()
