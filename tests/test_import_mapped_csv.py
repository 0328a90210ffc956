"""Issue 17 row 3: `chargeops import csv FILE --mapping MAP.yaml` imports an export in any CSV
layout. The fixture is the Harvard Dataverse workplace charging set's layout (provenance in
tests/fixtures/import/README.md); every expected figure is computed here from the raw file with
Python's csv and zoneinfo, not by the importer's polars code."""

import csv
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from chargeops.cli import main
from ingest.importers.common import BATCH_ROWS_ENV

FIXTURES = Path(__file__).parent / "fixtures" / "import"
SESSIONS = FIXTURES / "workplace_sessions.csv"
MAPPING = FIXTURES / "workplace_mapping.yaml"
README = Path(__file__).parent.parent / "README.md"
ZONE = ZoneInfo("America/New_York")


@pytest.fixture
def run_import(db, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return lambda *argv: main(["import", *argv])


def _utc(local: str) -> datetime:
    """`0014-11-18 15:40:26` (New York wall-clock, year written 00YY) as UTC; fold=0 is the
    first occurrence of a repeated hour and the offset before a skipped one."""
    fixed = re.sub(r"^00(\d\d)-", r"20\1-", local)
    return datetime.fromisoformat(fixed).replace(tzinfo=ZONE).astimezone(UTC)


def _file_figures() -> tuple[list[dict], Decimal, Decimal]:
    with SESSIONS.open(newline="") as f:
        rows = list(csv.DictReader(f))
    kwh = sum(Decimal(r["kwhTotal"]) for r in rows)
    dollars = sum(Decimal(r["dollars"]) for r in rows)
    return rows, kwh, dollars


def _summary(capsys) -> str:
    return " ".join(capsys.readouterr().out.split())


def test_workplace_export_imports_every_session_kwh_and_fee(run_import, db, capsys, monkeypatch):
    monkeypatch.setenv(BATCH_ROWS_ENV, "3")  # three batches: the streamed path end to end
    rows, kwh, dollars = _file_figures()
    assert (len(rows), kwh, dollars) == (8, Decimal("65.21"), Decimal("6.75"))  # the fixture
    assert run_import("csv", str(SESSIONS), "--mapping", str(MAPPING)) == 0
    out = _summary(capsys)
    for said in (
        f"rows read │ {len(rows)}",
        f"valid sessions │ {len(rows)}",
        f"imported │ {len(rows)}",
        f"kWh in valid sessions │ {kwh:,.3f}",
        f"kWh imported │ {kwh:,.3f}",
        f"fees in valid sessions (USD) │ {dollars:.2f} USD ({len(rows)})",
        f"fees imported (USD) │ {dollars:.2f} USD",
        "new sites / charge points │ 2 / 3",
    ):
        assert said in out
    assert "skipped" not in out and "kept, flagged" not in out
    stored = db.execute(
        """SELECT t.transaction_id, t.charge_point_id, t.evse_id, t.start_ts, t.stop_ts,
                  t.meter_stop_wh, t.id_token, p.amount, p.currency, c.site_id, t.source
           FROM transaction t
           JOIN charge_point c USING (charge_point_id)
           LEFT JOIN import_payment p USING (charge_point_id, transaction_id)
           ORDER BY t.transaction_id"""
    ).fetchall()
    assert stored == [
        (
            f"csv:1:{r['sessionId']}", f"wp-{r['stationId']}", 1, _utc(r["created"]),
            _utc(r["ended"]), float(Decimal(r["kwhTotal"]) * 1000), r["userId"],
            int(Decimal(r["dollars"]) * 100), "USD", f"wp-{r['locationId']}", "csv",
        )
        for r in rows
    ]  # fmt: skip
    # the session across the spring-forward night: 17:30 EST to 08:30 EDT is 14 h, as the
    # export's chargeTimeHrs says, not the 15 h of wall clock
    dst = next(r for r in rows if r["sessionId"] == "1000005")
    assert (_utc(dst["ended"]) - _utc(dst["created"])).total_seconds() / 3600 == float(
        dst["chargeTimeHrs"]
    )
    assert (
        db.execute(
            "SELECT stop_ts - start_ts FROM transaction WHERE transaction_id = 'csv:1:1000005'"
        )
        .fetchone()[0]
        .total_seconds()
        == 14 * 3600
    )
    # the zero-energy attempt is a session with 0 Wh, a SuspendedEV status, no Charging
    assert db.execute(
        """SELECT status FROM status_event WHERE charge_point_id = 'wp-100101'
           AND ts = '2014-12-02 14:00+00'"""
    ).fetchall() == [("SuspendedEV",)]
    assert db.execute(
        "SELECT site_id, timezone, country, grid_region FROM site ORDER BY site_id"
    ).fetchall() == [
        ("wp-200001", "America/New_York", "US", "US"),
        ("wp-200002", "America/New_York", "US", "US"),
    ]
    assert db.execute("SELECT format, rows_read, rows_imported FROM import_batch").fetchall() == [
        ("csv", 8, 8)
    ]
    # re-importing adds nothing
    assert run_import("csv", str(SESSIONS), "--mapping", str(MAPPING)) == 0
    assert f"already imported │ {len(rows)}" in _summary(capsys)
    assert db.execute("SELECT count(*) FROM transaction").fetchone() == (8,)


def _write(tmp_path: Path, rows: list[str], **mapping) -> tuple[Path, Path]:
    header = SESSIONS.read_text().splitlines()[0]
    data = tmp_path / "export.csv"
    data.write_text("\n".join([header, *rows]) + "\n")
    doc = {**yaml.safe_load(MAPPING.read_text()), **mapping}
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in doc.items() if v is not None}))
    return data, path


def _row(session: str, kwh: str, dollars: str, created: str, ended: str, station="100101") -> str:
    return (
        f"{session},{kwh},{dollars},{created},{ended},0,0,0,Sun,web,,1,{station},200001,"
        "0,3,0,0,0,0,0,0,1,0"
    )


def test_times_in_a_skipped_or_repeated_hour(run_import, db, tmp_path):
    """Spring-forward: 02:30 does not exist in New York on 8 March 2015; it is read with the
    offset before the change (EST). Fall-back: 01:10 and 01:50 happen twice on 1 November
    2015; the first (EDT) is taken, but a stop that would then precede its start is the
    second (EST)."""
    data, mapping = _write(
        tmp_path,
        [
            _row("1", "1.5", "0", "0015-03-08 02:30:00", "0015-03-08 04:00:00"),
            _row("2", "2", "0", "0015-11-01 01:50:00", "0015-11-01 01:10:00", station="100102"),
            _row("3", "2", "0", "0015-11-01 00:50:00", "0015-11-01 01:20:00", station="100103"),
        ],
    )
    assert run_import("csv", str(data), "--mapping", str(mapping)) == 0
    assert db.execute(
        "SELECT transaction_id, start_ts, stop_ts FROM transaction ORDER BY 1"
    ).fetchall() == [
        ("csv:1:1", _utc("2015-03-08 02:30:00"), _utc("2015-03-08 04:00:00")),  # 07:30-08:00Z
        ("csv:1:2", _utc("2015-11-01 01:50:00"), datetime(2015, 11, 1, 6, 10, tzinfo=UTC)),
        ("csv:1:3", _utc("2015-11-01 00:50:00"), _utc("2015-11-01 01:20:00")),  # both EDT
    ]
    assert _utc("2015-03-08 02:30:00") == datetime(2015, 3, 8, 7, 30, tzinfo=UTC)
    assert _utc("2015-11-01 01:50:00") == datetime(2015, 11, 1, 5, 50, tzinfo=UTC)


def test_malformed_rows_name_the_files_columns(run_import, db, tmp_path, capsys):
    data, mapping = _write(
        tmp_path,
        [
            _row("1", "7.5", "1.25", "0015-01-06 08:00:00", "0015-01-06 10:00:00"),
            _row("2", "x", "0", "0015-01-07 08:00:00", "0015-01-07 10:00:00"),
            _row("3", "2", "abc", "0015-01-08 08:00:00", "0015-01-08 10:00:00"),
            _row("4", "2", "0", "0015-01-32 08:00:00", "0015-01-09 10:00:00"),
            _row("5", "-1", "0", "0015-01-10 08:00:00", "0015-01-10 10:00:00"),
        ],
    )
    assert run_import("csv", str(data), "--mapping", str(mapping)) == 1
    out = _summary(capsys)
    for said in (
        "line 3: bad number: kwhTotal 'x'",
        "line 4: bad fee: dollars 'abc'",
        "line 5: bad date: created '0015-01-32 08:00:00'",
        "line 6: negative energy: kwhTotal '-1'",
        "imported │ 1",
        "fees imported (USD) │ 1.25 USD",
    ):
        assert said in out
    # without two_digit_years, 0015 is not taken for a year two thousand years ago
    data, mapping = _write(
        tmp_path,
        [_row("1", "7.5", "0", "0015-01-06 08:00:00", "0015-01-06 10:00:00")],
        two_digit_years=None,
    )
    assert run_import("csv", str(data), "--mapping", str(mapping)) == 1
    assert (
        "line 2: bad date: created '0015-01-06 08:00:00' (year 15: a two-digit year? set "
        "two_digit_years in the mapping)"
    ) in _summary(capsys)


HEADER = SESSIONS.read_text().splitlines()[0].replace(",", ", ")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colums": {}}, "unknown key 'colums' (keys: columns, energy_unit, "),
        (
            {"columns": {"start": "created", "stop": "ended", "energy": "kWh_total",
                         "station": "stationId"}},
            f"columns.energy: no column 'kWh_total' in the header of export.csv ({HEADER})",
        ),
        (
            {"columns": {"start": "created", "energy": "kwhTotal", "station": "stationId"}},
            "columns.stop: required (when it ended (plug-out))",
        ),
        (
            {"columns": {"start": "created", "stop": "ended", "energy": "kwhTotal",
                         "station": "stationId", "kwh": "kwhTotal"}},
            "columns.kwh: unknown field (fields: session_id, start, stop, energy, ",
        ),
        ({"energy_unit": "MWh"}, "energy_unit: 'MWh' is not kWh or Wh"),
        ({"energy_unit": None}, "energy_unit: required (kWh or Wh)"),
        ({"timezone": "America/NewYork"}, "timezone: 'America/NewYork' is not an IANA time zone"),
        ({"timezone": None}, "timezone: required, the IANA zone of the sites"),
        (
            {"datetime_format": "%Y-%m-%d %Q"},
            "datetime_format (start): '%Y-%m-%d %Q' is not a strptime format that reads a date",
        ),
        (
            {"datetime_format": {"start": "%Y-%m-%d %H:%M:%S", "stop": "%H:%M"}},
            "datetime_format (stop): '%H:%M' is not a strptime format that reads a date",
        ),
        ({"currency": None}, "currency: required with columns.fee"),
        ({"currency": "US$"}, "currency: 'US$' is not an ISO 4217 code"),
        ({"country": False}, "country: False is not text (quote it)"),  # YAML's bare NO
        ({"two_digit_years": 14}, "two_digit_years: 14 is not a year from 1900 to 2100"),
        ({"site": "workplace-1"}, "site: given as columns.site and as a constant"),
    ],
)  # fmt: skip
def test_mapping_errors_are_one_line_naming_the_key_or_column(
    run_import, db, tmp_path, capsys, change, message
):
    data, mapping = _write(tmp_path, [_row("1", "1", "0", "0015-01-06 08:00:00", "0015-01-06 09:00:00")], **change)  # fmt: skip
    assert run_import("csv", str(data), "--mapping", str(mapping)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chargeops: error: map.yaml: ") and len(err.splitlines()) == 1, err
    assert message in err
    assert db.execute("SELECT count(*) FROM import_batch").fetchone() == (0,)


def test_csv_needs_a_mapping_and_only_csv_takes_one(run_import, capsys):
    assert run_import("csv", str(SESSIONS)) == 2
    assert "import csv needs --mapping MAP.yaml" in capsys.readouterr().err
    chargepoint = FIXTURES / "chargepoint_sessions.csv"
    assert run_import("chargepoint", str(chargepoint), "--mapping", str(MAPPING)) == 2
    assert "--mapping is for import csv, not chargepoint" in capsys.readouterr().err


def test_the_readme_shows_the_fixtures_mapping():
    """The worked mapping in the README is the one this test imports."""
    text = README.read_text()
    section = text[text.index("### Any CSV layout") :]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    assert yaml.safe_load(block.group(1)) == yaml.safe_load(MAPPING.read_text())
