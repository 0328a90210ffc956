"""Revenue reconciliation against Stripe: every category on a crafted day with hand-computed
amounts, the tolerance edge, a zero-decimal currency and a tariff change priced through the real
assets, orphan payments, both checks failing on crafted bad rows, re-runs, and the CSV."""

import csv
import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from pipelines.defs.analytics.assets import expected_revenue, sessions
from pipelines.defs.payments.reconciliation_asset import (
    CHECKS,
    EXCEPTIONS_CSV,
    check_reconciliation_no_session_twice,
    check_reconciliation_totals_balance,
    export_exceptions,
    reconciliation,
    resolve_tolerance,
)
from pipelines.payments import reconcile as logic
from pipelines.resources import DatabaseResource, ReportsResource
from tests.conftest import mark_ok

D = date(2025, 3, 12)  # the category scenario
DJ = date(2025, 3, 20)  # yen
DT = date(2025, 3, 25)  # tariff change at DT + 1 day 00:00 UTC
OUR_DAYS = (D - timedelta(days=1), D, DJ, DT, DT + timedelta(days=1))


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


class Stripe:
    """Stripe objects as the sync stores them: a PI with its charge and the charge's balance
    transaction; refunds and disputes on a PI's charge."""

    def __init__(self) -> None:
        self.pis: list[dict] = []
        self.charges: list[dict] = []
        self.refunds: list[dict] = []
        self.disputes: list[dict] = []
        self.bts: list[dict] = []

    def pi(
        self, pid: str, session_id: str | None, amount: int, *, currency: str = "eur",
        status: str = "succeeded", captured: int | None = None, fee: int = 25,
        payout: str | None = None, created: datetime | None = None, charge_point_id: str = "CP1",
        charge: bool = True, settled: tuple[str, int] | None = None,
    ) -> None:  # fmt: skip
        captured = (amount if status == "succeeded" else 0) if captured is None else captured
        created = created or datetime.combine(D, datetime.min.time(), UTC) + timedelta(hours=12)
        self.pis.append(
            {"id": pid, "created": created, "amount": amount,
             "amount_received": captured, "currency": currency, "status": status,
             "session_id": session_id, "charge_point_id": charge_point_id}
        )  # fmt: skip
        if not charge:
            return
        ok = status == "succeeded"
        self.charges.append(
            {"id": f"ch_{pid}", "payment_intent": pid, "created": created, "amount": amount,
             "amount_captured": captured, "currency": currency,
             "status": "succeeded" if ok else "failed",
             "balance_transaction": f"txn_ch_{pid}" if ok else None}
        )  # fmt: skip
        if ok:  # `settled`: converted to another settlement currency (currency, amount)
            ccy, amount_settled = settled or (currency, captured)
            self._bt(f"ch_{pid}", "charge", amount_settled, fee, ccy, payout, created)

    def refund(self, pid: str, amount: int, *, status: str = "succeeded") -> None:
        pi = next(p for p in self.pis if p["id"] == pid)
        rid = f"re_{pid}_{len(self.refunds)}"
        self.refunds.append(
            {"id": rid, "charge": f"ch_{pid}", "payment_intent": pid, "created": pi["created"],
             "amount": amount, "currency": pi["currency"], "status": status}
        )  # fmt: skip
        self._bt(rid, "refund", -amount, 0, pi["currency"], None, pi["created"])
        if status == "failed":  # Stripe gives the money back with a second balance transaction
            self._bt(rid, "refund_failure", amount, 0, pi["currency"], None, pi["created"])

    def dispute(self, pid: str, amount: int, *, status: str = "needs_response") -> None:
        pi = next(p for p in self.pis if p["id"] == pid)
        self.disputes.append(
            {"id": f"dp_{pid}", "charge": f"ch_{pid}", "payment_intent": pid,
             "created": pi["created"], "amount": amount, "currency": pi["currency"],
             "status": status}
        )  # fmt: skip

    def _bt(self, source, kind, amount, fee, currency, payout, created) -> None:
        self.bts.append(
            {"id": f"txn_{source}_{len(self.bts)}", "created": created, "type": kind, "source": source,
             "amount": amount, "fee": fee, "net": amount - fee, "currency": currency,
             "payout": payout}
        )  # fmt: skip

    def insert(self, db) -> None:
        tables = {
            "stripe_payment_intent": self.pis, "stripe_charge": self.charges,
            "stripe_refund": self.refunds, "stripe_dispute": self.disputes,
            "stripe_balance_transaction": self.bts,
        }  # fmt: skip
        for table, rows in tables.items():
            for row in rows:
                cols = list(row)
                db.execute(
                    f"INSERT INTO {table} ({', '.join(cols)}, raw) "
                    f"VALUES ({', '.join(['%s'] * len(cols))}, '{{}}')",
                    [row[c] for c in cols],
                )

    def frames(self, known: set[str] = frozenset()) -> logic.StripeFrames:
        def frame(rows, schema):
            return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)

        pis = [{**p, "site_id": "S1", "session_known": p["session_id"] in known} for p in self.pis]
        return logic.StripeFrames(
            frame(pis, logic.PAYMENT_INTENTS), frame(self.charges, logic.CHARGES),
            frame(self.refunds, logic.REFUNDS), frame(self.disputes, logic.DISPUTES),
            frame(self.bts, logic.BALANCE_TRANSACTIONS),
        )  # fmt: skip


def expected_rows(*rows: tuple, site: str = "S1", currency: str = "EUR") -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"session_id": s, "site_id": site, "currency": currency,
             "minor_unit_exponent": 0 if currency == "JPY" else 2, "gross_amount": g}
            for s, g in rows
        ],
        schema=logic.EXPECTED,
    )  # fmt: skip


def insert_expected(db, day: date, rows: pl.DataFrame) -> None:
    for r in rows.iter_rows(named=True):
        db.execute(
            """INSERT INTO analytics.expected_revenue (day, session_id, charge_point_id, site_id,
                   tariff_id, currency, minor_unit_exponent, gross_amount)
               VALUES (%s, %s, 'CP1', %s, 't', %s, %s, %s)""",
            (day, r["session_id"], r["site_id"], r["currency"], r["minor_unit_exponent"],
             r["gross_amount"]),
        )  # fmt: skip


def by_key(lines: pl.DataFrame) -> dict:
    return {r["line_key"]: r for r in lines.iter_rows(named=True)}


@pytest.fixture
def clean(db):
    """The raw tables emptied (db) and our days' analytics rows gone."""
    for table in (
        "expected_revenue",
        "sessions",
        "reconciliation_lines",
        "reconciliation_site_day",
    ):
        db.execute(f"DELETE FROM analytics.{table} WHERE day = ANY(%s)", (list(OUR_DAYS),))
    db.execute("INSERT INTO site (site_id, name) VALUES ('S1', 'one')")
    db.execute("INSERT INTO charge_point (charge_point_id, site_id) VALUES ('CP1', 'S1')")
    mark_ok(db, ("expected_revenue",), OUR_DAYS)  # written directly below, as the asset would
    return db


def run(database_url, tmp_path, day, assets=(reconciliation,), run_config=None):
    result = dg.materialize(
        [*assets, *CHECKS],
        partition_key=day.isoformat(),
        resources={
            "database": DatabaseResource(url=database_url),
            "reports": ReportsResource(directory=str(tmp_path)),
        },
        run_config=run_config,
        raise_on_error=False,
    )
    assert result.success, [
        str(e.event_specific_data.error)[:800] for e in result.get_step_failure_events()
    ]
    return result


def read_lines(db, day: date) -> dict:
    cur = db.execute(
        "SELECT * FROM analytics.reconciliation_lines WHERE day = %s ORDER BY line_key", (day,)
    )
    cols = [c.name for c in cur.description]
    return {r[1]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


# -- the category scenario (day D, site S1, EUR, tolerance 0) ---------------------------------

EXPECTED_D = expected_rows(
    ("CP1:m", 1000), ("CP1:x", 1000), ("CP1:n", 1500), ("CP1:u", 800), ("CP1:r", 1200),
    ("CP1:p", 2000), ("CP1:d", 3000), ("CP1:f", 700), ("CP1:c", 1000),
)  # fmt: skip


def category_stripe() -> Stripe:
    s = Stripe()
    s.pi("pi_m", "CP1:m", 1000, payout="po_1")  # matched, already paid out
    s.pi("pi_x", "CP1:x", 900)  # 1.00 short
    # CP1:n: nothing
    s.pi("pi_u1", "CP1:u", 800)
    s.pi("pi_u2", "CP1:u", 800)  # charged twice
    s.pi("pi_r", "CP1:r", 1200)
    s.refund("pi_r", 1200)
    s.pi("pi_p", "CP1:p", 2000)
    s.refund("pi_p", 500)
    s.refund("pi_p", 300, status="failed")  # does not count
    s.pi("pi_d", "CP1:d", 3000)
    s.dispute("pi_d", 3000)
    s.pi("pi_f", "CP1:f", 700, status="requires_payment_method")
    s.pi("pi_f2", "CP1:f", 700, status="canceled", charge=False)
    s.pi("pi_c", "CP1:c", 1000, currency="usd")  # right amount, wrong currency
    s.pi("pi_o1", None, 450)  # orphan: names no session
    s.pi("pi_o2", "CP9:404", 600, charge_point_id="CP9")  # orphan: unknown session and charger
    s.pi("pi_y", "CP1:y", 990)  # pays a session of the day before: not on D's lines
    return s


# (category, captured, refunded, disputed, fees, net, bt_net, paid_out, payments, captured_pis)
CATEGORY_LINES = {
    "CP1:m": ("matched", 1000, 0, 0, 25, 975, 975, 975, 1, 1),
    "CP1:x": ("amount_mismatch", 900, 0, 0, 25, 875, 875, 0, 1, 1),
    "CP1:n": ("missing_payment", 0, 0, 0, 0, 0, 0, 0, 0, 0),
    "CP1:u": ("duplicate_payment", 1600, 0, 0, 50, 1550, 1550, 0, 2, 2),
    "CP1:r": ("refunded", 1200, 1200, 0, 25, -25, -25, 0, 1, 1),
    "CP1:p": ("partially_refunded", 2000, 500, 0, 25, 1475, 1475, 0, 1, 1),
    "CP1:d": ("disputed", 3000, 0, 3000, 25, 2975, 2975, 0, 1, 1),
    "CP1:f": ("failed", 0, 0, 0, 0, 0, 0, 0, 2, 0),
    "CP1:c": ("amount_mismatch", 0, 0, 0, 0, 0, 0, 0, 1, 1),
    "pi_o1": ("orphan_payment", 450, 0, 0, 25, 425, 425, 0, 1, 1),
    "pi_o2": ("orphan_payment", 600, 0, 0, 25, 575, 575, 0, 1, 1),
}
FIGURES = ("category", "captured", "refunded", "disputed", "fees", "net", "bt_net", "paid_out",
           "payments", "captured_payments")  # fmt: skip


def test_each_category_pure():
    s = category_stripe()
    lines = logic.reconcile(EXPECTED_D, logic.payment_totals(s.frames({"CP1:y"})), D)
    got = {k: tuple(r[f] for f in FIGURES) for k, r in by_key(lines).items()}
    assert got == CATEGORY_LINES
    assert set(lines["category"]) == set(logic.CATEGORIES)
    reasons = {k: r["reason"] for k, r in by_key(lines).items()}
    assert reasons["CP1:m"] == ""
    assert reasons["CP1:x"] == (
        "captured 9.00 EUR, expected 10.00 EUR: difference -1.00 EUR beyond the tolerance of 0 "
        "minor units"
    )
    assert reasons["CP1:n"] == "no payment names this session; expected 15.00 EUR"
    assert reasons["CP1:u"] == (
        "2 payments captured 16.00 EUR for expected 8.00 EUR: pi_u1 (succeeded, 8.00 EUR), "
        "pi_u2 (succeeded, 8.00 EUR)"
    )
    assert reasons["CP1:r"] == "fully refunded: 12.00 EUR of 12.00 EUR captured"
    assert reasons["CP1:p"] == "refunded 5.00 EUR of 20.00 EUR captured; expected 20.00 EUR"
    assert reasons["CP1:d"] == "disputed 30.00 EUR of 30.00 EUR captured (pi_d: needs_response)"
    assert reasons["CP1:f"] == (
        "nothing captured for expected 7.00 EUR; attempts: pi_f (requires_payment_method), "
        "pi_f2 (canceled)"
    )
    assert reasons["CP1:c"] == (
        "paid in another currency than the session's EUR: pi_c (succeeded, 10.00 USD); "
        "expected 10.00 EUR"
    )
    assert reasons["pi_o1"] == "payment pi_o1 (succeeded, 4.50 EUR captured) names no session"
    assert reasons["pi_o2"] == (
        "payment pi_o2 (succeeded, 6.00 EUR captured) names session CP9:404, which no expected "
        "revenue row has"
    )
    assert by_key(lines)["CP1:u"]["payment_intent_ids"] == "pi_u1,pi_u2"


def test_precedence_when_several_apply():
    s = Stripe()
    s.pi("pi_a1", "a", 1000)
    s.pi("pi_a2", "a", 1000)
    s.refund("pi_a1", 1000)  # duplicate, one refunded: partially refunded (2000 captured)
    s.pi("pi_b", "b", 1000)
    s.refund("pi_b", 400)
    s.dispute("pi_b", 600, status="won")  # disputed beats refunds; a won dispute holds no money
    s.pi("pi_c", "c", 999)
    s.refund("pi_c", 999)  # fully refunded beats the amount mismatch
    lines = by_key(
        logic.reconcile(
            expected_rows(("a", 1000), ("b", 1000), ("c", 1000)),
            logic.payment_totals(s.frames()),
            D,
        )
    )
    assert lines["a"]["category"] == "partially_refunded" and lines["a"]["refunded"] == 1000
    assert (lines["b"]["category"], lines["b"]["disputed"]) == ("disputed", 0)
    assert lines["c"]["category"] == "refunded"


def test_tolerance_edge_and_its_sources(monkeypatch):
    s = Stripe()
    s.pi("pi_lo", "lo", 995)  # 5 short
    s.pi("pi_at", "at", 1005)  # 5 over
    s.pi("pi_over", "over", 1006)  # 6 over
    exp = expected_rows(("lo", 1000), ("at", 1000), ("over", 1000))
    pays = logic.payment_totals(s.frames())
    cats = {k: r["category"] for k, r in by_key(logic.reconcile(exp, pays, D, 5)).items()}
    assert cats == {"lo": "matched", "at": "matched", "over": "amount_mismatch"}
    exact = {k: r["category"] for k, r in by_key(logic.reconcile(exp, pays, D, 0)).items()}
    assert set(exact.values()) == {"amount_mismatch"}
    with pytest.raises(ValueError, match=">= 0"):
        logic.reconcile(exp, pays, D, -1)
    monkeypatch.delenv("CHARGEOPS_RECONCILE_TOLERANCE", raising=False)
    assert resolve_tolerance() == 0
    monkeypatch.setenv("CHARGEOPS_RECONCILE_TOLERANCE", "7")
    assert (resolve_tolerance(), resolve_tolerance(2)) == (7, 2)
    monkeypatch.setenv("CHARGEOPS_RECONCILE_TOLERANCE", "ten")
    with pytest.raises(ValueError, match="CHARGEOPS_RECONCILE_TOLERANCE"):
        resolve_tolerance()


def test_payment_without_synced_charge_counts_amount_received():
    s = Stripe()
    s.pi("pi_q", "q", 1000, charge=False)  # the sync has the PI but not its charge yet
    line = by_key(logic.reconcile(expected_rows(("q", 1000)), logic.payment_totals(s.frames()), D))
    assert (line["q"]["category"], line["q"]["captured"], line["q"]["bt_net"]) == (
        "matched", 1000, 0,
    )  # fmt: skip


def test_each_category_through_dagster(clean, database_url, tmp_path):
    db = clean
    insert_expected(db, D, EXPECTED_D)
    insert_expected(db, D - timedelta(days=1), expected_rows(("CP1:y", 990)))
    category_stripe().insert(db)
    result = run(database_url, tmp_path, D)
    lines = read_lines(db, D)
    assert {k: tuple(r[f] for f in FIGURES) for k, r in lines.items()} == CATEGORY_LINES
    assert lines["pi_o1"]["site_id"] == "S1" and lines["pi_o2"]["site_id"] is None
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert {e.check_name for e in result.get_asset_check_evaluations()} == {
        "reconciliation_totals_balance", "reconciliation_no_session_twice",
    }  # fmt: skip

    site_day = {
        r[0]: r[1:]
        for r in db.execute(
            """SELECT site_id, currency, sessions, expected_gross, captured, refunded, disputed,
                      fees, net, bt_net, paid_out, n_matched, n_amount_mismatch,
                      n_missing_payment, n_orphan_payment, n_duplicate_payment, n_refunded,
                      n_partially_refunded, n_disputed, n_failed
               FROM analytics.reconciliation_site_day WHERE day = %s""",
            (D,),
        )
    }
    # S1: 9 sessions, 12200 expected; captured 1000+900+1600+1200+2000+3000 + orphan 450 = 10150;
    # fees 8 x 25 = 200; net 10150 - 1700 - 200 = 8250; only pi_m was paid out (975)
    assert site_day == {
        "S1": ("EUR", 9, 12200, 10150, 1700, 3000, 200, 8250, 8250, 975, 1, 2, 1, 1, 1, 1, 1, 1, 1),
        None: ("EUR", 0, 0, 600, 0, 0, 25, 575, 575, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0),
    }

    mat = result.asset_materializations_for_node("reconciliation")[0].metadata
    assert {c: mat[f"lines_{c}"].value for c in logic.CATEGORIES} == {
        "matched": 1, "amount_mismatch": 2, "missing_payment": 1, "orphan_payment": 2,
        "duplicate_payment": 1, "refunded": 1, "partially_refunded": 1, "disputed": 1, "failed": 1,
    }  # fmt: skip
    assert mat["EUR_net"].value == 8825 and mat["dagster/row_count"].value == 11
    path = tmp_path / D.isoformat() / EXCEPTIONS_CSV
    assert mat["exceptions_csv"].path == str(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(logic.EXCEPTION_COLUMNS)
    assert len(rows) == 10 and all(r["reason"] for r in rows)  # 11 lines, one matched
    assert {r["payment_intent_ids"] for r in rows if r["category"] == "orphan_payment"} == {
        "pi_o1", "pi_o2",
    }  # fmt: skip
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert {e["file"]: e["rows"] for e in manifest["files"]} == {EXCEPTIONS_CSV: 10}

    # a re-run replaces the day; a Stripe change (the dispute is won and the money back) shows
    db.execute("UPDATE stripe_dispute SET status = 'won'")
    run(database_url, tmp_path, D)
    again = read_lines(db, D)
    assert len(again) == 11
    assert db.execute(
        "SELECT count(*) FROM analytics.reconciliation_site_day WHERE day = %s", (D,)
    ).fetchone() == (2,)
    assert (again["CP1:d"]["category"], again["CP1:d"]["disputed"]) == ("disputed", 0)


def test_config_tolerance_in_a_run(clean, database_url, tmp_path):
    db = clean
    insert_expected(db, D, expected_rows(("CP1:t", 1000)))
    s = Stripe()
    s.pi("pi_t", "CP1:t", 1003)
    s.insert(db)
    config = {"ops": {"reconciliation": {"config": {"tolerance_minor_units": 3}}}}
    run(database_url, tmp_path, D, run_config=config)
    assert read_lines(db, D)["CP1:t"]["category"] == "matched"
    run(database_url, tmp_path, D)  # default: exact
    assert read_lines(db, D)["CP1:t"]["category"] == "amount_mismatch"
    # only the mismatch: header + 1 line
    text = (tmp_path / D.isoformat() / EXCEPTIONS_CSV).read_text().splitlines()
    assert len(text) == 2 and text[1].startswith(f'"{D}","amount_mismatch","captured 10.03 EUR,')


def test_checks_fail_on_crafted_bad_rows(clean, database_url, tmp_path):
    db = clean
    insert_expected(db, D, EXPECTED_D)
    category_stripe().insert(db)
    run(database_url, tmp_path, D)
    assert check_reconciliation_totals_balance(database_url, [D])[D].passed
    assert check_reconciliation_no_session_twice(database_url, [D])[D].passed

    # a balance transaction the lines disagree with (Stripe took a higher fee than we stored)
    db.execute(
        "UPDATE analytics.reconciliation_site_day SET bt_net = bt_net - 1 "
        "WHERE day = %s AND site_id = 'S1'",
        (D,),
    )
    bad = check_reconciliation_totals_balance(database_url, [D])[D]
    assert not bad.passed and "net>bt_net" in bad.metadata["failures"].value
    # the site-day net no longer what its lines add up to
    db.execute(
        "UPDATE analytics.reconciliation_site_day SET bt_net = bt_net + 1, net = net + 5 "
        "WHERE day = %s AND site_id = 'S1'",
        (D,),
    )
    assert not check_reconciliation_totals_balance(database_url, [D])[D].passed

    # the same session reconciled on another day too
    other = D - timedelta(days=1)
    db.execute(
        """INSERT INTO analytics.reconciliation_lines
           SELECT %s, line_key, session_id, site_id, currency, minor_unit_exponent,
                  expected_gross, captured, refunded, disputed, fees, net, bt_net, paid_out,
                  '', 0, 0, 0, 'missing_payment', 'copy'
           FROM analytics.reconciliation_lines WHERE day = %s AND line_key = 'CP1:n'""",
        (other, D),
    )
    twice = check_reconciliation_no_session_twice(database_url, [D])[D]
    assert not twice.passed and "session CP1:n" in twice.metadata["failures"].value
    db.execute("DELETE FROM analytics.reconciliation_lines WHERE day = %s", (other,))
    assert check_reconciliation_no_session_twice(database_url, [D])[D].passed
    # a payment counted on two lines: pi_m as an orphan of another day
    db.execute(
        """INSERT INTO analytics.reconciliation_lines VALUES (%s, 'pi_m', NULL, 'S1', 'EUR', 2,
               0, 1000, 0, 0, 25, 975, 975, 0, 'pi_m', 1, 1, 0, 'orphan_payment', 'copy')""",
        (other,),
    )
    twice = check_reconciliation_no_session_twice(database_url, [D])[D]
    assert not twice.passed and "payment pi_m" in twice.metadata["failures"].value


# -- the real pricing path: raw transactions -> sessions -> expected_revenue -> reconciliation --


def _transactions(db, cp: str, rows: list[tuple]) -> None:
    for tid, start, stop, kwh in rows:
        db.execute(
            """INSERT INTO transaction (charge_point_id, transaction_id, ocpp_version, evse_id,
                   connector_id, start_ts, meter_start_wh, stop_ts, meter_stop_wh)
               VALUES (%s, %s, '1.6', 1, 1, %s, 0, %s, %s)""",
            (cp, tid, T(start), T(stop), kwh * 1000),
        )


def test_zero_decimal_currency_end_to_end(clean, database_url, tmp_path):
    db = clean
    db.execute("INSERT INTO site (site_id, name, timezone) VALUES ('J1', 'Tokyo', 'Asia/Tokyo')")
    db.execute("INSERT INTO charge_point (charge_point_id, site_id) VALUES ('CPJ', 'J1')")
    db.execute(  # 55 yen/kWh + 10 % tax on top
        """INSERT INTO tariff (tariff_id, site_id, currency, energy_price_per_kwh, tax_rate,
               prices_include_tax) VALUES ('J', 'J1', 'JPY', 55, 0.10, false)"""
    )
    _transactions(
        db, "CPJ", [("1", "2025-03-20 01:00", "2025-03-20 02:00", 10),
                    ("2", "2025-03-20 03:00", "2025-03-20 04:00", 7)],
    )  # fmt: skip
    # 10 kWh: 550 + 55 tax = 605 yen; 7 kWh: 385 + 38.5 -> 39 tax = 424 yen
    s = Stripe()
    created = T("2025-03-20 05:00")
    s.pi("pi_j1", "CPJ:1", 605, currency="jpy", fee=18, created=created, charge_point_id="CPJ")
    s.pi("pi_j2", "CPJ:2", 423, currency="jpy", fee=13, created=created, charge_point_id="CPJ")
    s.insert(db)
    run(database_url, tmp_path, DJ, assets=(sessions, expected_revenue, reconciliation))
    lines = read_lines(db, DJ)
    assert {k: (r["expected_gross"], r["captured"], r["fees"], r["net"], r["category"],
                r["minor_unit_exponent"], r["currency"]) for k, r in lines.items()} == {
        "CPJ:1": (605, 605, 18, 587, "matched", 0, "JPY"),
        "CPJ:2": (424, 423, 13, 410, "amount_mismatch", 0, "JPY"),
    }  # fmt: skip
    assert lines["CPJ:2"]["reason"] == (
        "captured 423 JPY, expected 424 JPY: difference -1 JPY beyond the tolerance of 0 minor "
        "units"
    )
    assert db.execute(
        "SELECT site_id, currency, expected_gross, net, bt_net FROM analytics.reconciliation_site_day"
        " WHERE day = %s",
        (DJ,),
    ).fetchall() == [("J1", "JPY", 1029, 997, 997)]


def test_tariff_change_mid_period(clean, database_url, tmp_path):
    db = clean
    db.execute(  # 0.40 EUR/kWh until DT + 1 00:00 UTC, then 0.50 (VAT included, rate 0)
        """INSERT INTO tariff (tariff_id, site_id, currency, energy_price_per_kwh, valid_from,
               valid_to) VALUES
           ('old', 'S1', 'EUR', 0.40, '2025-01-01+00', '2025-03-26+00'),
           ('new', 'S1', 'EUR', 0.50, '2025-03-26+00', NULL)"""
    )
    _transactions(
        db, "CP1", [
            ("A", "2025-03-25 10:00", "2025-03-25 11:00", 10),  # old: 4.00
            ("L", "2025-03-25 23:30", "2025-03-26 00:30", 10),  # starts before: old, 4.00
            ("B", "2025-03-26 10:00", "2025-03-26 11:00", 10),  # new: 5.00
            ("C", "2025-03-26 12:00", "2025-03-26 13:00", 10),  # new: 5.00, paid at the old price
        ],
    )  # fmt: skip
    s = Stripe()
    for pid, sid, amount, day in (("pi_A", "A", 400, DT), ("pi_L", "L", 400, DT),
                                  ("pi_B", "B", 500, DT + timedelta(days=1)),
                                  ("pi_C", "C", 400, DT + timedelta(days=1))):  # fmt: skip
        s.pi(pid, f"CP1:{sid}", amount,
             created=datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=20))  # fmt: skip
    s.insert(db)
    for day in (DT, DT + timedelta(days=1)):
        run(database_url, tmp_path, day, assets=(sessions, expected_revenue, reconciliation))
    got = {
        r[0]: r[1:]
        for r in db.execute(
            """SELECT l.session_id, e.tariff_id, l.expected_gross, l.captured, l.category
               FROM analytics.reconciliation_lines l JOIN analytics.expected_revenue e
                 USING (day, session_id) WHERE l.day = ANY(%s)""",
            ([DT, DT + timedelta(days=1)],),
        )
    }
    assert got == {
        "CP1:A": ("old", 400, 400, "matched"),
        "CP1:L": ("old", 400, 400, "matched"),
        "CP1:B": ("new", 500, 500, "matched"),
        "CP1:C": ("new", 500, 400, "amount_mismatch"),
    }
    # the range export: one CSV over both days, header + the one exception
    out = tmp_path / "range.csv"
    assert export_exceptions(database_url, DT, DT + timedelta(days=1), out) == 1
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["day"], r["session_id"], r["category"], r["expected_gross"], r["captured"])
            for r in rows] == [("2025-03-26", "CP1:C", "amount_mismatch", "500", "400")]  # fmt: skip
    assert export_exceptions(database_url, DT, DT, out) == 0
    assert out.read_text().splitlines() == [",".join(logic.EXCEPTION_COLUMNS)]


def test_empty_day_writes_a_header_only_csv_and_passes_checks(clean, database_url, tmp_path):
    result = run(database_url, tmp_path, DJ)
    assert read_lines(clean, DJ) == {}
    assert all(e.passed for e in result.get_asset_check_evaluations())
    csv_text = (tmp_path / DJ.isoformat() / EXCEPTIONS_CSV).read_text()
    assert csv_text.splitlines() == [",".join(logic.EXCEPTION_COLUMNS)]


def test_converted_settlement_is_left_out_of_fees_and_named(clean, database_url, tmp_path):
    db = clean
    insert_expected(db, D, expected_rows(("CP1:v", 1000), ("CP1:w", 2000)))
    s = Stripe()
    s.pi("pi_v", "CP1:v", 1000, fee=61, settled=("usd", 1085))  # EUR charge settled in USD
    s.pi("pi_w", "CP1:w", 2000, fee=55)
    s.insert(db)
    run(database_url, tmp_path, D)
    got = {
        k: (r["category"], r["captured"], r["fees"], r["net"], r["bt_net"], r["settled_elsewhere"])
        for k, r in read_lines(db, D).items()
    }
    assert got == {
        "CP1:v": ("matched", 1000, 0, 1000, 0, 1),
        "CP1:w": ("matched", 2000, 55, 1945, 1945, 0),
    }
    check = check_reconciliation_totals_balance(database_url, [D])[D]
    assert check.passed and check.metadata["balance_transactions_settled_elsewhere"].value == 1


def test_nothing_owed_and_nothing_paid_is_matched():
    """A failed start prices at 0 and Stripe cannot charge 0: no payment is not an exception."""
    expected = expected_rows(("CP1:z", 0), ("CP1:n", 1))
    lines = logic.reconcile(expected, logic.payment_totals(Stripe().frames()), D)
    got = {k: r["category"] for k, r in by_key(lines).items()}
    assert got == {"CP1:z": "matched", "CP1:n": "missing_payment"}
