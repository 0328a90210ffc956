"""`chargeops import` end to end on a real PostgreSQL: the hand-written fixtures through the
`sessions`, `energy` and utilisation assets (dagster.materialize), idempotency, malformed rows,
--strict, --dry-run and --site. Expected figures are computed by hand in the comments."""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from chargeops.cli import main
from pipelines.defs.analytics.assets import ASSETS
from pipelines.defs.analytics.checks import CHECKS
from pipelines.resources import DatabaseResource

FIXTURES = Path(__file__).parent / "fixtures" / "import"
TABLES = (
    "site", "charge_point", "evse", "connector", "transaction", "meter_value", "status_event",
    "import_batch",
)  # fmt: skip


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.fixture
def run_import(db, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*argv: str) -> int:
        return main(["import", *argv])

    return run


def _counts(db) -> dict[str, int]:
    return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _materialize(
    url: str, days: list[date], selection: list[str], *, warnings_ok: bool = False
) -> None:
    """The assets and their checks, day by day; every check must pass on imported data (of
    ERROR severity only, with `warnings_ok`)."""
    for day in days:
        result = dg.materialize(
            [*ASSETS, *CHECKS],
            partition_key=day.isoformat(),
            resources={"database": DatabaseResource(url=url)},
            selection=dg.AssetSelection.assets(*selection),
            raise_on_error=False,
        )
        assert result.success, day
        evaluations = result.get_asset_check_evaluations()
        assert evaluations
        failed = [
            e.check_name
            for e in evaluations
            if not e.passed and not (warnings_ok and e.severity == dg.AssetCheckSeverity.WARN)
        ]
        assert failed == [], day


def _per_day(db, sql: str, days: list[date]) -> dict[str, tuple]:
    """Rows of `sql` for these days (analytics tables keep other tests' days)."""
    return {str(r[0]): tuple(r[1:]) for r in db.execute(sql, (days,)).fetchall()}


SESSIONS_BY_DAY = """SELECT day, count(*), round(sum(energy_wh)::numeric, 6)::float8
                     FROM analytics.sessions WHERE day = ANY(%s) GROUP BY day ORDER BY day"""
ENERGY_BY_DAY = """SELECT day, round(sum(energy_kwh)::numeric, 6)::float8, sum(sessions)::int
                   FROM analytics.energy_site_day WHERE day = ANY(%s) GROUP BY day ORDER BY day"""


def test_chargepoint_export_through_sessions_and_energy(run_import, db, database_url):
    assert run_import("chargepoint", str(FIXTURES / "chargepoint_sessions.csv")) == 0
    days = [date(2024, 3, 10), date(2024, 7, 30), date(2024, 11, 3)]
    _materialize(database_url, days, ["sessions", "energy"])
    assert _per_day(db, SESSIONS_BY_DAY, days) == {
        "2024-03-10": (1, 7000),
        "2024-07-30": (1, 6249.457),
        "2024-11-03": (2, 15750),  # 12.5 + 3.25 kWh, both inside the UTC day
    }
    assert _per_day(db, ENERGY_BY_DAY, days) == {
        "2024-03-10": (7, 1),
        "2024-07-30": (6.249457, 1),
        "2024-11-03": (15.75, 2),
    }
    rows = db.execute(
        """SELECT start_ts, end_ts, duration_min, charging_end_ts, idle_min, energy_source,
                  site_id, plug_out_ts
           FROM analytics.sessions WHERE day = '2024-11-03' ORDER BY start_ts"""
    ).fetchall()
    assert rows == [
        # 23:30 PDT -> 01:30 PST is 180 minutes; charging 2 h, then idle 1 h
        (T("2024-11-03 06:30"), T("2024-11-03 09:30"), 180.0, T("2024-11-03 08:30"), 60.0,
         "meter", "palo-alto-400-hamilton-ave", T("2024-11-03 09:30")),
        (T("2024-11-03 08:15"), T("2024-11-03 09:45"), 90.0, T("2024-11-03 09:00"), 45.0,
         "meter", "palo-alto-400-hamilton-ave", T("2024-11-03 09:45")),
    ]  # fmt: skip
    tx = db.execute(
        "SELECT DISTINCT source, ocpp_version, import_batch_id IS NOT NULL FROM transaction"
    ).fetchall()
    assert tx == [("chargepoint", "import", True)]
    site = db.execute(
        "SELECT name, timezone, country FROM site WHERE site_id = 'palo-alto-400-hamilton-ave'"
    ).fetchone()
    assert site == ("400 Hamilton Ave, Palo Alto (City of Palo Alto)", "America/Los_Angeles", "US")
    cp = db.execute(
        """SELECT site_id, vendor, model, current_type, registered_at, source FROM charge_point
           WHERE charge_point_id = '000D:6F00:015A:9D76'"""
    ).fetchone()
    assert cp == (
        "palo-alto-400-hamilton-ave", "ChargePoint", "CT4020-HD-GW", "AC",
        T("2024-03-10 06:00"), "chargepoint",
    )  # fmt: skip
    assert db.execute(
        "SELECT connector_type FROM connector WHERE charge_point_id = '000D:6F00:015A:9D76'"
    ).fetchall() == [("J1772",), ("J1772",)]


def test_acn_sessions_through_sessions_energy_and_utilisation(run_import, db, database_url):
    assert run_import("acn", str(FIXTURES / "acn_sessions.json")) == 0
    days = [date(2024, 7, 15), date(2024, 7, 16)]
    _materialize(database_url, days, ["connector_states", "sessions", "utilisation", "energy"])
    assert _per_day(db, SESSIONS_BY_DAY, days) == {
        "2024-07-15": (2, 28000),
        "2024-07-16": (1, 3300),
    }
    # S1 15:00-19:00 20 kWh; S2 22:00-02:00 8 kWh linear (4 before midnight); S3 3.3 kWh
    assert _per_day(db, ENERGY_BY_DAY, days) == {"2024-07-15": (24, 2), "2024-07-16": (7.3, 1)}
    s1 = db.execute(
        """SELECT charging_end_ts, idle_min, plug_out_ts, mean_power_w FROM analytics.sessions
           WHERE charge_point_id = '2-39-78-362' AND day = '2024-07-15'"""
    ).fetchone()
    assert s1 == (T("2024-07-15 19:00"), 360.0, T("2024-07-16 01:00"), 5000.0)
    # 15 July: charging 15-19 (S1) and 22-24 (S2); S1 suspended (plugged in, done) 19-24
    util = db.execute(
        """SELECT site_id, connectors, charging_hours, suspended_hours
           FROM analytics.utilisation_site_day WHERE day = '2024-07-15'"""
    ).fetchall()
    assert util == [("acn-0002", 2, 6.0, 5.0)]
    hour = db.execute(
        """SELECT minutes_charging, minutes_suspended FROM analytics.utilisation_hourly
           WHERE charge_point_id = '2-39-78-362' AND hour_ts = '2024-07-15 19:00+00'"""
    ).fetchone()
    assert hour == (0.0, 60.0)
    # the 15-minute load curve follows the profile: S2 delivers 2 kWh per hour
    curve = db.execute(
        """SELECT energy_kwh FROM analytics.load_curve
           WHERE site_id = 'acn-0002' AND interval_start = '2024-07-15 23:00+00'"""
    ).fetchone()
    assert curve == (pytest.approx(0.5),)


def test_ocpi_cdrs_periods_through_the_load_curve(run_import, db, database_url):
    assert run_import("ocpi", str(FIXTURES / "ocpi_cdrs.jsonl")) == 0
    days = [date(2024, 6, 1), date(2024, 6, 2)]
    _materialize(database_url, days, ["sessions", "energy"])
    assert _per_day(db, SESSIONS_BY_DAY, days) == {
        "2024-06-01": (1, 10000),
        "2024-06-02": (1, 5500),
    }
    # CDR-1: 6 kWh 22-23 h, 4 kWh 23-01 h (2 on each day); CDR-2: 5.5 kWh on 2 June
    assert _per_day(db, ENERGY_BY_DAY, days) == {"2024-06-01": (8, 1), "2024-06-02": (7.5, 1)}
    curve = dict(
        db.execute(
            """SELECT extract(hour FROM interval_start)::int, sum(energy_kwh)
               FROM analytics.load_curve WHERE day = '2024-06-01' AND energy_kwh > 0
               GROUP BY 1 ORDER BY 1"""
        ).fetchall()
    )
    assert curve == {22: pytest.approx(6.0), 23: pytest.approx(2.0)}
    assert db.execute(
        "SELECT evse_id, connector_id, connector_type FROM connector "
        "WHERE charge_point_id = 'NL-ABC-E1'"
    ).fetchall() == [(1, 2, "IEC_62196_T2")]


def test_reimport_changes_nothing(run_import, db, capsys):
    for fmt, name in (("acn", "acn_sessions.json"), ("ocpi", "ocpi_cdrs.jsonl")):
        assert run_import(fmt, str(FIXTURES / name)) == 0
    first = _counts(db)
    capsys.readouterr()
    for fmt, name in (("acn", "acn_sessions.json"), ("ocpi", "ocpi_cdrs.jsonl")):
        assert run_import(fmt, str(FIXTURES / name)) == 0
    out = capsys.readouterr().out
    assert _counts(db) == first
    assert first["transaction"] == 5 and first["import_batch"] == 2
    assert "already imported" in out and "(existing)" in out
    batches = db.execute(
        "SELECT format, rows_read, rows_imported, round(energy_wh)::int FROM import_batch ORDER BY 1"
    ).fetchall()
    assert batches == [("acn", 3, 3, 31300), ("ocpi", 2, 2, 15500)]


def test_malformed_rows_skipped_and_the_rest_imported(run_import, db, capsys):
    assert run_import("chargepoint", str(FIXTURES / "chargepoint_malformed.csv")) == 1
    out = capsys.readouterr().out
    for line in (
        "line 3: missing field: Start Date",
        "line 4: bad number: Energy (kWh) 'abc'",
        "kept: line 5: end date contradicts total duration: trusted the duration",
        "line 6: bad date: Start Date '13/45/2024 25:00'",
        "line 8: wrong number of fields: 5 fields, the header has 33",
    ):
        assert line in out
    tx = db.execute(
        "SELECT transaction_id, meter_stop_wh FROM transaction ORDER BY transaction_id"
    ).fetchall()
    assert tx == [("cp:1:201", 5000.0), ("cp:1:204", 1000.0), ("cp:2:206", 2500.0)]
    assert db.execute(
        "SELECT rows_read, rows_imported, rows_skipped FROM import_batch"
    ).fetchall() == [(7, 3, 4)]


def test_strict_imports_nothing_when_a_row_is_malformed(run_import, db, capsys):
    assert run_import("acn", str(FIXTURES / "acn_malformed.json"), "--strict") == 1
    out = capsys.readouterr().out
    assert "nothing imported" in out and "line 14: bad number: kWhDelivered 'lots'" in out
    assert all(n == 0 for n in _counts(db).values())
    # the same file without --strict: the two good sessions
    assert run_import("acn", str(FIXTURES / "acn_malformed.json")) == 1
    assert _counts(db)["transaction"] == 2


def test_dry_run_writes_nothing(run_import, db, capsys):
    assert run_import("ocpi", str(FIXTURES / "ocpi_cdrs.jsonl"), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "dry run: nothing written" in out
    assert "imported" in out and "15.500" in out
    assert all(n == 0 for n in _counts(db).values())


def test_site_option_puts_every_charge_point_at_that_site(run_import, db):
    db.execute("INSERT INTO site (site_id, name, timezone) VALUES ('HQ', 'Head office', 'UTC')")
    assert run_import("ocpi", str(FIXTURES / "ocpi_cdrs.jsonl"), "--site", "HQ") == 0
    assert db.execute("SELECT DISTINCT site_id FROM charge_point").fetchall() == [("HQ",)]
    assert db.execute("SELECT site_id, name, timezone FROM site").fetchall() == [
        ("HQ", "Head office", "UTC")  # an existing site is left as it is
    ]
    assert run_import("acn", str(FIXTURES / "acn_sessions.json"), "--site", "jpl") == 0
    assert db.execute("SELECT name, timezone FROM site WHERE site_id = 'jpl'").fetchone() == (
        "ACN JPL (site 0002)",
        "America/Los_Angeles",
    )


def test_backfill_materialises_imported_days_into_the_ui_instance(
    run_import, db, database_url, tmp_path, monkeypatch, capsys
):
    """`chargeops backfill` after an import: the day's sessions and energy through every daily
    asset and check, recorded in the Dagster instance `make ui` opens; bad ranges exit 2."""
    monkeypatch.setenv("CHARGEOPS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))  # restored after the test
    assert run_import("chargepoint", str(FIXTURES / "chargepoint_sessions.csv")) == 0
    assert "chargeops backfill --from 2024-03-10" in capsys.readouterr().out
    assert main(["backfill", "--from", "2024-11-03"]) == 0
    assert _per_day(db, ENERGY_BY_DAY, [date(2024, 11, 3)]) == {"2024-11-03": (15.75, 2)}
    assert (tmp_path / "dagster" / "history").is_dir()  # runs recorded for the UI
    assert main(["backfill", "--from", "2024-11-03", "--to", "2024-11-01"]) == 2
    assert main(["backfill", "--from", "yesterday"]) == 2


def _cp_row(event: int, port: int, start: str, end: str, kwh: str) -> str:
    """A row of the ChargePoint fixture (line 5: Webster #1, 7/29/2024, PDT) moved in time."""
    row = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()[4]
    return (
        row.replace(",3,94025,", f",{event},94025,")
        .replace("7/29/2024 20:17,PDT,7/29/2024 23:20", f"{start},PDT,{end}")
        .replace(",6.249457,", f",{kwh},")
        .replace(",Level 2,1,J1772,", f",Level 2,{port},J1772,")
        .replace(",3:03:00,", ",,")  # no Total Duration: the End Date alone gives the stop
    )


def test_overlapping_sessions_are_kept_flagged_and_counted(
    run_import, db, database_url, capsys, tmp_path
):
    """Issue 17 row 1: two plugs recorded on one port. The second session moves to the free port
    2; a third, overlapping both, goes on an added connector of port 1. All three are counted."""
    header = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    rows = [
        _cp_row(10, 1, "8/1/2024 8:00", "8/1/2024 10:00", "5.0"),  # 15:00-17:00 UTC
        _cp_row(11, 1, "8/1/2024 9:00", "8/1/2024 11:00", "4.0"),  # overlaps 10; port 2 free
        _cp_row(12, 1, "8/1/2024 9:30", "8/1/2024 12:00", "3.0"),  # overlaps 10 and 11
        _cp_row(13, 2, "8/1/2024 11:00", "8/1/2024 12:30", "2.5"),  # port 2 after 11: unmoved
    ]
    path = tmp_path / "overlaps.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    assert run_import("chargepoint", str(path), "--strict") == 1
    refusal = "nothing imported: --strict and the file has malformed or flagged rows"
    assert refusal in capsys.readouterr().out
    assert db.execute("SELECT count(*) FROM transaction").fetchone() == (0,)
    assert run_import("chargepoint", str(path)) == 0
    out = capsys.readouterr().out
    assert "kept: line 3: overlap: kept on another connector" in out  # then the table wraps
    assert "1 (4.000 kWh)" in out and "1 (3.000 kWh)" in out and "14.500" in out
    assert db.execute(
        "SELECT transaction_id, evse_id, connector_id FROM transaction ORDER BY 1"
    ).fetchall() == [("cp:1:10", 1, 1), ("cp:1:11", 2, 1), ("cp:1:12", 1, 2), ("cp:2:13", 2, 1)]
    assert db.execute(
        "SELECT line, transaction_id, reason, detail, energy_wh FROM import_flag ORDER BY line"
    ).fetchall() == [
        (3, "cp:1:11", "overlap: kept on another connector of its charge point",
         "overlaps line 2 on EVSE 1 connector 1; stored on EVSE 2 connector 1", 4000.0),
        (4, "cp:1:12", "overlap: kept on an added connector",
         "overlaps line 2 on EVSE 1 connector 1; stored on EVSE 1 connector 2", 3000.0),
    ]  # fmt: skip
    days = [date(2024, 8, 1)]
    _materialize(database_url, days, ["connector_states", "sessions", "utilisation", "energy"])
    assert _per_day(db, SESSIONS_BY_DAY, days) == {"2024-08-01": (4, 14500)}
    assert _per_day(db, ENERGY_BY_DAY, days) == {"2024-08-01": (14.5, 4)}


def test_reimports_refuse_corrections_and_find_sessions_without_ids(
    run_import, db, capsys, tmp_path
):
    """Issue 17 row 6: a corrected re-export is refused naming both versions, not reported as
    already imported with the stale energy kept; the same sessions exported without their ids are
    found by charge point, connector and start, not imported twice."""
    lines = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()
    header, rows = lines[0], lines[1:]
    assert run_import("chargepoint", str(FIXTURES / "chargepoint_sessions.csv")) == 0
    first = _counts(db)
    energy = db.execute("SELECT sum(meter_stop_wh) FROM transaction").fetchone()[0]
    capsys.readouterr()

    corrected = tmp_path / "corrected.csv"  # same ids, line 5 (event 3) now 7.5 kWh
    corrected.write_text(
        "\n".join([header, *rows[:3], rows[3].replace(",6.249457,", ",7.5,"), *rows[4:]]) + "\n"
    )
    assert run_import("chargepoint", str(corrected)) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "line 5: already imported with other content: cp:1:3: stored EVSE 1 connector 1, "
        "2024-07-30T03:17:00Z .. 2024-07-30T06:20:00Z, 6249.457 Wh, fee 0.00 USD, this line EVSE 1 "
        "connector 1, 2024-07-30T03:17:00Z .. 2024-07-30T06:20:00Z, 7500.0 Wh, fee 0.00 USD"
    ) in out
    assert db.execute("SELECT sum(meter_stop_wh) FROM transaction").fetchone()[0] == energy
    assert run_import("chargepoint", str(corrected), "--strict") == 1
    assert "nothing imported" in capsys.readouterr().out
    # --replace: the corrected version replaces the stored one, samples and statuses included
    assert run_import("chargepoint", str(corrected), "--replace") == 0
    assert "replaced (--replace) │ 1" in " ".join(capsys.readouterr().out.split())
    assert _counts(db) | {"import_batch": 0} == first | {"import_batch": 0}
    assert db.execute(
        """SELECT t.meter_stop_wh, max(m.value) FROM transaction t JOIN meter_value m
           USING (charge_point_id, transaction_id) WHERE transaction_id = 'cp:1:3' GROUP BY 1"""
    ).fetchone() == (7500.0, 7500.0)

    header_cols = header.lstrip("\ufeff").split(",")
    event = header_cols.index("Plug In Event Id")
    no_ids = tmp_path / "no-ids.csv"
    no_ids.write_text(
        "\n".join(
            [
                header,
                *(
                    ",".join(f if i != event else "" for i, f in enumerate(r.split(",")))
                    for r in rows
                ),
            ]
        )
        + "\n"
    )
    assert run_import("chargepoint", str(no_ids)) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "│ already imported, other id │ 4 │" in out  # same charge point, connector, start
    assert _counts(db)["transaction"] == first["transaction"]


def test_a_zero_energy_session_is_idle_in_sessions_as_in_utilisation(
    run_import, db, database_url, tmp_path
):
    """Issue 17 row 7: a zero-energy session counted as suspended in utilisation but as charging
    for its whole duration in `sessions`. One definition: it never charged; all of it is idle."""
    header = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    rows = [
        _cp_row(20, 1, "8/5/2024 9:00", "8/5/2024 10:30", "0"),  # 16:00-17:30 UTC, nothing
        _cp_row(21, 2, "8/5/2024 9:00", "8/5/2024 10:00", "3.0"),  # charged to the end
    ]
    path = tmp_path / "zero.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    assert run_import("chargepoint", str(path)) == 0
    _materialize(
        database_url,
        [date(2024, 8, 5)],
        ["connector_states", "sessions", "utilisation"],
        warnings_ok=True,  # a zero-energy session is unusual: a warning check fails
    )
    sessions = db.execute(
        """SELECT transaction_id, duration_min,
                  extract(epoch FROM charging_end_ts - start_ts) / 60, idle_min, failed_attempt
           FROM analytics.sessions ORDER BY 1"""
    ).fetchall()
    assert sessions == [("cp:1:20", 90.0, 0.0, 90.0, True), ("cp:2:21", 60.0, 60.0, 0.0, False)]
    utilisation = db.execute(
        """SELECT evse_id, sum(minutes_charging), sum(minutes_suspended)
           FROM analytics.utilisation_hourly GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    # the same minutes: charging time = charging minutes, idle time = suspended minutes
    assert utilisation == [(1, 0.0, 90.0), (2, 60.0, 0.0)]
