"""The UK reliability report on uk_reliability_daily rows built by the real analytics logic
(pipelines.analytics.uptime over hand-made connector states) and stored in a real PostgreSQL:
per charge point and network figures hand-computed, closed hours not counted, offline shown
apart, files and manifest written by the library, the CLI and the Dagster asset."""

import csv
import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import psycopg
import pytest

from chargeops.cli import main
from pipelines.analytics import frames as F
from pipelines.analytics.uptime import uk_reliability_daily
from pipelines.defs.reports.report_assets import (
    uk_reliability_files_in_manifest,
    uk_reliability_report,
)
from pipelines.resources import DatabaseResource, ReportsResource
from pipelines.store import replace_partition
from reports import uk_reliability as ukr

D1, D2 = date(2025, 1, 6), date(2025, 1, 7)  # Monday, Tuesday; London on GMT (= UTC)
OPEN_8_20 = '{"mon": ["08:00", "20:00"], "tue": ["08:00", "20:00"]}'
SITES = [  # site_id, name, timezone, country, operating hours
    ("GB-A", "Always open", "Europe/London", "GB", None),
    ("GB-B", "Open 08-20", "Europe/London", "GB", OPEN_8_20),
    ("US-X", "Not in the UK", "America/New_York", "US", None),
]
CHARGE_POINTS = {"CP1": ("GB-A", 2), "CP2": ("GB-B", 1), "CP3": ("US-X", 1)}  # all 150 kW


def at(day: date, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=h, minutes=m)


def states(day: date, timelines: dict[tuple[str, int], list[tuple[str, str]]]) -> pl.DataFrame:
    """STATES rows: per (charge point, evse) the (from hh:mm, state) changes; the first state
    holds from 00:00, each until the next change, the last until midnight."""
    rows = []
    for (cp, evse), changes in timelines.items():
        changes = [("00:00", "available"), *changes]
        ends = [t for t, _ in changes[1:]] + ["24:00"]
        for (start, state), end in zip(changes, ends, strict=True):
            rows.append({"charge_point_id": cp, "evse_id": evse, "connector_id": 1,
                         "start_ts": at(day, start), "end_ts": at(day, end), "state": state})  # fmt: skip
    return pl.DataFrame(rows, schema=F.STATES)


def window(day: date, exclusions: list[dict]) -> F.RawWindow:
    empty = {name: pl.DataFrame(schema=schema) for name, schema in (
        ("transactions", F.TRANSACTIONS), ("meter", F.METER), ("status", F.STATUS),
        ("connection", F.CONNECTION))}  # fmt: skip
    return F.RawWindow(
        day_start=at(day, "00:00"),
        day_end=at(day, "24:00"),
        charge_points=pl.DataFrame(
            [
                {
                    "charge_point_id": cp,
                    "site_id": site,
                    "max_power_w": 150_000.0,
                    "current_type": "DC",
                }
                for cp, (site, _) in CHARGE_POINTS.items()
            ],
            schema=F.CHARGE_POINTS,
        ),
        connectors=pl.DataFrame(
            [
                {"charge_point_id": cp, "evse_id": e, "connector_id": 1}
                for cp, (_, n) in CHARGE_POINTS.items()
                for e in range(1, n + 1)
            ],
            schema=F.CONNECTORS,
        ),
        sites=pl.DataFrame(
            [(s, tz, c, h) for s, _, tz, c, h in SITES], schema=F.SITES, orient="row"
        ),
        exclusions=pl.DataFrame(exclusions, schema=F.EXCLUSIONS),
        **empty,
    )


@pytest.fixture
def scenario(db, database_url):
    for row in SITES:
        db.execute(
            """INSERT INTO site (site_id, name, timezone, country, operating_hours)
               VALUES (%s, %s, %s, %s, %s)""",
            row,
        )
    days = {
        # CP1: connector 1 offline 10:00-10:30, connector 2 offline 10:00-10:40 (union 40 min,
        # counted), then faulted until 11:00: inoperative 60, excluded 0.
        # CP2 (open 08-20): faulted 02:00-08:00 and 19:00-23:00: inoperative 600, of which 540
        # while the site was closed (excluded). CP3: rapid, but not a UK site.
        D1: (
            {
                ("CP1", 1): [("10:00", "offline"), ("10:30", "faulted"), ("11:00", "available")],
                ("CP1", 2): [("10:00", "offline"), ("10:40", "faulted"), ("11:00", "available")],
                ("CP2", 1): [
                    ("02:00", "faulted"),
                    ("08:00", "available"),
                    ("19:00", "faulted"),
                    ("23:00", "available"),
                ],
                ("CP3", 1): [("00:00", "faulted"), ("12:00", "available")],
            },
            [],
        ),
        # CP1: both unavailable 12:00-12:30 inside an operator exclusion window: 30 and 30
        D2: (
            {
                ("CP1", 1): [("12:00", "unavailable"), ("12:30", "available")],
                ("CP1", 2): [("12:00", "unavailable"), ("12:30", "available")],
            },
            [
                {
                    "charge_point_id": "CP1",
                    "starts_at": at(D2, "12:00"),
                    "ends_at": at(D2, "12:30"),
                    "reason": "scheduled_maintenance",
                }
            ],
        ),
    }
    for day, (timelines, exclusions) in days.items():
        uk = uk_reliability_daily(states(day, timelines), window(day, exclusions))
        replace_partition(database_url, day, {"uk_reliability_daily": uk})
    return db


def test_daily_rows_carry_closed_and_offline_minutes(scenario):
    rows = scenario.execute(
        """SELECT day, charge_point_id, inoperative_minutes, excluded_minutes, closed_minutes,
                  offline_minutes FROM analytics.uk_reliability_daily ORDER BY 1, 2"""
    ).fetchall()
    assert rows == [
        (D1, "CP1", 60.0, 0.0, 0.0, 40.0),
        (D1, "CP2", 600.0, 540.0, 720.0, 0.0),
        (D1, "CP3", 720.0, 0.0, 0.0, 0.0),
        (D2, "CP1", 30.0, 30.0, 0.0, 0.0),
        (D2, "CP2", 0.0, 0.0, 720.0, 0.0),
        (D2, "CP3", 0.0, 0.0, 0.0, 0.0),
    ]


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

    # the SQL view and the daily rows use the same accessible-hours formula as the report
    with psycopg.connect(database_url) as conn:
        view = dict(
            conn.execute(
                "SELECT charge_point_id, reliability_pct FROM analytics.uk_reliability_yearly "
                "WHERE year = '2025-01-01' AND charge_point_id IN ('CP1', 'CP2')"
            ).fetchall()
        )
    assert view == pytest.approx({"CP1": 100 * 2820 / 2880, "CP2": 100 * 1380 / 1440})


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


def test_rows_from_before_the_detail_columns_are_refused(scenario, database_url, capsys):
    scenario.execute("UPDATE analytics.uk_reliability_daily SET closed_minutes = NULL WHERE day = %s",
                     (D2,))  # fmt: skip
    with pytest.raises(ukr.MissingDetail, match="2025-01-07"):
        ukr.read(database_url, date(2025, 1, 1), date(2025, 12, 31))
    argv = ["report", "uk-reliability", "--year", "2025", "--out", "/nonexistent"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", database_url)
        assert main(argv) == 2
    assert "materialise the `uptime` asset again" in capsys.readouterr().err


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
