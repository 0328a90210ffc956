"""Issue 17 row 2: fees in imported history. The ChargePoint `Fee`/`Currency` columns and an OCPI
CDR's `total_cost`/`currency` become payments on their sessions (`import_payment`), marked as
imported; `expected_revenue` prices a session without a tariff at its fee and the reconciliation
counts it as captured, so revenue and reconciliation cover imported history. Figures by hand in
the comments."""

import json
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from chargeops.cli import main
from pipelines.defs.analytics.assets import ASSETS
from pipelines.defs.analytics.checks import CHECKS
from pipelines.defs.payments.reconciliation_asset import ASSETS as PAYMENT_ASSETS
from pipelines.defs.payments.reconciliation_asset import CHECKS as PAYMENT_CHECKS
from pipelines.resources import DatabaseResource, ReportsResource

FIXTURES = Path(__file__).parent / "fixtures" / "import"
CHARGEPOINT = (FIXTURES / "chargepoint_sessions.csv").read_text(encoding="utf-8-sig").splitlines()
SELECTION = ["connector_states", "sessions", "expected_revenue", "reconciliation"]


@pytest.fixture
def run_import(db, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return lambda *argv: main(["import", *argv])


def _row(event: int, start: str, end: str, kwh: str, fee: str, currency: str = "USD") -> str:
    """A row of the ChargePoint fixture (Webster #1, PDT) with its own times, energy and fee."""
    return (
        CHARGEPOINT[4]
        .replace(",3,94025,", f",{event},94025,")
        .replace("7/29/2024 20:17,PDT,7/29/2024 23:20", f"{start},PDT,{end}")
        .replace(",6.249457,", f",{kwh},")
        .replace(",USD,0,", f",{currency},{fee},")
        .replace(",3:03:00,", ",,")  # no Total Duration: the End Date alone gives the stop
    )


def _materialize(url: str, tmp_path: Path, day: date) -> None:
    result = dg.materialize(
        [*ASSETS, *CHECKS, *PAYMENT_ASSETS, *PAYMENT_CHECKS],
        partition_key=day.isoformat(),
        resources={
            "database": DatabaseResource(url=url),
            "reports": ReportsResource(directory=str(tmp_path)),
        },
        selection=dg.AssetSelection.assets(*SELECTION),
        raise_on_error=False,
    )
    assert result.success, day
    failed = [
        e.check_name
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR  # a zero-energy row warns
    ]
    assert failed == [], day


def _fee_file(tmp_path: Path) -> Path:
    rows = [
        _row(901, "7/1/2024 9:00", "7/1/2024 10:30", "6.5", "1.50"),  # 16:00-17:30 UTC
        _row(902, "7/1/2024 11:00", "7/1/2024 12:00", "0", "0"),  # a free zero-energy attempt
        _row(903, "7/1/2024 13:00", "7/1/2024 15:00", "8.0", "$2.25"),
        _row(904, "7/1/2024 15:30", "7/1/2024 16:00", "4.0", ""),  # no fee in the export
        _row(905, "7/1/2024 16:30", "7/1/2024 16:45", "1.0", "abc"),  # malformed
        _row(906, "7/1/2024 17:00", "7/1/2024 17:15", "1.0", "1.00", currency=""),  # malformed
    ]
    path = tmp_path / "fees.csv"
    path.write_text("\n".join([CHARGEPOINT[0], *rows]) + "\n")
    return path


def test_chargepoint_fees_become_imported_payments_and_reconcile(
    run_import, db, database_url, capsys, tmp_path
):
    assert run_import("chargepoint", str(_fee_file(tmp_path))) == 1  # two malformed rows
    out = " ".join(capsys.readouterr().out.split())
    assert "line 6: bad fee: Fee 'abc'" in out
    assert "line 7: fee without currency: Fee '1.00'" in out
    # the summary equals the file: 1.50 + 0 + 2.25 in three sessions with a fee
    assert "fees in valid sessions (USD) │ 3.75 USD (3)" in out
    assert "fees imported (USD) │ 3.75 USD" in out
    assert db.execute(
        "SELECT session_id, amount, currency, line FROM import_payment ORDER BY line"
    ).fetchall() == [
        ("000D:6F00:015A:0001:cp:1:901", 150, "USD", 2),
        ("000D:6F00:015A:0001:cp:1:902", 0, "USD", 3),
        ("000D:6F00:015A:0001:cp:1:903", 225, "USD", 4),
    ]
    _materialize(database_url, tmp_path, date(2024, 7, 1))
    # no tariff: each session with a fee is priced at it; the one without is not priced
    assert db.execute(
        """SELECT right(session_id, 3), tariff_id, gross_amount, session_fee_amount, tax_amount
           FROM analytics.expected_revenue ORDER BY 1"""
    ).fetchall() == [
        ("901", "imported", 150, 150, 0),
        ("902", "imported", 0, 0, 0),
        ("903", "imported", 225, 225, 0),
    ]
    lines = db.execute(
        """SELECT right(session_id, 3), category, expected_gross, captured, fees, net,
                  payment_intent_ids
           FROM analytics.reconciliation_lines ORDER BY 1"""
    ).fetchall()
    assert lines == [
        ("901", "matched", 150, 150, 0, 150, "import:000D:6F00:015A:0001:cp:1:901"),
        ("902", "matched", 0, 0, 0, 0, ""),  # free: nothing owed, nothing paid
        ("903", "matched", 225, 225, 0, 225, "import:000D:6F00:015A:0001:cp:1:903"),
    ]
    assert db.execute(
        "SELECT site_id, currency, captured, net, paid_out FROM analytics.reconciliation_site_day"
    ).fetchall() == [("palo-alto-520-webster-st", "USD", 375, 375, 375)]


def test_a_tariff_in_force_is_compared_with_the_imported_fee(
    run_import, db, database_url, tmp_path
):
    """Where the operator has a tariff for the period, the export's fee is checked against it."""
    assert run_import("chargepoint", str(_fee_file(tmp_path))) == 1
    db.execute(
        """INSERT INTO tariff (tariff_id, site_id, currency, energy_price_per_kwh, valid_from)
           VALUES ('flat-30', 'palo-alto-520-webster-st', 'USD', 0.30, '2024-01-01')"""
    )
    _materialize(database_url, tmp_path, date(2024, 7, 1))
    lines = db.execute(
        """SELECT right(session_id, 3), category, expected_gross, captured, reason
           FROM analytics.reconciliation_lines ORDER BY 1"""
    ).fetchall()
    # 6.5 kWh x 0.30 = 1.95 against 1.50 paid; 0 kWh owes 0, 0 paid; 8 x 0.30 = 2.40 against
    # 2.25; 4 x 0.30 = 1.20 and the export gives no fee: missing
    assert [line[:4] for line in lines] == [
        ("901", "amount_mismatch", 195, 150),
        ("902", "matched", 0, 0),
        ("903", "amount_mismatch", 240, 225),
        ("904", "missing_payment", 120, 0),
    ]
    assert lines[0][4] == (
        "captured 1.50 USD, expected 1.95 USD: difference -0.45 USD beyond the tolerance of 0 "
        "minor units"
    )


def test_ocpi_total_cost_and_currency(run_import, db, tmp_path, capsys):
    cdr = json.loads((FIXTURES / "ocpi_cdrs.jsonl").read_text().splitlines()[0])
    old = {**cdr, "id": "OLD", "total_cost": 3.5, "start_date_time": "2024-06-03T08:00:00Z",
           "end_date_time": "2024-06-03T09:00:00Z", "charging_periods": []}  # fmt: skip
    free = {**old, "id": "FREE", "total_cost": {"excl_vat": 0}, "currency": "eur",
            "start_date_time": "2024-06-03T10:00:00Z", "end_date_time": "2024-06-03T11:00:00Z"}  # fmt: skip
    yen = {**old, "id": "YEN", "total_cost": {"excl_vat": 500, "incl_vat": 550}, "currency": "JPY",
           "start_date_time": "2024-06-03T12:00:00Z", "end_date_time": "2024-06-03T13:00:00Z"}  # fmt: skip
    bad = {**old, "id": "BAD", "currency": "euro", "start_date_time": "2024-06-03T14:00:00Z",
           "end_date_time": "2024-06-03T15:00:00Z"}  # fmt: skip
    path = tmp_path / "cdrs.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in (cdr, old, free, yen, bad)))
    assert run_import("ocpi", str(path)) == 1
    assert "line 5: unknown currency: currency 'euro'" in " ".join(capsys.readouterr().out.split())
    assert db.execute(
        "SELECT transaction_id, amount, currency FROM import_payment ORDER BY line"
    ).fetchall() == [
        ("ocpi:NL:ABC:CDR-1", 484, "EUR"),  # incl_vat 4.84
        ("ocpi:NL:ABC:OLD", 350, "EUR"),  # OCPI 2.1.1's plain number
        ("ocpi:NL:ABC:FREE", 0, "EUR"),
        ("ocpi:NL:ABC:YEN", 550, "JPY"),  # zero-decimal currency: 550 minor units
    ]


def test_a_corrected_fee_is_other_content_and_replace_updates_it(run_import, db, tmp_path):
    path = tmp_path / "one.csv"
    path.write_text(
        f"{CHARGEPOINT[0]}\n{_row(901, '7/1/2024 9:00', '7/1/2024 10:30', '6.5', '1.50')}\n"
    )
    assert run_import("chargepoint", str(path)) == 0
    path.write_text(
        f"{CHARGEPOINT[0]}\n{_row(901, '7/1/2024 9:00', '7/1/2024 10:30', '6.5', '1.75')}\n"
    )
    assert run_import("chargepoint", str(path)) == 1  # refused: the stored fee is 1.50
    assert db.execute("SELECT amount FROM import_payment").fetchall() == [(150,)]
    assert run_import("chargepoint", str(path), "--replace") == 0
    assert db.execute("SELECT amount FROM import_payment").fetchall() == [(175,)]
