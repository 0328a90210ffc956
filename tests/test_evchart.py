"""EV-ChART Modules 2-4: headers against the Joint Office's sample files, the 23 CFR 680.116(b)
uptime worked examples to the second decimal, outage merging, empty rows, validation failures
named by row and column, the written bytes, the CLI and the Dagster asset on a real PostgreSQL."""

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from chargeops.cli import main
from pipelines.analytics import frames as F
from pipelines.analytics.uptime import outages as outage_pieces
from pipelines.analytics.uptime import uptime_daily
from pipelines.defs.reports.evchart_asset import ASSETS, CHECKS
from pipelines.resources import DatabaseResource, ReportsResource
from reports import evchart as E
from reports import evchart_rules as R
from tests.conftest import mark_ok

FIX = Path(__file__).parent / "fixtures" / "evchart"
Q2 = date(2024, 4, 1)
NP = "shell_recharge"
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = json.dumps({d: ["08:00", "18:00"] for d in WEEK})  # open 08:00-18:00 every day


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def ports(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=E.PORTS, orient="row")


def rows_of(df: pl.DataFrame) -> list[dict]:
    return df.to_dicts()


# -- headers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", [2, 3, 4])
def test_headers_are_the_sample_files_columns(number):
    template = (FIX / f"module{number}_header.csv").read_text().strip().split(",")
    ours = list(R.MODULES[number].header)
    assert ours[:3] == ["station_id", "port_id", "network_provider"]
    assert sorted(ours) == sorted(template)
    assert [c for c in ours if c not in R.COMMON] == [c for c in template if c not in R.COMMON]
    if number in (3, 4):
        assert ours == template


def test_module2_header_is_the_issue_list():
    assert R.MODULE2.header == (
        "station_id", "port_id", "network_provider", "charger_id", "session_id", "connector_id",
        "session_start", "session_end", "session_error", "error_other", "energy_kwh", "power_kw",
        "payment_method", "payment_other",
    )  # fmt: skip


# -- Module 3: uptime -----------------------------------------------------------------------------
def _year_of_days(first: date, last: date, cp="CP1") -> list[dict]:
    days = pl.date_range(first, last, eager=True).to_list()
    return [
        {"day": d, "charge_point_id": cp, "evse_id": 1, "connector_id": 1,
         "outage_minutes": 0.0, "excluded_minutes": 0.0}
        for d in days
    ]  # fmt: skip


def test_uptime_worked_example_10_hour_outage_4_hours_excluded():
    rows = _year_of_days(date(2023, 5, 1), date(2024, 6, 30))
    for r in rows:
        if r["day"] == date(2024, 3, 10):  # 10 h outage, 4 h of it excluded: in all three windows
            r.update(outage_minutes=600.0, excluded_minutes=240.0)
        if r["day"] == date(2023, 5, 15):  # 2 h counted outage: only in April's window
            r.update(outage_minutes=120.0)
    uptime = pl.DataFrame(rows, schema=E.UPTIME)
    p = ports(("CP1", 1, 1, "S1", date(2023, 1, 1)))
    out = rows_of(E.module3(uptime, p, Q2, NP))
    assert [(r["uptime_reporting_start"], r["uptime_reporting_end"]) for r in out] == [
        ("2023-05-01T00:00:00Z", "2024-04-30T23:59:59Z"),
        ("2023-06-01T00:00:00Z", "2024-05-31T23:59:59Z"),
        ("2023-07-01T00:00:00Z", "2024-06-30T23:59:59Z"),
    ]
    # April: (525600 - (720 - 240)) / 525600 * 100 = 99.90867... -> 99.91
    # May, June: (525600 - (600 - 240)) / 525600 * 100 = 99.93150... -> 99.93
    assert [r["uptime"] for r in out] == ["99.91", "99.93", "99.93"]
    assert [r["total_outage"] for r in out] == ["720.00", "600.00", "600.00"]
    assert [r["total_outage_excl"] for r in out] == ["240.00", "240.00", "240.00"]
    assert {r["port_id"] for r in out} == {"CP1-1-1"} and {r["station_id"] for r in out} == {"S1"}
    assert E.cfr_uptime_pct(600, 240) == pytest.approx(99.931506849, abs=1e-9)


def _window(day: date, sites: list[dict]) -> F.RawWindow:
    def fr(schema, rows=()):
        return pl.DataFrame(list(rows), schema=schema)

    return F.RawWindow(
        day_start=T(f"{day} 00:00"), day_end=T(f"{day} 00:00") + (T("2000-01-02") - T("2000-01-01")),
        transactions=fr(F.TRANSACTIONS), meter=fr(F.METER), status=fr(F.STATUS),
        connection=fr(F.CONNECTION),
        charge_points=fr(F.CHARGE_POINTS, [{"charge_point_id": "CP1", "site_id": "S1"}]),
        connectors=fr(F.CONNECTORS, [{"charge_point_id": "CP1", "evse_id": 1, "connector_id": 1}]),
        sites=fr(F.SITES, sites), exclusions=fr(F.EXCLUSIONS),
    )  # fmt: skip


def _states(spans: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"charge_point_id": "CP1", "evse_id": 1, "connector_id": 1, "start_ts": T(a),
          "end_ts": T(b), "state": s, "error_code": None} for a, b, s in spans],
        schema=F.STATES,
    )  # fmt: skip


def test_outage_outside_operating_hours_is_not_counted_and_merges_across_midnight():
    """Open 08:00-18:00 UTC every day. Faulted 10:00-11:00 (counted) and 20:00-02:00 the next
    day (wholly outside the hours: excluded, reason outside_operating_hours = code 6)."""
    site = [{"site_id": "S1", "timezone": "UTC", "operating_hours": EVERY_DAY}]
    d1, d2 = date(2024, 6, 12), date(2024, 6, 13)
    s1 = _states([("2024-06-12 00:00", "2024-06-12 10:00", "available"),
                  ("2024-06-12 10:00", "2024-06-12 11:00", "faulted"),
                  ("2024-06-12 11:00", "2024-06-12 20:00", "available"),
                  ("2024-06-12 20:00", "2024-06-13 00:00", "faulted")])  # fmt: skip
    s2 = _states([("2024-06-13 00:00", "2024-06-13 02:00", "faulted"),
                  ("2024-06-13 02:00", "2024-06-14 00:00", "available")])  # fmt: skip
    w1, w2 = _window(d1, site), _window(d2, site)
    p1, p2 = outage_pieces(s1, w1), outage_pieces(s2, w2)
    daily = pl.concat([uptime_daily(p1, w1), uptime_daily(p2, w2)])
    uptime = daily.select(list(E.UPTIME))
    p = ports(("CP1", 1, 1, "S1", date(2023, 1, 1)))
    june = rows_of(E.module3(uptime, p, Q2, NP))[-1]
    # T_outage = 60 + 240 + 120 = 420, T_excluded = 360: (525600 - 60) / 525600 = 99.98858 -> 99.99
    assert (june["total_outage"], june["total_outage_excl"], june["uptime"]) == (
        "420.00", "360.00", "99.99",
    )  # fmt: skip
    pieces = pl.concat([p1, p2]).select(list(E.OUTAGES))
    m4, dropped = E.module4(pieces, p, Q2, NP)
    assert dropped == 0
    assert [
        (r["outage_id"], r["outage_duration"], r["excluded_outage"], r["excluded_outage_reason"])
        for r in rows_of(m4)
    ] == [
        ("2024-06-12T10:00:00Z", "60.00", "FALSE", ""),
        ("2024-06-12T20:00:00Z", "360.00", "TRUE", "6"),
    ]


def test_uptime_blank_in_a_stations_first_year_totals_still_filled():
    uptime = pl.DataFrame(_year_of_days(date(2024, 5, 1), date(2024, 5, 15)), schema=E.UPTIME)
    p = ports(("CP1", 1, 1, "S1", date(2024, 5, 1)))
    out = rows_of(E.module3(uptime, p, Q2, NP))
    assert [r["uptime"] for r in out] == ["", "", ""]
    assert [r["total_outage"] for r in out] == ["0.00", "0.00", "0.00"]
    assert E.validate_frame(R.MODULE3, E.module3(uptime, p, Q2, NP), "m3.csv") == []
    # a station operating for more than a year before the window's start must fill uptime
    late = E.validate_frame(
        R.MODULE3, E.module3(uptime, p, Q2, NP), "m3.csv", {"S1": date(2022, 1, 1)}
    )
    assert [(v.row, v.column) for v in late] == [(2, "uptime"), (3, "uptime"), (4, "uptime")]


# -- Module 4: outages ----------------------------------------------------------------------------
def _piece(cp, start, end, excluded=False, reason=None, evse=1):
    minutes = (T(end) - T(start)).total_seconds() / 60
    return {"charge_point_id": cp, "evse_id": evse, "connector_id": 1, "site_id": "S1",
            "start_ts": T(start), "end_ts": T(end), "duration_min": minutes,
            "excluded": excluded, "exclusion_reason": reason}  # fmt: skip


def test_module4_merges_midnight_pieces_and_keeps_quarter_and_empty_rows():
    pieces = pl.DataFrame(
        [
            _piece("CP1", "2024-05-03 23:00", "2024-05-04 00:00"),  # one outage split at midnight
            _piece("CP1", "2024-05-04 00:00", "2024-05-04 00:30"),
            _piece("CP1", "2024-03-31 23:00", "2024-04-01 00:00"),  # started in Q1: not here
            _piece("CP1", "2024-04-01 00:00", "2024-04-01 01:00"),
            _piece("CP1", "2024-05-10 08:00", "2024-05-10 09:15", True, "other"),
            _piece("CP1", "2024-05-11 08:00", "2024-05-11 09:00", True, "scheduled_maintenance"),
            _piece("CP1", "2024-05-12 08:00:00", "2024-05-12 08:00:00.01"),  # 0.0002 min: dropped
        ],
        schema=E.OUTAGES,
    )
    p = ports(("CP1", 1, 1, "S1", date(2024, 1, 1)), ("CP1", 2, 1, "S1", date(2024, 1, 1)))
    m4, dropped = E.module4(pieces, p, Q2, NP)
    assert dropped == 1
    assert rows_of(m4) == [
        {"station_id": "S1", "port_id": "CP1-1-1", "network_provider": NP,
         "outage_id": "2024-05-03T23:00:00Z", "outage_duration": "90.00",
         "excluded_outage": "FALSE", "excluded_outage_reason": "", "excluded_outage_notes": ""},
        {"station_id": "S1", "port_id": "CP1-1-1", "network_provider": NP,
         "outage_id": "2024-05-10T08:00:00Z", "outage_duration": "75.00",
         "excluded_outage": "TRUE", "excluded_outage_reason": "",
         "excluded_outage_notes": "excluded: other"},
        {"station_id": "S1", "port_id": "CP1-1-1", "network_provider": NP,
         "outage_id": "2024-05-11T08:00:00Z", "outage_duration": "60.00",
         "excluded_outage": "TRUE", "excluded_outage_reason": "3", "excluded_outage_notes": ""},
        {"station_id": "S1", "port_id": "CP1-2-1", "network_provider": NP,  # no outage: empty row
         "outage_id": "", "outage_duration": "", "excluded_outage": "",
         "excluded_outage_reason": "", "excluded_outage_notes": ""},
    ]  # fmt: skip
    assert E.validate_frame(R.MODULE4, m4, "m4.csv") == []


# -- Module 2: sessions ---------------------------------------------------------------------------
def test_module2_sessions_units_errors_payment_and_empty_rows():
    sessions = pl.DataFrame(
        [
            {"charge_point_id": "CP1", "transaction_id": "T1", "evse_id": 1, "connector_id": 1,
             "site_id": "S1", "start_ts": T("2024-05-02 10:00:00.6"),
             "end_ts": T("2024-05-02 11:00"), "energy_wh": 12345.0, "peak_power_w": 7400.0,
             "mean_power_w": 7000.0, "stop_reason": "EVDisconnected", "id_token_type": "ISO14443"},
            {"charge_point_id": "CP1", "transaction_id": "T2", "evse_id": 1, "connector_id": 1,
             "site_id": "S1", "start_ts": T("2024-05-03 10:00"), "end_ts": T("2024-05-03 10:30"),
             "energy_wh": 999.4, "peak_power_w": None, "mean_power_w": 2000.0,
             "stop_reason": "PowerLoss", "id_token_type": None},
            {"charge_point_id": "CP1", "transaction_id": "T3", "evse_id": 1, "connector_id": 1,
             "site_id": "S1", "start_ts": T("2024-05-04 10:00"), "end_ts": None,
             "energy_wh": 10.0, "peak_power_w": 1.0, "mean_power_w": 1.0,
             "stop_reason": None, "id_token_type": None},  # still open: not reported
        ],
        schema=E.SESSIONS,
    )  # fmt: skip
    p = ports(("CP1", 1, 1, "S1", date(2024, 1, 1)), ("CP1", 2, 1, "S1", date(2024, 1, 1)))
    m2 = E.module2(sessions, p, Q2, NP)  # T1: 12345 Wh = 12.345 kWh, half up -> 12.35
    got = rows_of(m2)
    assert got[0] == {
        "station_id": "S1", "port_id": "CP1-1-1", "network_provider": NP, "charger_id": "CP1",
        "session_id": "T1", "connector_id": "1", "session_start": "2024-05-02T10:00:00Z",
        "session_end": "2024-05-02T11:00:00Z", "session_error": "none", "error_other": "",
        "energy_kwh": "12.35", "power_kw": "7.40", "payment_method": "rfid_card",
        "payment_other": "",
    }  # fmt: skip
    assert (got[1]["session_error"], got[1]["energy_kwh"], got[1]["power_kw"]) == (
        "PowerLoss", "1.00", "2.00",
    )  # fmt: skip
    assert (got[1]["payment_method"], got[1]["payment_other"]) == (
        "other", "OCPP 1.6 idTag (type not reported)",
    )  # fmt: skip
    assert got[2] == {c: "" for c in R.MODULE2.header} | {
        "station_id": "S1", "port_id": "CP1-2-1", "network_provider": NP,
    }  # fmt: skip
    assert len(got) == 3
    assert E.validate_frame(R.MODULE2, m2, "m2.csv") == []


def test_long_ids_are_shortened_stably():
    long_cp = "X" * 40
    pid = E.port_id(long_cp, 1, 1)
    assert len(pid) == 36 and pid == E.port_id(long_cp, 1, 1) and pid.startswith("p-")
    assert E.port_id("CP1", 2, 1) == "CP1-2-1"


def test_an_imported_sessions_long_id_is_shortened_and_validates():
    """Imported history keeps its source's session ids (ACN-Data's are 42 characters); Module 2
    allows 36, so they are shortened stably, and the file passes the rules."""
    long_id = "acn:2_39_123_23_2021-07-13 20:42:23.144333"
    sessions = pl.DataFrame(
        [{"charge_point_id": "CP1", "transaction_id": long_id, "evse_id": 1, "connector_id": 1,
          "site_id": "S1", "start_ts": T("2024-05-02 10:00"), "end_ts": T("2024-05-02 11:00"),
          "energy_wh": 5000.0, "peak_power_w": 6000.0, "mean_power_w": 5000.0,
          "stop_reason": None, "id_token_type": None}],
        schema=E.SESSIONS,
    )  # fmt: skip
    m2 = E.module2(sessions, ports(("CP1", 1, 1, "S1", date(2024, 1, 1))), Q2, NP)
    sid = rows_of(m2)[0]["session_id"]
    assert sid == E.fit_id(long_id, "s-") and len(sid) == 36 and sid.startswith("s-")
    assert E.validate_frame(E.R.MODULES[2], m2, "module2.csv") == []


# -- validation and writing -----------------------------------------------------------------------
def _valid_frames() -> dict[int, pl.DataFrame]:
    p = ports(("CP1", 1, 1, "S1", date(2024, 1, 1)))
    empty_sessions = pl.DataFrame(schema=E.SESSIONS)
    uptime = pl.DataFrame(_year_of_days(date(2024, 4, 1), date(2024, 4, 2)), schema=E.UPTIME)
    pieces = pl.DataFrame([_piece("CP1", "2024-05-03 23:00", "2024-05-04 00:00")], schema=E.OUTAGES)
    return {
        2: E.module2(empty_sessions, p, Q2, NP),
        3: E.module3(uptime, p, Q2, NP),
        4: E.module4(pieces, p, Q2, NP)[0],
    }


def test_validation_lists_every_violation_by_row_and_column_and_writes_nothing(tmp_path):
    frames = _valid_frames()
    m2 = pl.DataFrame(
        [
            ["S1", "CP1-1-1", NP, "CP1", "T1", "1", "2024-05-02T10:00:00+00:00",
             "2024-05-02T11:00:00Z", "none", "", "12.345", "7.40", "rfid_card", ""],
            ["S1", "CP1-1-1", NP, "CP1", "T2", "1", "2024-05-02T12:00:00Z",
             "2024-05-02T13:00:00Z", "none", "", "123456.00", "-1.00", "", ""],
            ["S1", "CP1-1-1", NP, "CP1", "T1", "1", "2024-05-02T14:00:00Z",
             "2024-05-02T15:00:00Z", "none", "", "1.00", "1.00", "app", ""],
        ],
        schema=list(R.MODULE2.header), orient="row",
    )  # fmt: skip
    m4 = frames[4].with_columns(outage_duration=pl.lit(""), excluded_outage_reason=pl.lit("7"))
    with pytest.raises(E.EvchartValidationError) as err:
        E.write_quarter({2: m2, 3: frames[3], 4: m4}, tmp_path, "2024Q2")
    got = {(v.file, v.row, v.column, v.rule) for v in err.value.violations}
    f2, f4 = "evchart_module2_2024Q2.csv", "evchart_module4_2024Q2.csv"
    assert got == {
        (f2, 2, "session_start", "not a datetime like 2024-01-01T00:00:00Z"),
        (f2, 2, "energy_kwh", "more than 2 decimal places"),
        (f2, 3, "energy_kwh", "more than 5 integer digits"),
        (f2, 3, "power_kw", "below the minimum 0"),
        (f2, 3, "payment_method", "required unless the whole session row is empty"),
        (f2, 4, "station_id,port_id,session_id", "duplicate key, first on row 2"),
        (f4, 2, "excluded_outage_reason", "above the maximum 6"),
        (f4, 2, "outage_duration", "outage_id and outage_duration are filled together"),
    }
    assert "row 2, column session_start = '2024-05-02T10:00:00+00:00'" in str(err.value)
    assert not any(tmp_path.rglob("*.csv")) and not any(tmp_path.rglob("manifest.json"))


def test_written_bytes_bom_header_datetimes_and_manifest(tmp_path):
    written = E.write_quarter(_valid_frames(), tmp_path, "2024Q2")
    assert written.folder == tmp_path / "2024Q2"
    raw = written.files[4].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + ",".join(R.MODULE4.header).encode() + b"\n")
    assert b"\r" not in raw
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[1][3:5] == ["2024-05-03T23:00:00Z", "60.00"]
    m3 = list(csv.reader(io.StringIO(written.files[3].read_bytes().decode("utf-8-sig"))))
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r[3]) for r in m3[1:])
    for number, path in written.files.items():
        assert E.validate_file(R.MODULES[number], path) == []
    manifest = json.loads(written.manifest.read_text())
    assert {e["file"]: e["rows"] for e in manifest["files"]} == {
        "evchart_module2_2024Q2.csv": 1, "evchart_module3_2024Q2.csv": 3,
        "evchart_module4_2024Q2.csv": 1,
    }  # fmt: skip
    written.files[3].write_bytes(written.files[3].read_bytes()[3:])  # BOM lost in transit
    assert [v.rule for v in E.validate_file(R.MODULE3, written.files[3])] == [
        "file does not start with a UTF-8 BOM"
    ]


# -- the database, the CLI and the asset ----------------------------------------------------------
@pytest.fixture
def quarter_data(db):
    """Two ports at S1 with two weeks of May 2024 (the demo's span): one session, one outage
    across midnight on CP1 1/1; CP1 2/1 has neither."""
    for table in ("sessions", "uptime_daily", "outages"):
        db.execute(f"DELETE FROM analytics.{table} WHERE day < '2024-10-15'")
    db.execute("INSERT INTO site (site_id, name) VALUES ('S1', 'depot')")
    db.execute("INSERT INTO charge_point (charge_point_id, site_id) VALUES ('CP1', 'S1')")
    db.execute(
        """INSERT INTO transaction (charge_point_id, transaction_id, ocpp_version, stop_reason,
               id_token_type) VALUES ('CP1', 'T1', '2.0.1', 'Remote', 'Central')"""
    )
    db.execute(
        """INSERT INTO analytics.sessions (day, session_id, charge_point_id, transaction_id,
               site_id, evse_id, connector_id, start_ts, end_ts, energy_wh, peak_power_w)
           VALUES ('2024-05-02', 'CP1:T1', 'CP1', 'T1', 'S1', 1, 1, '2024-05-02 10:00+00',
                   '2024-05-02 11:30+00', 22000, 11000)"""
    )
    with db.cursor() as cur:
        cur.executemany(
            """INSERT INTO analytics.uptime_daily VALUES
               (%s, 'CP1', %s, 1, 'S1', 1440, %s, 0, %s)""",
            [
                (date(2024, 5, d), evse, 60.0 if (evse, d) in {(1, 3), (1, 4)} else 0.0, 100.0)
                for d in range(1, 16)
                for evse in (1, 2)
            ],
        )
    db.execute(
        """INSERT INTO analytics.outages VALUES
           ('2024-05-03', 'CP1', 1, 1, 'S1', '2024-05-03 23:00+00', '2024-05-04 00:00+00', 60,
            'faulted', false, NULL),
           ('2024-05-04', 'CP1', 1, 1, 'S1', '2024-05-04 00:00+00', '2024-05-04 01:00+00', 60,
            'faulted', false, NULL)"""
    )
    mark_ok(db, ("sessions", "uptime"), [date(2024, 5, d) for d in range(1, 16)])
    return db


def _csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def test_cli_writes_three_files_and_manifest(quarter_data, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("CHARGEOPS_NETWORK_PROVIDER", NP)
    assert main(["report", "evchart", "--quarter", "2024Q2", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "2024Q2"
    assert sorted(p.name for p in folder.iterdir()) == [
        "evchart_module2_2024Q2.csv", "evchart_module3_2024Q2.csv",
        "evchart_module4_2024Q2.csv", "manifest.json",
    ]  # fmt: skip
    m2 = _csv(folder / "evchart_module2_2024Q2.csv")
    assert m2[1] == ["S1", "CP1-1-1", NP, "CP1", "T1", "1", "2024-05-02T10:00:00Z",
                     "2024-05-02T11:30:00Z", "none", "", "22.00", "11.00", "app", ""]  # fmt: skip
    assert m2[2] == ["S1", "CP1-2-1", NP] + [""] * 11
    m3 = _csv(folder / "evchart_module3_2024Q2.csv")
    assert len(m3) == 1 + 2 * 3
    # station in its first year (data from 2024-05-01): uptime blank, totals filled
    assert [(r[1], r[5], r[6]) for r in m3[1:4]] == [
        ("CP1-1-1", "", "0.00"), ("CP1-1-1", "", "120.00"), ("CP1-1-1", "", "120.00"),
    ]  # fmt: skip
    m4 = _csv(folder / "evchart_module4_2024Q2.csv")
    assert m4[1:] == [
        ["S1", "CP1-1-1", NP, "2024-05-03T23:00:00Z", "120.00", "FALSE", "", ""],
        ["S1", "CP1-2-1", NP, "", "", "", "", ""],
    ]


def test_cli_bad_quarter_exits_2(tmp_path, capsys):
    assert main(["report", "evchart", "--quarter", "2024Q5", "--out", str(tmp_path)]) == 2
    assert "2024Q5" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_asset_materialises_the_quarter_and_the_check_passes(quarter_data, database_url, tmp_path):
    result = dg.materialize(
        [*ASSETS, *CHECKS],
        partition_key="2024-04-01",
        resources={
            "database": DatabaseResource(url=database_url),
            "reports": ReportsResource(directory=str(tmp_path)),
        },
    )
    assert result.success
    md = result.asset_materializations_for_node("evchart_files")[0].metadata
    assert md["module2_rows"].value == 2 and md["module3_rows"].value == 6
    assert md["module4_ports"].value == 2
    assert md["module3"].path.endswith("2024Q2/evchart_module3_2024Q2.csv")
    assert "no maintenance cost data" in md["module5"].value
    checks = result.get_asset_check_evaluations()
    assert [c.passed for c in checks] == [True]


def test_a_file_without_data_rows_is_rejected():
    violations = E.validate_rows(R.MODULE4, R.MODULE4.header, [], "m4.csv")
    assert [(v.row, v.rule) for v in violations] == [
        (None, "no data rows (EV-ChART rejects an empty file)")
    ]
