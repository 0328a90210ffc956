"""Seeding the local Stripe server from the simulated sessions, with known discrepancies.

One card payment per finished, priced session, made when the session ended (Stripe's `created`
= the session's `end_ts`), carrying the ids the reconciliation matches on in its metadata; a
seeded share of sessions gets a discrepancy instead. The returned ground truth says, per session
and payment, what was intended, so the reconciliation can be checked against it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import polars as pl

from chargeops.frames import read_table
from chargeops.money import exponent_of
from pipelines.payments.local_stripe import (
    DAY,
    LocalStripe,
    StripeStore,
    from_unix,
    to_unix,
)

# discrepancies given to sessions (orphan payments are added on top)
SESSION_CATEGORIES = (
    "missing",
    "amount_mismatch",
    "duplicate",
    "refunded",
    "partially_refunded",
    "disputed",
    "failed",
)
CATEGORIES = ("ok", *SESSION_CATEGORIES, "orphan")
SESSIONS = {  # what seed_payments reads
    "session_id": pl.String,
    "charge_point_id": pl.String,
    "transaction_id": pl.String,
    "site_id": pl.String,
    "currency": pl.String,
    "gross_amount": pl.Int64,
    "end_ts": pl.Datetime("us", "UTC"),
}
TRUTH = {
    "session_id": pl.String,
    "category": pl.String,
    "payment_intent": pl.String,
    "charge": pl.String,
    "currency": pl.String,
    "expected_amount": pl.Int64,
    "charged_amount": pl.Int64,
    "refunded_amount": pl.Int64,
    "disputed_amount": pl.Int64,
    "created": pl.Datetime("us", "UTC"),
}


def sessions_to_seed(url: str) -> pl.DataFrame:
    """Finished sessions with what they owe: analytics.expected_revenue joined with sessions
    (imported history priced at its imported fee is already paid, so not seeded)."""
    return read_table(
        url,
        """SELECT e.session_id, s.charge_point_id, s.transaction_id, e.site_id, e.currency,
                  e.gross_amount, s.end_ts
           FROM analytics.expected_revenue e
           JOIN analytics.sessions s ON s.day = e.day AND s.session_id = e.session_id
           WHERE s.end_ts IS NOT NULL AND e.gross_amount > 0
             AND e.tariff_id <> 'imported'  -- paid before: import_payment has it
           ORDER BY s.end_ts, e.session_id""",
        SESSIONS,
    )


def _store(store_or_server: StripeStore | LocalStripe) -> StripeStore:
    return store_or_server.store if isinstance(store_or_server, LocalStripe) else store_or_server


def _wrong_amount(rng: random.Random, gross: int, currency: str) -> int:
    """What a billing bug charges: an old price (-20 %), a doubled fee, tax left out (/1.2)."""
    factor = rng.choice((0.8, 1.25, 1 / 1.2))
    wrong = int(round(gross * factor))
    if wrong == gross:
        wrong = gross + (10 ** exponent_of(currency) if exponent_of(currency) else 100)
    return max(wrong, 1)


def seed_payments(
    store_or_server: StripeStore | LocalStripe,
    sessions: pl.DataFrame,
    *,
    seed: int,
    discrepancy_share: float = 0.1,
    account: str = "",
    payouts: bool = True,
) -> pl.DataFrame:
    """Create the payments for `sessions` (columns of SESSIONS) and return the ground truth
    (columns of TRUTH): one row per payment, and one per missing session (no payment ids).

    With `discrepancy_share` > 0 and at least 20 sessions every category occurs at least once;
    the same `seed` and sessions give the same categories and amounts. `payouts`: run the daily
    payouts after seeding, so every available balance is paid out.
    """
    if not 0 <= discrepancy_share <= 1:
        raise ValueError("discrepancy_share must be between 0 and 1")
    store = _store(store_or_server)
    store.add_account(account)
    rng = random.Random(seed)
    todo = (
        sessions.filter(
            pl.col("end_ts").is_not_null()
            & pl.col("gross_amount").is_not_null()
            & (pl.col("gross_amount") > 0)
        )
        .unique("session_id", keep="first")
        .sort("end_ts", "session_id")
    )
    rows = todo.to_dicts()
    n = len(rows)
    k = math.floor(n * discrepancy_share + 0.5)
    if discrepancy_share > 0 and n >= 20:
        k = max(k, len(SESSION_CATEGORIES))
    chosen = rng.sample(range(n), min(k, n))
    category = dict.fromkeys(range(n), "ok")
    for i, idx in enumerate(chosen):
        category[idx] = SESSION_CATEGORIES[i % len(SESSION_CATEGORIES)]
    truth: list[dict[str, Any]] = []

    def pay(s: dict, cat: str, amount: int, created: int, **kw: Any) -> tuple[dict, dict]:
        meta = {
            "session_id": s["session_id"],
            "charge_point_id": s["charge_point_id"],
            "transaction_id": s["transaction_id"],
            "site_id": s["site_id"] or "",
        }
        pi, ch = store.create_payment(
            amount=amount, currency=s["currency"], created=created, metadata=meta,
            account=account, description=f"Charging session {s['session_id']}", **kw,
        )  # fmt: skip
        truth.append(
            {"session_id": s["session_id"], "category": cat, "payment_intent": pi["id"],
             "charge": ch["id"], "currency": s["currency"].upper(),
             "expected_amount": s["gross_amount"] if cat != "orphan" else None,
             "charged_amount": ch["amount_captured"], "refunded_amount": 0,
             "disputed_amount": 0, "created": from_unix(created)}
        )  # fmt: skip
        return pi, ch

    for i, s in enumerate(rows):
        cat, gross, at = category[i], s["gross_amount"], to_unix(s["end_ts"])
        if cat == "missing":
            truth.append(
                {"session_id": s["session_id"], "category": cat, "payment_intent": None,
                 "charge": None, "currency": s["currency"].upper(), "expected_amount": gross,
                 "charged_amount": 0, "refunded_amount": 0, "disputed_amount": 0,
                 "created": s["end_ts"]}
            )  # fmt: skip
        elif cat == "amount_mismatch":
            pay(s, cat, _wrong_amount(rng, gross, s["currency"]), at)
        elif cat == "duplicate":
            pay(s, cat, gross, at)
            pay(s, cat, gross, at + rng.randint(30, 600))
        elif cat == "failed":
            pay(s, cat, gross, at, fail=rng.choice(("insufficient_funds", "generic_decline")))
        else:
            _, ch = pay(s, cat, gross, at)
            if cat == "refunded":
                store.refund(ch["id"], created=at + rng.randint(3600, 2 * DAY), account=account)
                truth[-1]["refunded_amount"] = gross
            elif cat == "partially_refunded":
                part = max(1, int(gross * rng.uniform(0.2, 0.6)))
                store.refund(ch["id"], created=at + rng.randint(3600, 2 * DAY), amount=part,
                             account=account)  # fmt: skip
                truth[-1]["refunded_amount"] = part
            elif cat == "disputed":
                store.dispute(
                    ch["id"], created=at + rng.randint(3 * DAY, 20 * DAY), account=account,
                    reason=rng.choice(("fraudulent", "product_not_received", "duplicate")),
                )  # fmt: skip
                truth[-1]["disputed_amount"] = gross

    n_orphans = max(1, math.floor(k / len(SESSION_CATEGORIES) + 0.5)) if k and n else 0
    for j in range(n_orphans):
        like = rows[rng.randrange(n)]
        ghost = {**like, "transaction_id": f"orphan-{seed}-{j}"}
        ghost["session_id"] = f"{like['charge_point_id']}:{ghost['transaction_id']}"
        pay(ghost, "orphan", like["gross_amount"], to_unix(like["end_ts"]) + rng.randint(60, 3600))
    if payouts:
        store.run_payouts(account=account)
    return pl.DataFrame(truth, schema=TRUTH)


@contextmanager
def seeded_local_stripe(
    url: str, *, seed: int = 42, discrepancy_share: float = 0.1
) -> Iterator[tuple[LocalStripe, pl.DataFrame]]:
    """The demo without a Stripe account: a local Stripe seeded from the database's finished
    sessions (run after `expected_revenue`); yields the server and the ground truth."""
    with LocalStripe(StripeStore(seed=seed)) as server:
        truth = seed_payments(
            server, sessions_to_seed(url), seed=seed, discrepancy_share=discrepancy_share
        )
        yield server, truth
