"""Revenue reconciliation: each session that owes money matched to its Stripe payment(s).

A payment intent (PI) belongs to a session through its `metadata.session_id`. Per PI, from the
synced Stripe objects (all amounts in the currency's minor units):

- captured: the `amount_captured` of its succeeded charges; a PI without any synced charge counts
  its `amount_received` when it succeeded (so a charge the sync has not fetched yet is not a
  missing payment);
- refunded: its refunds that are `succeeded` or `pending` (Stripe moves the money at creation);
- disputed: its disputes not won (`won`, `warning_closed` give the money back); a dispute of any
  status makes the session `disputed`;
- fees, bt_net, paid_out: over the balance transactions whose source is one of its charges or
  refunds: the fees, the nets, and the nets of those already in a payout. Only those in the PI's
  currency: an account that settles in another currency (Stripe converts, `exchange_rate` set)
  has its converted transactions counted in `settled_elsewhere` and left out, since converted
  fees cannot be added to amounts in the charge's currency exactly.

A line's net is captured - refunded - fees; bt_net, the sum of the balance transactions' nets, is
the independent figure it must equal (check `reconciliation_totals_balance`). Dispute withdrawals
and their fees are reported in `disputed`, not in net or paid_out.

One line per expected session of the day (analytics.expected_revenue), whatever day its payments
were made, and one line per orphan payment: a PI created in the day whose session_id is empty or
unknown to every expected_revenue row. A PI that names a session of another day belongs to that
day's line only, so no payment is reconciled twice.

Imported history (`chargeops import`, table `import_payment`): the fee an export gives is a
payment already made, with id `import:<session_id>`, status `succeeded`, captured = the fee, no
Stripe fees, and bt_net = paid_out = the fee (the money was settled by the system that exported
it); a fee of 0 is no payment. It reconciles like a PI, so imported revenue is on the same lines and totals.

Category, first that applies (the precedence):
  matched             nothing owed (gross within the tolerance of 0) and no PI: a failed start
                      or a zero-energy session is not charged, so no payment is missing;
  missing_payment     no PI names the session;
  failed              PIs but none captured anything (failed, canceled or unfinished attempts);
  disputed            any dispute on its PIs;
  refunded            everything captured was refunded;
  partially_refunded  part of it was;
  duplicate_payment   more than one PI captured money;
  amount_mismatch     money captured in another currency than the session is priced in, or
                      |captured - expected gross| > tolerance (minor units);
  matched             otherwise.
Money captured in another currency is named in the reason and left out of the line's sums, which
are all in the line's currency. The tolerance is one number of minor units for every currency
(1 cent, 1 yen).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from chargeops.money import minor_unit_exponent
from chargeops.money import money_text as _money
from pipelines.analytics.frames import TS
from pipelines.raw import day_bounds

CATEGORIES = (
    "matched", "amount_mismatch", "missing_payment", "orphan_payment", "duplicate_payment",
    "refunded", "partially_refunded", "disputed", "failed",
)  # fmt: skip

# what the reconciliation reads (the day's analytics.expected_revenue rows, and the Stripe objects
# of the PIs that name them or were created in the day)
EXPECTED = {
    "session_id": pl.String, "site_id": pl.String, "currency": pl.String,
    "minor_unit_exponent": pl.Int8, "gross_amount": pl.Int64,
}  # fmt: skip
PAYMENT_INTENTS = {
    "id": pl.String, "created": TS, "amount": pl.Int64, "amount_received": pl.Int64,
    "currency": pl.String, "status": pl.String, "session_id": pl.String,
    "site_id": pl.String,         # of metadata.charge_point_id, when that is a known charger
    "session_known": pl.Boolean,  # session_id is in analytics.expected_revenue on any day
}  # fmt: skip
CHARGES = {
    "id": pl.String, "payment_intent": pl.String, "amount_captured": pl.Int64,
    "status": pl.String, "currency": pl.String,
}  # fmt: skip
REFUNDS = {
    "id": pl.String, "charge": pl.String, "payment_intent": pl.String, "amount": pl.Int64,
    "status": pl.String,
}  # fmt: skip
DISPUTES = {
    "id": pl.String, "charge": pl.String, "payment_intent": pl.String, "amount": pl.Int64,
    "status": pl.String,
}  # fmt: skip
BALANCE_TRANSACTIONS = {
    "id": pl.String, "source": pl.String, "fee": pl.Int64, "net": pl.Int64, "payout": pl.String,
    "currency": pl.String,
}  # fmt: skip

IMPORTED_PAYMENTS = {  # import_payment rows of the day's sessions or paid in the day
    "session_id": pl.String, "paid_at": TS, "amount": pl.Int64, "currency": pl.String,
    "site_id": pl.String, "session_known": pl.Boolean,
}  # fmt: skip
IMPORTED_PREFIX = "import:"

# per PI (payment_totals)
PAYMENTS = {
    "id": pl.String, "created": TS, "currency": pl.String, "status": pl.String,
    "session_id": pl.String, "site_id": pl.String, "session_known": pl.Boolean,
    "captured": pl.Int64, "refunded": pl.Int64, "disputed": pl.Int64, "disputes": pl.Int64,
    "dispute_status": pl.String, "fees": pl.Int64, "bt_net": pl.Int64, "paid_out": pl.Int64,
    "settled_elsewhere": pl.Int64,  # balance transactions in another currency, left out
}  # fmt: skip

MONEY = ("captured", "refunded", "disputed", "fees", "net", "bt_net", "paid_out")

# what it writes (analytics.reconciliation_lines without `day` first; see sql/006)
LINES = {
    "day": pl.Date, "line_key": pl.String,  # session_id, or the PI id of an orphan payment
    "session_id": pl.String, "site_id": pl.String, "currency": pl.String,
    "minor_unit_exponent": pl.Int8, "expected_gross": pl.Int64,
    **{m: pl.Int64 for m in MONEY},
    "payment_intent_ids": pl.String,  # comma-separated, sorted
    "payments": pl.Int64, "captured_payments": pl.Int64, "settled_elsewhere": pl.Int64,
    "category": pl.String, "reason": pl.String,
}  # fmt: skip
SITE_DAY = {
    "day": pl.Date, "site_id": pl.String, "currency": pl.String, "sessions": pl.Int64,
    "expected_gross": pl.Int64, **{m: pl.Int64 for m in MONEY}, "settled_elsewhere": pl.Int64,
    **{f"n_{c}": pl.Int64 for c in CATEGORIES},
}  # fmt: skip
EXCEPTION_COLUMNS = (
    "day", "category", "reason", "session_id", "site_id", "currency", "minor_unit_exponent",
    "expected_gross", "captured", "refunded", "disputed", "fees", "net", "payment_intent_ids",
)  # fmt: skip

REFUND_COUNTS = ("succeeded", "pending")
DISPUTE_RETURNED = ("won", "warning_closed")


@dataclass(frozen=True)
class StripeFrames:
    """The synced Stripe objects one reconciliation looks at (schemas above)."""

    payment_intents: pl.DataFrame
    charges: pl.DataFrame
    refunds: pl.DataFrame
    disputes: pl.DataFrame
    balance_transactions: pl.DataFrame


def _sum(col: str, mask: pl.Expr | None = None) -> pl.Expr:
    c = pl.col(col) if mask is None else pl.col(col).filter(mask)
    return c.sum().cast(pl.Int64)


def payment_totals(stripe: StripeFrames) -> pl.DataFrame:
    """One row per PI (PAYMENTS) with what its charges, refunds, disputes and balance
    transactions add up to."""
    pis, charges = stripe.payment_intents, stripe.charges
    charge_pi = charges.select(charge="id", charge_pi="payment_intent")

    def to_pi(df: pl.DataFrame) -> pl.DataFrame:
        return df.join(charge_pi, on="charge", how="left").with_columns(
            pi=pl.coalesce("payment_intent", "charge_pi")
        )

    captured = charges.group_by(pi="payment_intent").agg(
        charge_captured=_sum("amount_captured", pl.col("status") == "succeeded"), charges=pl.len()
    )
    refunds = to_pi(stripe.refunds)
    refunded = (
        refunds.filter(pl.col("status").is_in(REFUND_COUNTS))
        .group_by("pi")
        .agg(refunded=_sum("amount"))
    )
    disputed = (
        to_pi(stripe.disputes)
        .sort("id")
        .group_by("pi")
        .agg(
            disputed=_sum("amount", ~pl.col("status").is_in(DISPUTE_RETURNED)),
            disputes=pl.len().cast(pl.Int64),
            dispute_status=pl.col("status").str.join(", "),
        )
    )
    sources = pl.concat(
        [charges.select(source="id", pi="payment_intent"), refunds.select(source="id", pi="pi")]
    )
    pi_currency = pis.select(pi="id", pi_currency=pl.col("currency").str.to_uppercase())
    balance = (
        stripe.balance_transactions.join(sources, on="source")
        .join(pi_currency, on="pi", how="left")
        .with_columns(same=pl.col("currency").str.to_uppercase() == pl.col("pi_currency"))
        .group_by("pi")
        .agg(
            fees=_sum("fee", pl.col("same")),
            bt_net=_sum("net", pl.col("same")),
            paid_out=_sum("net", pl.col("same") & pl.col("payout").is_not_null()),
            settled_elsewhere=(~pl.col("same")).sum().cast(pl.Int64),
        )
    )
    out = pis.rename({"id": "pi"})
    for part in (captured, refunded, disputed, balance):
        out = out.join(part, on="pi", how="left")
    out = out.with_columns(
        captured=pl.when(pl.col("charges").fill_null(0) > 0)
        .then(pl.col("charge_captured"))
        .when(pl.col("status") == "succeeded")
        .then(pl.col("amount_received"))
        .otherwise(0),
        currency=pl.col("currency").str.to_uppercase(),
        session_known=pl.col("session_known").fill_null(False),
    ).rename({"pi": "id"})
    out = out.with_columns(
        pl.col(
            "captured",
            "refunded",
            "disputed",
            "disputes",
            "fees",
            "bt_net",
            "paid_out",
            "settled_elsewhere",
        )
        .fill_null(0)
        .cast(pl.Int64)
    )
    return out.select([pl.col(c).cast(t) for c, t in PAYMENTS.items()])


def imported_payments(imported: pl.DataFrame) -> pl.DataFrame:
    """Imported fees (IMPORTED_PAYMENTS) as PAYMENTS rows: settled payments, no Stripe fees. A
    fee of 0 (a free session) is no payment: its line is matched as nothing owed, nothing paid."""
    zero = pl.lit(0, pl.Int64)
    return imported.filter(pl.col("amount") > 0).select(
        id=pl.lit(IMPORTED_PREFIX) + pl.col("session_id"),
        created="paid_at",
        currency=pl.col("currency").str.to_uppercase(),
        status=pl.lit("succeeded"),
        session_id="session_id",
        site_id="site_id",
        session_known=pl.col("session_known").fill_null(False),
        captured="amount", refunded=zero, disputed=zero, disputes=zero,
        dispute_status=pl.lit(None, pl.String), fees=zero, bt_net="amount", paid_out="amount",
        settled_elsewhere=zero,
    ).select([pl.col(c).cast(t) for c, t in PAYMENTS.items()])  # fmt: skip


def _pi_text(p: dict, exponent: int) -> str:
    text = f"{p['id']} ({p['status']}"
    if p["captured"]:
        text += f", {_money(p['captured'], exponent, p['currency'])}"
    return text + ")"


def _session_reason(r: dict, tolerance: int) -> str:
    exp, ccy, cat = r["minor_unit_exponent"], r["currency"], r["category"]
    expected = _money(r["expected_gross"], exp, ccy)
    pis = r["pis"] or []
    captured_pis = [p for p in pis if p["captured"] > 0]
    if cat == "missing_payment":
        return f"no payment names this session; expected {expected}"
    if cat == "failed":
        attempts = ", ".join(_pi_text(p, exp) for p in pis)
        return f"nothing captured for expected {expected}; attempts: {attempts}"
    if cat == "disputed":
        on = [p for p in pis if p["disputes"]]
        status = "; ".join(f"{p['id']}: {p['dispute_status']}" for p in on)
        return f"disputed {_money(r['disputed'], exp, ccy)} of {_money(r['captured'], exp, ccy)} captured ({status})"
    if cat == "refunded":
        return f"fully refunded: {_money(r['refunded'], exp, ccy)} of {_money(r['captured'], exp, ccy)} captured"
    if cat == "partially_refunded":
        return (
            f"refunded {_money(r['refunded'], exp, ccy)} of {_money(r['captured'], exp, ccy)} "
            f"captured; expected {expected}"
        )
    if cat == "duplicate_payment":
        listed = ", ".join(_pi_text(p, exp) for p in captured_pis)
        return (
            f"{len(captured_pis)} payments captured {_money(r['captured'], exp, ccy)} for expected "
            f"{expected}: {listed}"
        )
    if cat == "amount_mismatch":
        foreign = [p for p in captured_pis if p["currency"] != ccy]
        if foreign:
            listed = ", ".join(_pi_text(p, exp) for p in foreign)
            return (
                f"paid in another currency than the session's {ccy}: {listed}; expected {expected}"
            )
        diff = r["captured"] - r["expected_gross"]
        return (
            f"captured {_money(r['captured'], exp, ccy)}, expected {expected}: difference "
            f"{'+' if diff > 0 else ''}{_money(diff, exp, ccy)} beyond the tolerance of "
            f"{tolerance} minor units"
        )
    return ""


def _orphan_reason(r: dict) -> str:
    pi = f"payment {r['line_key']} ({r['status']}, {_money(r['captured'], r['minor_unit_exponent'], r['currency'])} captured)"
    if r["session_id"] is None:
        return f"{pi} names no session"
    return f"{pi} names session {r['session_id']}, which no expected revenue row has"


def reconcile(
    expected: pl.DataFrame, payments: pl.DataFrame, day: date, tolerance: int = 0
) -> pl.DataFrame:
    """The day's reconciliation lines (LINES) from its expected sessions (EXPECTED) and the PIs
    (PAYMENTS, from `payment_totals`) that name them or were created in the day."""
    if tolerance < 0:
        raise ValueError(f"the tolerance must be >= 0 minor units, not {tolerance}")
    exp = expected.select(
        "session_id", "site_id", "currency", "minor_unit_exponent",
        expected_gross=pl.col("gross_amount"),
    ).with_columns(pl.col("currency").str.to_uppercase())  # fmt: skip
    attached = payments.join(
        exp.select("session_id", line_currency="currency"), on="session_id", how="inner"
    ).with_columns(same=pl.col("currency") == pl.col("line_currency"))
    per_session = (
        attached.sort("id")
        .group_by("session_id")
        .agg(
            *[_sum(m, pl.col("same")) for m in ("captured", "refunded", "disputed", "fees")],
            *[_sum(m, pl.col("same")) for m in ("bt_net", "paid_out")],
            payment_intent_ids=pl.col("id").str.join(","),
            payments=pl.len().cast(pl.Int64),
            captured_payments=(pl.col("captured") > 0).sum().cast(pl.Int64),
            settled_elsewhere=_sum("settled_elsewhere"),
            foreign=((pl.col("captured") > 0) & ~pl.col("same")).sum().cast(pl.Int64),
            disputes=pl.col("disputes").sum().cast(pl.Int64),
            pis=pl.struct("id", "status", "currency", "captured", "disputes", "dispute_status"),
        )
    )
    lines = exp.join(per_session, on="session_id", how="left").with_columns(
        pl.col(
            "captured", "refunded", "disputed", "fees", "bt_net", "paid_out", "payments",
            "captured_payments", "foreign", "disputes", "settled_elsewhere",
        ).fill_null(0),
        pl.col("payment_intent_ids").fill_null(""),
    )  # fmt: skip
    c = pl.col
    lines = lines.with_columns(
        net=c("captured") - c("refunded") - c("fees"),
        line_key=c("session_id"),
        category=pl.when((c("payments") == 0) & (c("expected_gross") <= tolerance))
        .then(pl.lit("matched"))  # nothing owed (a failed start), nothing paid
        .when(c("payments") == 0)
        .then(pl.lit("missing_payment"))
        .when(c("captured_payments") == 0)
        .then(pl.lit("failed"))
        .when(c("disputes") > 0)
        .then(pl.lit("disputed"))
        .when((c("captured") > 0) & (c("refunded") >= c("captured")))
        .then(pl.lit("refunded"))
        .when(c("refunded") > 0)
        .then(pl.lit("partially_refunded"))
        .when(c("captured_payments") > 1)
        .then(pl.lit("duplicate_payment"))
        .when((c("foreign") > 0) | ((c("captured") - c("expected_gross")).abs() > tolerance))
        .then(pl.lit("amount_mismatch"))
        .otherwise(pl.lit("matched")),
    )
    todo = lines.filter(c("category") != "matched")  # a matched line needs no reason
    reasons = todo.select(
        "session_id",
        reason=pl.Series(
            [_session_reason(r, tolerance) for r in todo.iter_rows(named=True)], dtype=pl.String
        ),
    )
    lines = (
        lines.join(reasons, on="session_id", how="left")
        .with_columns(c("reason").cast(pl.String).fill_null(""))
        .sort("session_id")
    )

    d0, d1 = day_bounds(day)
    orphans = payments.filter(
        (pl.col("created") >= d0)
        & (pl.col("created") < d1)
        & ~pl.col("session_id").is_in(exp["session_id"].implode()).fill_null(False)
        & ~pl.col("session_known")
    ).sort("id")
    orphans = orphans.with_columns(
        line_key=c("id"),
        minor_unit_exponent=minor_unit_exponent(c("currency")),
        expected_gross=pl.lit(0, pl.Int64),
        net=c("captured") - c("refunded") - c("fees"),
        payment_intent_ids=c("id"),
        payments=pl.lit(1, pl.Int64),
        captured_payments=(c("captured") > 0).cast(pl.Int64),
        category=pl.lit("orphan_payment"),
    )
    orphans = orphans.with_columns(
        reason=pl.Series(
            [_orphan_reason(r) for r in orphans.iter_rows(named=True)], dtype=pl.String
        )
    )
    columns = [pl.col(k).cast(t) for k, t in LINES.items() if k != "day"]
    return pl.concat([lines.select(columns), orphans.select(columns)]).select(
        pl.lit(day, pl.Date).alias("day"), pl.all()
    )


def site_day(lines: pl.DataFrame) -> pl.DataFrame:
    """Per day, site and currency (SITE_DAY): the money and the count of lines per category;
    orphan payments of unknown chargers have a null site."""
    c = pl.col
    out = lines.group_by("day", "site_id", "currency").agg(
        (c("category") != "orphan_payment").sum().cast(pl.Int64).alias("sessions"),
        c("expected_gross").sum(),
        *[c(m).sum() for m in MONEY],
        c("settled_elsewhere").sum(),
        *[(c("category") == k).sum().cast(pl.Int64).alias(f"n_{k}") for k in CATEGORIES],
    )
    return out.select([c(k).cast(t) for k, t in SITE_DAY.items()]).sort(
        "day", "site_id", "currency", nulls_last=True
    )


def exceptions(lines: pl.DataFrame) -> pl.DataFrame:
    """Every line that is not matched, with its reason, in the CSV's column order."""
    return (
        lines.filter(pl.col("category") != "matched")
        .sort("day", "category", "line_key")
        .select(EXCEPTION_COLUMNS)
    )
