"""Imports that cannot blow up: a row spanning 20 years or claiming `inf` / 1e300 kWh is
rejected with its reason while the rest of the file imports, and a file is read and written in
batches (a small batch size gives exactly what one batch gives), so memory does not grow with
the file (`bench/imports.py` measures it)."""

from pathlib import Path

import polars as pl
import pytest

from chargeops.cli import main
from ingest.importers import chargepoint_csv, common, ocpi

FIXTURES = Path(__file__).parent / "fixtures" / "import"
LINES = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()
HEADER, ROW = LINES[0], LINES[4]  # 7/29/2024 20:17 - 23:20 PDT, 6.249457 kWh, event 3, port 1
TABLES = ("transaction", "meter_value", "status_event")


def _row(event: int, start: str = "7/29/2024 20:17", end: str = "7/29/2024 23:20", kwh="6.249457"):
    return (
        ROW.replace(",3,94025,", f",{event},94025,")
        .replace("7/29/2024 20:17,PDT,7/29/2024 23:20", f"{start},PDT,{end}")
        .replace(",6.249457,", f",{kwh},")
        .replace(",3:03:00,", ",,")  # no Total Duration: the End Date alone gives the stop
    )


@pytest.fixture
def run_import(db, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return lambda *argv: main(["import", *argv])


def _counts(db) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_a_row_spanning_twenty_years_is_rejected_and_the_rest_imported(
    run_import, db, tmp_path, capsys
):
    path = tmp_path / "export.csv"
    decades = _row(7, start="1/1/2004 0:00", end="1/1/2024 0:00")  # 157-byte-class row, 20 y
    path.write_text("\n".join([HEADER, _row(3), decades]) + "\n")
    assert run_import("chargepoint", str(path)) == 1
    out = capsys.readouterr().out
    assert "line 3: session too long: 7305.0 days, at most 7 days" in out
    assert db.execute("SELECT transaction_id FROM transaction").fetchall() == [("cp:1:3",)]
    # only the good session's register samples: Begin, the knot, clock samples, End
    assert db.execute(
        "SELECT count(*), count(DISTINCT transaction_id) FROM meter_value"
    ).fetchone() == (15, 1)
    assert db.execute(
        "SELECT rows_read, rows_imported, rows_skipped FROM import_batch"
    ).fetchall() == [(2, 1, 1)]


@pytest.mark.parametrize("kwh", ["inf", "1e300", "-inf", "1e308"])
def test_non_finite_or_implausible_energy_is_rejected(run_import, db, tmp_path, capsys, kwh):
    path = tmp_path / "export.csv"
    path.write_text("\n".join([HEADER, _row(3), _row(4, "7/30/2024 8:00", "7/30/2024 9:00", kwh)]))
    assert run_import("chargepoint", str(path)) == 1
    out = capsys.readouterr().out
    reason = "negative energy" if kwh == "-inf" else "implausible energy"
    assert f"line 3: {reason}" in out
    assert db.execute("SELECT transaction_id, meter_stop_wh FROM transaction").fetchall() == [
        ("cp:1:3", 6249.457)
    ]
    assert db.execute("SELECT max(value) FROM meter_value").fetchone() == (6249.457,)


def _export(n: int) -> str:
    """n back-to-back sessions on two ports, a duplicate and an overlap in later batches."""
    rows = []
    for i in range(n):
        day = 1 + i // 4
        hour = 2 * (i % 4) + 8
        rows.append(
            _row(100 + i, f"8/{day}/2024 {hour}:00", f"8/{day}/2024 {hour + 1}:30", f"{1 + i}.5")
        )
    rows.append(rows[1])  # a duplicate of an early session, far from it
    rows.append(_row(999, "8/1/2024 9:00", "8/1/2024 9:45"))  # overlaps session 100 (8:00-9:30)
    return "\n".join([HEADER, *rows]) + "\n"


def test_batches_give_what_one_batch_gives(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(_export(11))
    whole = chargepoint_csv.parse(path)
    streamed = common.stream(chargepoint_csv.parse_batches, path, rows=3)
    frames = list(streamed.batches())
    # 13 rows in batches of 3; the duplicate (line 13) has no valid session, the overlap
    # (line 14, alone in the last batch) is kept on another connector
    assert [f.height for f in frames] == [3, 3, 3, 2, 1]
    assert streamed.rows_read == whole.rows_read == 13
    assert streamed.duplicates == whole.duplicates == 1
    assert streamed.errors == whole.errors == []
    assert streamed.flags == whole.flags and [f.line for f in whole.flags] == [14]
    assert pl.concat(frames).equals(whole.sessions)
    assert streamed.sessions.height == whole.sessions.height == 12


@pytest.mark.parametrize("name", ["ocpi_cdrs.jsonl", "ocpi_malformed.jsonl"])
def test_ocpi_lines_in_batches_of_one_give_the_whole_file(name):
    whole = ocpi.parse(FIXTURES / name)
    streamed = common.stream(ocpi.parse_batches, FIXTURES / name, rows=1)
    frames = list(streamed.frames())
    assert len(frames) == whole.sessions.height > 0
    assert pl.concat(frames).equals(whole.sessions)
    assert (streamed.errors, streamed.rows_read) == (whole.errors, whole.rows_read)


SNAPSHOT = {
    "transaction": "SELECT charge_point_id, transaction_id, evse_id, connector_id, start_ts, "
    "stop_ts, meter_stop_wh FROM transaction ORDER BY 1, 2",
    "meter_value": "SELECT transaction_id, ts, value, context FROM meter_value ORDER BY 1, 2",
    "status_event": "SELECT charge_point_id, evse_id, ts, status FROM status_event ORDER BY 1, 2, 3",
    "charge_point": "SELECT charge_point_id, site_id, registered_at FROM charge_point ORDER BY 1",
    "import_payment": "SELECT session_id, amount, currency, line FROM import_payment ORDER BY 1",
}


def test_a_small_batch_size_imports_the_same_rows(run_import, db, tmp_path, monkeypatch):
    path = tmp_path / "export.csv"
    path.write_text(_export(11))
    assert run_import("chargepoint", str(path)) == 0  # a duplicate and a kept overlap
    one = {t: db.execute(q).fetchall() for t, q in SNAPSHOT.items()}
    flag = "SELECT line, transaction_id, reason, energy_wh FROM import_flag"
    flags = db.execute(flag).fetchall()
    assert flags == [(14, "cp:1:999", "overlap: kept on an added connector", 6249.457)]
    for t in ("meter_value", "status_event", "transaction", "connector", "evse", "charge_point"):
        db.execute(f"DELETE FROM {t}")
    db.execute("DELETE FROM import_flag")
    db.execute("DELETE FROM import_payment")
    db.execute("DELETE FROM import_batch")
    monkeypatch.setenv(common.BATCH_ROWS_ENV, "2")
    assert run_import("chargepoint", str(path)) == 0
    assert {t: db.execute(q).fetchall() for t, q in SNAPSHOT.items()} == one
    assert db.execute(flag).fetchall() == flags
    assert len(one["transaction"]) == 12
    assert db.execute(
        "SELECT rows_read, rows_imported, rows_skipped FROM import_batch"
    ).fetchall() == [(13, 12, 1)]
