"""The import parsers on hand-written fixtures with each format's quirks, without a database:
exact UTC instants, knots of the energy profile, malformed rows by line number."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from chargeops.cli import main
from chargeops.settings import ConfigError
from ingest.importers import chargepoint_csv, parse_file, parser_for
from ingest.importers.common import meter_frame, status_frame

FIXTURES = Path(__file__).parent / "fixtures" / "import"


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def _errors(parsed) -> list[tuple[int, str]]:
    return [(e.line, e.reason) for e in parsed.errors]


def test_chargepoint_bom_and_local_times_across_dst_changes():
    p = parse_file("chargepoint", FIXTURES / "chargepoint_sessions.csv")
    assert p.errors == [] and p.rows_read == 4
    s = p.sessions
    # BOM stripped: the first header (Station Name) was found, MAC Address is the charge point
    assert s["charge_point_id"].to_list() == ["000D:6F00:015A:9D76"] * 3 + ["000D:6F00:015A:0001"]
    assert s.select("start_ts", "stop_ts").rows() == [
        # 11/2 23:30 PDT (UTC-7) .. 11/3 01:30 PST (UTC-8): 3 hours, not the 2 on the wall clock
        (T("2024-11-03 06:30"), T("2024-11-03 09:30")),
        # the first 01:15 (PDT) .. the second 01:45 (PST)
        (T("2024-11-03 08:15"), T("2024-11-03 09:45")),
        # 3/9 22:00 PST .. 3/10 03:30 PDT (02:00-03:00 does not exist that night)
        (T("2024-03-10 06:00"), T("2024-03-10 10:30")),
        # the layout's own example style, 7/29 20:17 PDT
        (T("2024-07-30 03:17"), T("2024-07-30 06:20")),
    ]
    assert s["energy_wh"].to_list() == [12500.0, 3250.0, 7000.0, 6249.457]
    assert s["transaction_id"].to_list() == ["cp:1:101", "cp:2:102", "cp:1:55", "cp:1:3"]
    assert s.select("evse_id", "connector_id").rows() == [(1, 1), (2, 1), (1, 1), (1, 1)]
    # charging ended `Charging Time` after the start
    assert s["knot_ts"].to_list()[0] == [T("2024-11-03 08:30")]
    assert s["knot_ts"].to_list()[3] == [T("2024-07-30 05:11:03")]
    assert s["site_id"].unique().sort().to_list() == [
        "palo-alto-400-hamilton-ave",
        "palo-alto-520-webster-st",
    ]
    assert set(s["site_timezone"]) == {"America/Los_Angeles"}
    assert set(s["site_country"]) == {"US"}
    assert s["site_name"][0] == "400 Hamilton Ave, Palo Alto (City of Palo Alto)"
    assert s["current_type"].to_list() == ["AC"] * 4


def test_chargepoint_malformed_rows_are_reported_by_line():
    p = parse_file("chargepoint", FIXTURES / "chargepoint_malformed.csv")
    assert p.rows_read == 7
    assert _errors(p) == [
        (3, "missing field"),
        (4, "bad number"),
        (6, "bad date"),
        (8, "wrong number of fields"),
    ]
    assert str(p.errors[0]) == "line 3: missing field: Start Date"
    assert str(p.errors[1]) == "line 4: bad number: Energy (kWh) 'abc'"
    assert str(p.errors[2]) == "line 6: bad date: Start Date '13/45/2024 25:00'"
    # line 5 ends (17:00) before it starts (18:00), but its Total Duration says 1 h: kept, the
    # stop from the duration, flagged (issue 17 row 8)
    assert [(f.line, f.reason) for f in p.flags] == [(5, chargepoint_csv.END_CONTRADICTS)]
    assert p.sessions["line"].to_list() == [2, 5, 7]
    assert p.sessions.filter(line=5)["stop_ts"].to_list() == [T("2024-08-02 02:00")]
    assert p.sessions["energy_wh"].sum() == 8500.0


def test_acn_rfc2822_gmt_and_null_done_charging_time():
    p = parse_file("acn", FIXTURES / "acn_sessions.json")
    assert p.errors == [] and p.rows_read == 3
    s = p.sessions
    assert s["line"].to_list() == [2, 28, 43]  # the line each object starts on
    assert s.select("start_ts", "stop_ts").rows() == [
        (T("2024-07-15 15:00"), T("2024-07-16 01:00")),
        (T("2024-07-15 22:00"), T("2024-07-16 02:00")),
        (T("2024-07-16 16:30"), T("2024-07-16 18:00")),
    ]
    # done inside the plug-in: a knot; null: none; after the disconnect: ignored
    assert s["knot_ts"].to_list() == [[T("2024-07-15 19:00")], [], []]
    assert s["charge_point_id"].to_list() == ["2-39-78-362", "2-39-79-380", "2-39-78-362"]
    assert s["transaction_id"][0] == "acn:2_39_78_362_2024-07-15 14:59:51.103826"
    assert s["id_token"].to_list() == ["000000915", None, "000001746"]
    assert set(s["site_id"]) == {"acn-0002"} and s["site_name"][0] == "ACN JPL (site 0002)"


def test_acn_malformed_items_are_reported_by_line():
    p = parse_file("acn", FIXTURES / "acn_malformed.json")  # the API's {"_items": [...]} form
    assert p.rows_read == 7
    assert _errors(p) == [
        (5, "missing field"),
        (8, "bad date"),
        (11, "end before start"),
        (14, "bad number"),
        (17, "not an object"),
    ]
    assert p.sessions["source_id"].to_list() == ["good-1", "good-2"]


def test_ocpi_charging_periods_make_the_energy_profile():
    p = parse_file("ocpi", FIXTURES / "ocpi_cdrs.jsonl")
    assert p.errors == [] and p.rows_read == 2  # the blank line is not a row
    s = p.sessions
    assert s["line"].to_list() == [1, 3]
    assert s["transaction_id"].to_list() == ["ocpi:NL:ABC:CDR-1", "ocpi:NL:ABC:CDR-2"]
    # 6 kWh in the first period, 4 in the second, the PARKING_TIME period flat
    assert s["knot_ts"][0].to_list() == [T("2024-06-01 23:00"), T("2024-06-02 01:00")]
    assert s["knot_wh"][0].to_list() == [6000.0, 10000.0]
    # no ENERGY dimension: the session less total_parking_time (0.5 h); +02:00 honoured
    assert s.select("start_ts", "stop_ts").row(1) == (T("2024-06-02 08:00"), T("2024-06-02 10:00"))
    assert s["knot_ts"][1].to_list() == [T("2024-06-02 09:30")]
    assert s.select("charge_point_id", "connector_id", "site_id", "site_timezone").rows() == [
        ("NL-ABC-E1", 2, "LOC-AMS-1", "Europe/Amsterdam"),
        ("NL-ABC-E2", 1, "LOC-AMS-1", "Europe/Amsterdam"),
    ]
    assert s["site_country"].to_list() == ["NL", "NL"]
    assert s["current_type"].to_list() == ["AC", "DC"]


def test_ocpi_malformed_lines():
    p = parse_file("ocpi", FIXTURES / "ocpi_malformed.jsonl")
    assert _errors(p) == [
        (2, "invalid JSON"),
        (3, "charging periods disagree with total_energy"),
        (4, "missing field"),
        (5, "bad date"),
        (6, "bad charging period"),
    ]
    assert p.sessions["source_id"].to_list() == ["OK-1"]


def test_register_profile_has_clock_samples_across_midnight():
    s = parse_file("acn", FIXTURES / "acn_sessions.json").sessions
    m = meter_frame(s).filter(pl.col("charge_point_id") == "2-39-79-380").sort("ts")
    # 22:00 -> 02:00, 8 kWh, no done time: linear, a sample every 15 minutes
    assert m.height == 17
    assert m["context"][0] == "Transaction.Begin" and m["context"][-1] == "Transaction.End"
    assert set(m["context"][1:-1]) == {"Sample.Clock"}
    assert m.filter(pl.col("ts") == T("2024-07-16 00:00"))["value"].to_list() == [4000.0]
    assert m["value"].to_list()[-1] == 8000.0
    assert m["value"].diff().min() >= 0
    # S1 charges 15:00-19:00 then stays plugged in: flat after the done knot
    m1 = meter_frame(s).filter(pl.col("transaction_id").str.contains("07-15 14:59"))
    assert m1.filter(pl.col("ts") == T("2024-07-15 17:00"))["value"].to_list() == [10000.0]
    assert m1.filter(pl.col("ts") >= T("2024-07-15 19:00"))["value"].unique().to_list() == [20000.0]
    st = status_frame(s).filter(pl.col("charge_point_id") == "2-39-78-362")
    assert st.select("ts", "status").rows() == [
        (T("2024-07-15 15:00"), "Charging"),
        (T("2024-07-15 19:00"), "SuspendedEV"),
        (T("2024-07-16 01:00"), "Available"),
        (T("2024-07-16 16:30"), "Charging"),
        (T("2024-07-16 18:00"), "Available"),
    ]


def test_bad_file_or_format_is_a_one_line_error(capsys):
    with pytest.raises(ConfigError, match="unknown import format"):
        parser_for("xml")
    assert main(["import", "acn", str(FIXTURES / "missing.json")]) == 2
    assert (
        capsys.readouterr().err.strip().endswith("no such file: " + str(FIXTURES / "missing.json"))
    )
    assert main(["import", "chargepoint", str(FIXTURES / "acn_sessions.json")]) == 2
    assert "not a ChargePoint session export" in capsys.readouterr().err
    assert main(["import", "acn", str(FIXTURES / "chargepoint_sessions.csv")]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["import", "ocpi", str(FIXTURES / "chargepoint_sessions.csv")]) == 2
    assert "not JSON lines" in capsys.readouterr().err


def test_duplicates_in_file_and_overlaps_on_a_connector(tmp_path):
    lines = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()
    header, row = lines[0], lines[4]  # 7/29 20:17 - 23:20 PDT, event 3, port 1
    row = row.replace(",3:03:00,", ",,")  # no Total Duration: the End Date gives the stop
    overlap = row.replace("7/29/2024 20:17", "7/29/2024 23:00").replace(",3,94025,", ",4,94025,")
    after = row.replace("7/29/2024 20:17", "7/29/2024 23:20").replace(",3,94025,", ",5,94025,")
    after = after.replace(
        "7/29/2024 23:20,PDT,7/29/2024 23:20", "7/29/2024 23:20,PDT,7/30/2024 1:00"
    )
    path = tmp_path / "export.csv"
    path.write_text("\n".join([header, row, row, overlap, after]) + "\n")
    p = parse_file("chargepoint", path)
    assert p.rows_read == 4 and p.duplicates == 1  # line 3 repeats line 2's session
    # the overlap is kept, on an added connector of its port (the station has no other port)
    assert _errors(p) == []
    assert [(f.line, f.reason, f.detail) for f in p.flags] == [
        (4, "overlap: kept on an added connector",
         "overlaps line 2 on EVSE 1 connector 1; stored on EVSE 1 connector 2"),
    ]  # fmt: skip
    # back to back (the next one starts when the first stops) is fine
    assert p.sessions.select("transaction_id", "evse_id", "connector_id").rows() == [
        ("cp:1:3", 1, 1), ("cp:1:4", 1, 2), ("cp:1:5", 1, 1),
    ]  # fmt: skip


def test_a_same_id_row_with_other_content_is_an_error_naming_both_lines(tmp_path):
    """Issue 17 row 6: a corrected row in the same file is not dropped like an exact duplicate."""
    lines = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()
    header, row = lines[0], lines[4]  # event 3, 6.249457 kWh
    corrected = row.replace(",6.249457,", ",7.5,")
    path = tmp_path / "export.csv"
    path.write_text("\n".join([header, row, row, corrected]) + "\n")
    p = parse_file("chargepoint", path)
    assert p.rows_read == 3 and p.duplicates == 1  # line 3: the same row again
    assert [str(e) for e in p.errors] == [
        "line 4: same session id as an earlier row, other content: cp:1:3: line 2 has EVSE 1 "
        "connector 1, 2024-07-30T03:17:00Z .. 2024-07-30T06:20:00Z, 6249.457 Wh, fee 0.00 USD, "
        "this line EVSE 1 connector 1, 2024-07-30T03:17:00Z .. 2024-07-30T06:20:00Z, 7500.0 Wh, "
        "fee 0.00 USD"
    ]
    assert p.sessions["energy_wh"].to_list() == [6249.457]


def test_contradictory_end_date_and_duration_trust_the_duration_and_say_so(tmp_path):
    """Issue 17 row 8: an export whose End Date disagrees with Start Date + Total Duration (an
    End Date labelled PDT after the fall-back, one in another format) was refused row by row as
    "bad date". The rows are kept, the stop from the duration, each flagged naming both."""
    lines = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()
    header, row = lines[0], lines[4]  # 7/29/2024 20:17 PDT .. 23:20 PDT, Total Duration 3:03:00
    agrees = row.replace(",3,94025,", ",31,94025,").replace(",3:03:00,", ",3:03:32,")
    wrong_label = row.replace(",3,94025,", ",32,94025,").replace(
        "7/29/2024 20:17,PDT,7/29/2024 23:20,PDT", "11/2/2024 23:30,PDT,11/3/2024 1:33,PDT"
    )  # 1:33 PST is 3:03 after 23:30 PDT; labelled PDT it is an hour early
    other_format = row.replace(",3,94025,", ",33,94025,").replace(
        "7/29/2024 20:17,PDT,7/29/2024 23:20,", "7/30/2024 8:00,PDT,2024-07-30 11:03,"
    )  # an End Date in another format: the duration gives the stop
    no_duration = (
        row.replace(",3,94025,", ",34,94025,")
        .replace(",3:03:00,", ",,")
        .replace("7/29/2024 20:17,PDT,7/29/2024 23:20,", "7/31/2024 20:17,PDT,7/31/2024 19:20,")
    )  # ends before it starts, and nothing else tells the stop: malformed
    path = tmp_path / "export.csv"
    path.write_text("\n".join([header, agrees, wrong_label, other_format, no_duration]) + "\n")
    p = parse_file("chargepoint", path)
    assert [(e.line, e.reason) for e in p.errors] == [(5, "end before start")]
    assert [(f.line, f.reason) for f in p.flags] == [
        (3, chargepoint_csv.END_CONTRADICTS),
        (4, chargepoint_csv.END_UNREADABLE),
    ]
    assert str(p.flags[0]) == (
        "line 3: end date contradicts total duration: trusted the duration: End Date "
        "'11/3/2024 1:33 PDT' is -3600 s from Start Date '11/2/2024 23:30 PDT' + Total Duration "
        "3:03:00; an elapsed time no clock change or zone label shifts"
    )
    assert p.sessions.select("line", "start_ts", "stop_ts").rows() == [
        (2, T("2024-07-30 03:17"), T("2024-07-30 06:20")),  # 32 s apart: the End Date stands
        (3, T("2024-11-03 06:30"), T("2024-11-03 09:33")),
        (4, T("2024-07-30 15:00"), T("2024-07-30 18:03")),
    ]
