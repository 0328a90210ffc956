"""The local Stripe server answered by the real `stripe` SDK: pages, filters, expand, error bodies
parsed into the SDK's exception classes, Connect accounts, fees, payouts, and the seeding."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import stripe

from pipelines.payments.local_stripe import DISPUTE_FEE, LocalStripe, StripeStore, card_fee
from pipelines.payments.seed import CATEGORIES, seed_payments

T0 = 1_717_200_000  # 2024-06-01 00:00 UTC


@pytest.fixture
def server():
    with LocalStripe() as s:
        yield s


def client(server: LocalStripe, **kw) -> stripe.StripeClient:
    kw.setdefault("max_network_retries", 0)
    return stripe.StripeClient(server.api_key, base_addresses={"api": server.base_url}, **kw)


def test_fees_follow_stripe_card_pricing():
    assert card_fee(1000, "usd") == 59  # 29 + 30
    assert card_fee(1234, "eur") == 66  # 35.786 + 30 -> 65.786 -> 66
    assert card_fee(5000, "gbp") == 175  # 145 + 30
    assert card_fee(1000, "jpy") == 36  # 3.6 %, no fixed part
    assert card_fee(2345, "jpy") == 84  # 84.42


def test_pages_newest_first_with_cursors_and_created_filters(server: LocalStripe):
    for i in range(25):
        server.store.create_payment(amount=1000 + i, currency="usd", created=T0 + i * 60)
    c = client(server)
    first = c.v1.payment_intents.list(params={"limit": 10})
    assert [pi.amount for pi in first.data] == list(range(1024, 1014, -1))
    assert first.has_more is True and first.url == "/v1/payment_intents"
    assert [pi.amount for pi in first.auto_paging_iter()] == list(range(1024, 999, -1))
    seen = [r.params.get("starting_after") for r in server.list_requests("/v1/payment_intents")]
    assert seen[0] is None and seen[1] == first.data[-1].id and seen[2] not in (None, seen[1])
    gte = c.v1.payment_intents.list(params={"created": {"gte": T0 + 20 * 60}, "limit": 100})
    assert [pi.amount for pi in gte.data] == [1024, 1023, 1022, 1021, 1020]
    window = c.v1.payment_intents.list(params={"created": {"gt": T0 + 60, "lt": T0 + 4 * 60}})
    assert [pi.amount for pi in window.data] == [1003, 1002]
    exact = c.v1.payment_intents.list(params={"created": T0 + 7 * 60})
    assert [pi.amount for pi in exact.data] == [1007]
    before = c.v1.payment_intents.list(params={"ending_before": first.data[-1].id, "limit": 3})
    assert [pi.amount for pi in before.data] == [1018, 1017, 1016]
    assert before.has_more is True


def test_error_bodies_become_the_sdk_exceptions(server: LocalStripe):
    c = client(server)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        c.v1.charges.retrieve("ch_doesnotexist")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert "ch_doesnotexist" in missing.value.user_message
    with pytest.raises(stripe.InvalidRequestError) as bad:
        c.v1.charges.list(params={"limit": 101})
    assert bad.value.http_status == 400 and bad.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        c.v1.charges.list(params={"colour": "blue"})  # type: ignore[typeddict-unknown-key]
    assert unknown.value.param == "colour"
    with pytest.raises(stripe.AuthenticationError) as wrong:
        stripe.StripeClient(
            "sk_test_wrongkey123456", base_addresses={"api": server.base_url}
        ).v1.payouts.list()
    assert wrong.value.http_status == 401 and "wrongkey" not in str(wrong.value)
    server.fail_next(1, 429)
    with pytest.raises(stripe.RateLimitError) as limited:
        c.v1.payouts.list()
    assert limited.value.http_status == 429
    server.fail_next(1, 500)
    with pytest.raises(stripe.APIError) as broken:
        c.v1.payouts.list()
    assert broken.value.http_status == 500
    assert c.v1.payouts.list().data == []  # the failures were used up
    with pytest.raises(stripe.InvalidRequestError) as cursor:
        c.v1.payouts.list(params={"starting_after": "po_gone"})
    assert (cursor.value.code, cursor.value.param) == ("resource_missing", "starting_after")
    statuses = [r.status for r in server.requests]
    assert statuses == [404, 400, 400, 401, 429, 500, 200, 400]


def test_connect_account_header_separates_data(server: LocalStripe):
    server.store.add_account("acct_1Connected")
    server.store.create_payment(amount=500, currency="eur", created=T0)
    server.store.create_payment(amount=700, currency="eur", created=T0, account="acct_1Connected")
    platform = client(server).v1.payment_intents.list()
    connected = client(server, stripe_account="acct_1Connected").v1.payment_intents.list()
    assert [p.amount for p in platform.data] == [500]
    assert [p.amount for p in connected.data] == [700]
    assert server.requests[-1].account == "acct_1Connected"
    with pytest.raises(stripe.PermissionError):
        client(server, stripe_account="acct_unknown").v1.payment_intents.list()


def test_expand_and_zero_decimal_fee(server: LocalStripe):
    pi, ch = server.store.create_payment(
        amount=2345, currency="JPY", created=T0, metadata={"session_id": "CP-1:77"}
    )
    c = client(server)
    listed = c.v1.payment_intents.list(
        params={"expand": ["data.latest_charge.balance_transaction"]}
    )
    charge = listed.data[0].latest_charge
    assert isinstance(charge, stripe.Charge) and charge.id == ch["id"]
    bt = charge.balance_transaction
    assert isinstance(bt, stripe.BalanceTransaction)
    assert (bt.amount, bt.fee, bt.net, bt.currency) == (2345, 84, 2261, "jpy")
    assert bt.fee_details[0].type == "stripe_fee" and bt.exchange_rate is None
    assert listed.data[0].metadata["session_id"] == "CP-1:77"
    one = c.v1.charges.retrieve(ch["id"], params={"expand": ["payment_intent"]})
    assert (
        isinstance(one.payment_intent, stripe.PaymentIntent) and one.payment_intent.id == pi["id"]
    )
    plain = c.v1.charges.retrieve(ch["id"])
    assert plain.payment_intent == pi["id"]
    with pytest.raises(stripe.InvalidRequestError):
        c.v1.charges.list(params={"expand": ["data.customer_balance"]})


def test_settlement_in_another_currency_sets_the_exchange_rate():
    store = StripeStore(settlement_currency="usd")
    _, ch = store.create_payment(amount=1000, currency="eur", created=T0)
    bt = store.get(ch["balance_transaction"])
    assert (bt["amount"], bt["currency"], bt["exchange_rate"]) == (1085, "usd", 1.085)
    assert bt["fee"] == card_fee(1085, "usd") == 61


def test_refunds_disputes_and_daily_payouts(server: LocalStripe):
    store = server.store
    _, a = store.create_payment(amount=1000, currency="usd", created=T0 + 3600)  # fee 59
    _, b = store.create_payment(amount=2000, currency="usd", created=T0 + 7200)  # fee 88
    _, x = store.create_payment(amount=900, currency="usd", created=T0 + 90000, fail="x")
    store.refund(a["id"], created=T0 + 86400, amount=400)
    store.dispute(b["id"], created=T0 + 4 * 86400)
    payouts = store.run_payouts()
    # day 1 00:00: the refund (available at once) is negative alone: carried over;
    # day 2 00:00 (T0+2d): both charges available: 941 + 1912 - 400 = 2453;
    # day 4: the dispute (-2000 - 1500) leaves the balance negative: no payout
    assert [(p["created"] - T0, p["amount"]) for p in payouts] == [(2 * 86400, 2453)]
    assert x["balance_transaction"] is None and x["status"] == "failed"
    c = client(server)
    paid = c.v1.balance_transactions.list(params={"payout": payouts[0]["id"], "limit": 100})
    assert sorted((t.type, t.net) for t in paid.data) == [
        ("charge", 941), ("charge", 1912), ("refund", -400)
    ]  # fmt: skip
    dispute = c.v1.disputes.list().data[0]
    assert dispute.charge == b["id"] and dispute.amount == 2000
    dbt = c.v1.balance_transactions.list(params={"source": dispute.id}).data[0]
    assert (dbt.type, dbt.amount, dbt.fee, dbt.net) == ("adjustment", -2000, DISPUTE_FEE, -3500)
    charge_a = c.v1.charges.retrieve(a["id"])
    assert (charge_a.amount_refunded, charge_a.refunded) == (400, False)
    assert c.v1.charges.retrieve(b["id"]).disputed is True
    refunds = c.v1.refunds.list(params={"payment_intent": a["payment_intent"]}).data
    assert [r.amount for r in refunds] == [400]
    assert c.v1.payouts.retrieve(payouts[0]["id"]).status == "paid"


def _sessions(n: int, currency: str = "EUR") -> pl.DataFrame:
    start = datetime(2024, 3, 4, 8, tzinfo=UTC)
    return pl.DataFrame(
        {
            "session_id": [f"CP-{i % 3}:{i}" for i in range(n)],
            "charge_point_id": [f"CP-{i % 3}" for i in range(n)],
            "transaction_id": [str(i) for i in range(n)],
            "site_id": ["S1"] * n,
            "currency": [currency] * n,
            "gross_amount": [1000 + 37 * i for i in range(n)],
            "end_ts": [start + timedelta(minutes=47 * i) for i in range(n)],
        }
    )


def test_seed_has_every_category_and_is_deterministic():
    store = StripeStore(seed=1)
    truth = seed_payments(store, _sessions(20), seed=42, discrepancy_share=0.1)
    assert set(truth["category"]) == set(CATEGORIES)
    again = seed_payments(StripeStore(seed=1), _sessions(20), seed=42, discrepancy_share=0.1)
    assert truth.equals(again)
    per = dict(truth.group_by("category").len().iter_rows())
    assert per["duplicate"] == 2 and per["orphan"] == 1
    assert per["ok"] == 20 - 7  # 10 % of 20 is 2, raised to one session per category
    pis = {p["id"]: p for p in store.accounts[""].objects["payment_intent"].values()}
    assert len(pis) == truth["payment_intent"].drop_nulls().len() == 20 - 1 + 1 + 1
    for row in truth.iter_rows(named=True):
        if row["payment_intent"] is None:
            assert row["category"] == "missing"
            assert all(p["metadata"]["session_id"] != row["session_id"] for p in pis.values())
            continue
        pi = pis[row["payment_intent"]]
        assert pi["metadata"]["session_id"] == row["session_id"]
        assert pi["currency"] == "eur" and pi["created"] == int(row["created"].timestamp())
        if row["category"] == "amount_mismatch":
            assert pi["amount"] != row["expected_amount"]
        elif row["category"] == "failed":
            assert pi["status"] == "requires_payment_method" and pi["amount_received"] == 0
        elif row["category"] != "orphan":
            assert pi["amount"] == row["expected_amount"] and pi["status"] == "succeeded"
    refunded = truth.filter(pl.col("category") == "refunded").row(0, named=True)
    assert store.get(refunded["charge"])["refunded"] is True
    partial = truth.filter(pl.col("category") == "partially_refunded").row(0, named=True)
    assert 0 < partial["refunded_amount"] < partial["expected_amount"]
    assert store.get(partial["charge"])["amount_refunded"] == partial["refunded_amount"]
    orphan = truth.filter(pl.col("category") == "orphan").row(0, named=True)
    assert orphan["session_id"] not in set(_sessions(20)["session_id"])
    assert store.accounts[""].objects["payout"], "payouts were made"


def test_seed_without_discrepancies_pays_every_session_exactly():
    store = StripeStore()
    truth = seed_payments(store, _sessions(30, "GBP"), seed=7, discrepancy_share=0.0)
    assert set(truth["category"]) == {"ok"} and truth.height == 30
    assert (truth["charged_amount"] == truth["expected_amount"]).all()
