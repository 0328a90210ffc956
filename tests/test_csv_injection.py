"""CSV injection (OWASP): an id a charger or an import chose, such as `=cmd|' /C calc'!A0`,
`-2+3` or `@SUM(A1)`, must not reach a spreadsheet as a live formula. Every CSV the project
writes (EV-ChART modules, reconciliation exceptions, UK reliability) is read back with Python's
csv module: no cell begins with = + - @ tab or CR, the hostile ids arrive prefixed with `'`,
and numbers (a negative net) stay numbers."""

import csv
import io
from datetime import date
from pathlib import Path

import polars as pl

from chargeops.cli import main
from pipelines.defs.payments.reconciliation_asset import EXCEPTIONS_CSV
from reports import csvsafe
from reports import evchart as E
from reports import evchart_rules as R
from reports import uk_reliability as UK
from tests.conftest import mark_ok
from tests.test_reconciliation import D, Stripe, expected_rows, insert_expected, run
from tests.test_reconciliation import clean as clean  # noqa: F401 (the fixture)

CMD = "=cmd|' /C calc'!A0"
SUM = "@SUM(A1)"
SITE = "-2+3"
LIVE = ("=", "+", "-", "@", "\t", "\r")


def cells(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def assert_no_live_cell(table: list[list[str]]) -> None:
    """No text cell a spreadsheet would evaluate; a negative number is a number, not a formula."""
    live = [c for row in table for c in row if c.startswith(LIVE) and not is_number(c)]
    assert live == [], live


def test_evchart_files_neutralise_hostile_ids(db, database_url, tmp_path, monkeypatch):
    """A charger, a session and a station id that are formulas, through the CLI to the files."""
    db.execute("INSERT INTO site (site_id, name) VALUES (%s, 'depot')", (SITE,))
    db.execute("INSERT INTO charge_point (charge_point_id, site_id) VALUES (%s, %s)", (CMD, SITE))
    db.execute(
        """INSERT INTO transaction (charge_point_id, transaction_id, ocpp_version, stop_reason)
           VALUES (%s, %s, '2.0.1', 'Remote')""",
        (CMD, SUM),
    )
    db.execute(
        """INSERT INTO analytics.sessions (day, session_id, charge_point_id, transaction_id,
               site_id, evse_id, connector_id, start_ts, end_ts, energy_wh, peak_power_w)
           VALUES ('2024-05-02', 'x', %s, %s, %s, 1, 1, '2024-05-02 10:00+00',
                   '2024-05-02 11:30+00', 22000, 11000)""",
        (CMD, SUM, SITE),
    )
    with db.cursor() as cur:
        cur.executemany(
            "INSERT INTO analytics.uptime_daily VALUES (%s, %s, 1, 1, %s, 1440, 0, 0, 100)",
            [(date(2024, 5, d), CMD, SITE) for d in range(1, 16)],
        )
    db.execute(
        """INSERT INTO analytics.outages VALUES ('2024-05-03', %s, 1, 1, %s,
           '2024-05-03 23:00+00', '2024-05-04 00:00+00', 60, 'faulted', false, NULL)""",
        (CMD, SITE),
    )
    mark_ok(db, ("sessions", "uptime"), [date(2024, 5, d) for d in range(1, 16)])
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["report", "evchart", "--quarter", "2024Q2", "--out", str(tmp_path)]) == 0
    folder = tmp_path / "2024Q2"
    for number in (2, 3, 4):
        path = folder / R.MODULES[number].file_name("2024Q2")
        table = cells(path)
        assert_no_live_cell(table)
        assert table[1][:2] == ["'" + SITE, "'" + f"{CMD}-1-1"]
        assert E.validate_file(R.MODULES[number], path) == []  # EV-ChART's rules still hold
    m2 = cells(folder / R.MODULE2.file_name("2024Q2"))
    row = dict(zip(m2[0], m2[1], strict=True))
    assert (row["charger_id"], row["session_id"]) == ("'" + CMD, "'" + SUM)
    assert (row["energy_kwh"], row["power_kw"]) == ("22.00", "11.00")
    raw = (folder / R.MODULE2.file_name("2024Q2")).read_text(encoding="utf-8-sig")
    assert f'"\'{SUM}"' in raw and ",22.00," in raw  # text quoted, numbers bare


def test_reconciliation_exceptions_csv_neutralises_text_not_numbers(clean, database_url, tmp_path):  # noqa: F811
    db = clean
    insert_expected(db, D, expected_rows((SUM, 1000), (CMD, 500), ("CP1:r", 1200)))
    stripe = Stripe()
    stripe.pi("pi_r", "CP1:r", 1200)
    stripe.refund("pi_r", 1200)  # refunded: net -25 (the fee), a real negative number
    stripe.insert(db)
    run(database_url, tmp_path, D)
    path = tmp_path / D.isoformat() / EXCEPTIONS_CSV
    table = cells(path)
    assert_no_live_cell(table)
    rows = [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    assert {r["session_id"] for r in rows} == {"'" + SUM, "'" + CMD, "CP1:r"}
    refunded = next(r for r in rows if r["session_id"] == "CP1:r")
    assert refunded["net"] == "-25"
    assert ",-25," in path.read_text()  # left a bare number
    assert pl.read_csv(path)["net"].dtype == pl.Int64


def test_payments_exceptions_cli_neutralises(clean, database_url, tmp_path, monkeypatch):  # noqa: F811
    insert_expected(clean, D, expected_rows((CMD, 500)))
    run(database_url, tmp_path, D)
    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "exc.csv"
    day = D.isoformat()
    assert main(["payments", "exceptions", "--from", day, "--to", day, "--out", str(out)]) == 0
    table = cells(out)
    assert_no_live_cell(table)
    assert table[1][table[0].index("session_id")] == "'" + CMD


def test_uk_reliability_csv_neutralises_charge_point_ids(tmp_path):
    per_cp = pl.DataFrame(
        {"charge_point_id": [CMD, "\tTAB", "\rCR", "CP1"], "reliability_pct": [-1.5, 2.0, 3.0, 4.0]}
    )
    report = UK.UkReliability(date(2025, 1, 1), date(2025, 12, 31), per_cp, {})
    path, _ = UK.write(report, tmp_path, 2025)
    table = cells(path)
    assert_no_live_cell(table)
    assert [r[0] for r in table[1:]] == ["'" + CMD, "'\tTAB", "'\rCR", "CP1"]
    assert [r[1] for r in table[1:]] == ["-1.5", "2.0", "3.0", "4.0"]


def test_one_function_neutralises_text_columns_only():
    df = pl.DataFrame({"id": ["-2+3", '=HYPERLINK("x")', "ok", None], "n": [-2.5, 3.0, -1.0, None]})
    text = csvsafe.frame_csv(df, null_value="")
    assert text.splitlines() == [
        "id,n",
        '"\'-2+3",-2.5',
        '"\'=HYPERLINK(""x"")",3.0',  # embedded quotes doubled (OWASP)
        '"ok",-1.0',
        ",",
    ]
    rows = csvsafe.rows_csv(["id", "kwh"], [["@SUM(A1)", "1.00"], ["", ""]], ["id"])
    assert rows == 'id,kwh\n"\'@SUM(A1)",1.00\n,\n'
    assert E.fit_id("+" + "x" * 35, "s-").startswith("s-")  # 37 characters once neutralised
    assert E.fit_id("x" * 36, "s-") == "x" * 36
