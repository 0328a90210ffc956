"""The ingestion with the real `stripe` SDK against the local Stripe server, into a real
PostgreSQL: pages, incremental re-syncs, retries, a rejected key, Connect, the Dagster asset."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import psycopg
import pytest
import stripe

from pipelines.defs.payments.ingest_asset import ASSETS, stripe_payments
from pipelines.payments.local_stripe import LocalStripe
from pipelines.payments.seed import seed_payments, seeded_local_stripe, sessions_to_seed
from pipelines.payments.sync import StripeAuthError, StripeConfig, run_sync, sync_stripe
from pipelines.resources import DatabaseResource, StripeResource

T0 = 1_717_200_000  # 2024-06-01 00:00 UTC
DAY = 86400


@pytest.fixture
def server():
    with LocalStripe() as s:
        yield s


def config(server: LocalStripe, **kw) -> StripeConfig:
    kw.setdefault("backoff_base", 0.01)
    return StripeConfig(api_key=server.api_key, api_base=server.base_url, **kw)


def count(db: psycopg.Connection, table: str, where: str = "true") -> int:
    return db.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]


def test_pages_of_100_store_each_object_once(db, database_url, server: LocalStripe):
    for i in range(250):
        server.store.create_payment(
            amount=1000 + i, currency="usd", created=T0 + 60 * i,
            metadata={"session_id": f"CP-1:{i}", "charge_point_id": "CP-1",
                      "transaction_id": str(i), "site_id": "S1"},
        )  # fmt: skip
    upserted = sync_stripe(database_url, config(server))
    assert upserted["payment_intent"] == 250 and upserted["charge"] == 250
    assert upserted["balance_transaction"] == 250
    pages = list(server.list_requests("/v1/payment_intents"))
    assert [r.params.get("limit") for r in pages] == ["100"] * 3
    assert [r.params.get("starting_after") is not None for r in pages] == [False, True, True]
    assert count(db, "stripe_payment_intent") == 250
    assert count(db, "stripe_payment_intent", "session_id = 'CP-1:249' AND amount = 1249") == 1
    row = db.execute(
        """SELECT p.charge_point_id, p.transaction_id, p.metadata->>'site_id', p.currency,
                  p.status, c.id = p.latest_charge, c.amount_captured, b.fee, b.net, p.created
           FROM stripe_payment_intent p JOIN stripe_charge c ON c.payment_intent = p.id
           JOIN stripe_balance_transaction b ON b.id = c.balance_transaction AND b.source = c.id
           WHERE p.session_id = 'CP-1:0'"""
    ).fetchone()
    assert row == ("CP-1", "0", "S1", "usd", "succeeded", True, 1000, 59, 941,
                   datetime.fromtimestamp(T0, UTC))  # fmt: skip
    cursor = db.execute(
        "SELECT last_created FROM stripe_sync_state WHERE object = 'payment_intent'"
    ).fetchone()[0]
    assert cursor == datetime.fromtimestamp(T0 + 60 * 249, UTC)


def test_incremental_resync_stores_nothing_twice_and_sees_a_new_refund(
    db, database_url, server: LocalStripe
):
    store = server.store
    charges = [
        store.create_payment(amount=2000, currency="eur", created=T0 + DAY * i)[1]
        for i in range(10)
    ]
    store.run_payouts(until=T0 + 12 * DAY)
    cfg = config(server, overlap=timedelta(days=1))
    first = run_sync(database_url, cfg)
    assert first.upserted["payout"] == 10  # one a day: each charge available 2 days later
    assert count(db, "stripe_balance_transaction", "payout IS NOT NULL") == 10
    paid = db.execute(
        """SELECT p.amount, sum(b.net) FROM stripe_payout p
           JOIN stripe_balance_transaction b ON b.payout = p.id GROUP BY p.id, p.amount"""
    ).fetchall()
    assert paid and all(amount == net for amount, net in paid)
    before = {t: count(db, f"stripe_{t}") for t in ("payment_intent", "charge", "payout")}
    n_requests = len(server.requests)

    # the oldest charge is refunded long after its creation (outside the overlap)
    store.refund(charges[0]["id"], created=T0 + 20 * DAY)
    second = run_sync(database_url, cfg)
    assert second.upserted["refund"] == 1
    # the last two days again (cursor - 1 day overlap), and the refunded one fetched by id
    assert second.upserted["payment_intent"] == 3 and second.upserted["charge"] == 3
    assert {t: count(db, f"stripe_{t}") for t in before} == before  # nothing twice
    assert count(db, "stripe_refund", f"charge = '{charges[0]['id']}' AND amount = 2000") == 1
    assert count(db, "stripe_charge", f"id = '{charges[0]['id']}' AND refunded") == 1
    since = [r.params.get("created[gte]") for r in server.requests[n_requests:]]
    assert str(T0 + 9 * DAY - DAY) in since  # the payment intents from the cursor - overlap
    assert any(r.path == f"/v1/charges/{charges[0]['id']}" for r in server.requests[n_requests:])
    cursors = dict(db.execute("SELECT object, last_created FROM stripe_sync_state").fetchall())
    assert cursors["refund"] == datetime.fromtimestamp(T0 + 20 * DAY, UTC)
    assert cursors["charge"] == datetime.fromtimestamp(T0 + 9 * DAY, UTC)


def test_rate_limit_then_success_and_a_server_error_retried_by_the_sdk(
    db, database_url, server: LocalStripe
):
    for i in range(5):
        server.store.create_payment(amount=700, currency="gbp", created=T0 + i)
    server.fail_next(2, 429)
    result = run_sync(database_url, config(server))
    assert result.retries == 2 and result.upserted["payment_intent"] == 5
    statuses = [r.status for r in server.list_requests("/v1/payment_intents")]
    assert statuses == [429, 429, 200]
    server.fail_next(1, 500)  # the SDK's own max_network_retries
    n = len(server.requests)
    again = run_sync(database_url, config(server, max_retries=2))
    assert again.retries == 0 and [r.status for r in server.requests[n : n + 2]] == [500, 200]
    assert count(db, "stripe_payment_intent") == 5


def test_rate_limit_that_never_ends_fails_after_bounded_retries(database_url, server):
    server.fail_next(50, 429)
    with pytest.raises(stripe.RateLimitError):
        run_sync(database_url, config(server, rate_limit_retries=3))
    assert len(server.requests) == 4


def test_rejected_key_stops_with_one_clear_message_and_writes_nothing(
    db, database_url, server: LocalStripe
):
    server.store.create_payment(amount=700, currency="usd", created=T0)
    bad = StripeConfig(api_key="sk_test_notthekey0000000000", api_base=server.base_url)
    assert "notthekey" not in repr(bad)
    with pytest.raises(StripeAuthError) as err:
        sync_stripe(database_url, bad)
    assert str(err.value) == (
        "Stripe rejected the API key (401): set STRIPE_API_KEY to a valid secret key"
    )
    assert "notthekey" not in str(err.value) and err.value.__cause__ is None
    assert count(db, "stripe_payment_intent") == 0 and count(db, "stripe_sync_state") == 0
    assert len(server.requests) == 1  # no retry of a 401


def test_connect_account_rows_are_kept_apart(db, database_url, server: LocalStripe):
    server.store.add_account("acct_1Other")
    server.store.create_payment(amount=100, currency="usd", created=T0)
    server.store.create_payment(amount=200, currency="usd", created=T0, account="acct_1Other")
    sync_stripe(database_url, config(server))
    sync_stripe(database_url, config(server, account="acct_1Other"))
    rows = db.execute(
        "SELECT account, amount FROM stripe_payment_intent ORDER BY amount"
    ).fetchall()
    assert rows == [("", 100), ("acct_1Other", 200)]
    assert count(db, "stripe_sync_state", "account = 'acct_1Other'") == 6
    assert {r.account for r in server.requests} == {"", "acct_1Other"}


def test_seeded_discrepancies_land_in_the_tables(db, database_url, server: LocalStripe):
    day = date(2024, 3, 5)
    n = 24
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("expected_revenue", "sessions"):
            conn.execute(f"DELETE FROM analytics.{table} WHERE day = %s", (day,))
        for i in range(n):
            end = datetime(2024, 3, 5, 9, tzinfo=UTC) + timedelta(minutes=20 * i)
            conn.execute(
                """INSERT INTO analytics.sessions (day, session_id, charge_point_id,
                       transaction_id, site_id, end_ts) VALUES (%s, %s, 'CP-9', %s, 'S9', %s)""",
                (day, f"CP-9:{i}", str(i), end if i else None),
            )
            conn.execute(
                """INSERT INTO analytics.expected_revenue (day, session_id, charge_point_id,
                       site_id, tariff_id, currency, minor_unit_exponent, gross_amount)
                   VALUES (%s, %s, 'CP-9', 'S9', 'T', 'JPY', 0, %s)""",
                (day, f"CP-9:{i}", 500 + 10 * i),
            )
    try:
        sessions = sessions_to_seed(database_url)
        mine = sessions.filter(pl.col("charge_point_id") == "CP-9")
        assert mine.height == n - 1  # the session without an end is not billed yet
        truth = seed_payments(server, mine, seed=3, discrepancy_share=0.25)
        sync_stripe(database_url, config(server))
        with seeded_local_stripe(database_url, seed=3) as (demo, demo_truth):  # the demo hook
            assert set(mine["session_id"]) <= set(demo_truth["session_id"])
            listed = stripe.StripeClient(demo.api_key, base_addresses={"api": demo.base_url})
            n_listed = sum(1 for _ in listed.v1.payment_intents.list().auto_paging_iter())
            assert n_listed == demo_truth["payment_intent"].drop_nulls().len()
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for table in ("expected_revenue", "sessions"):
                conn.execute(f"DELETE FROM analytics.{table} WHERE day = %s", (day,))
    stored = dict(
        db.execute("SELECT id, session_id FROM stripe_payment_intent").fetchall()  # type: ignore[arg-type]
    )
    for row in truth.filter(pl.col("payment_intent").is_not_null()).iter_rows(named=True):
        assert stored[row["payment_intent"]] == row["session_id"]
    disputed = truth.filter(pl.col("category") == "disputed").row(0, named=True)
    got = db.execute(
        """SELECT d.amount, b.type, b.fee, b.net FROM stripe_dispute d
           JOIN stripe_balance_transaction b ON b.source = d.id
           WHERE d.payment_intent = %s""",
        (disputed["payment_intent"],),
    ).fetchone()
    assert got == (
        disputed["expected_amount"],
        "adjustment",
        1500,
        -disputed["expected_amount"] - 1500,
    )
    fees = db.execute(
        "SELECT sum(fee), sum(amount) FROM stripe_balance_transaction WHERE type = 'charge'"
    ).fetchone()
    charged = int(truth["charged_amount"].sum())
    assert fees[1] == charged
    assert fees[0] == sum((a * 36 + 500) // 1000 for a in truth["charged_amount"])  # 3.6 %


def test_asset_materialises_with_the_local_server(db, database_url, server: LocalStripe):
    for i in range(3):
        _, ch = server.store.create_payment(amount=1500, currency="usd", created=T0 + 3600 * i)
    server.store.refund(ch["id"], created=T0 + DAY, amount=500)
    server.store.run_payouts()
    result = dg.materialize(
        ASSETS,
        resources={
            "database": DatabaseResource(url=database_url),
            "stripe": StripeResource(api_key=server.api_key, api_base=server.base_url),
        },
    )
    assert result.success
    mat = result.asset_materializations_for_node(stripe_payments.op.name)[0]
    meta = mat.metadata
    assert meta["payment_intent_upserted"].value == 3
    assert meta["refund_upserted"].value == 1 and meta["payout_upserted"].value == 1
    assert meta["cursors"].value["refund"] == datetime.fromtimestamp(T0 + DAY, UTC).isoformat()
    assert server.api_key not in str(meta)
    assert count(db, "stripe_charge", "amount_refunded = 500") == 1
    assert count(db, "stripe_balance_transaction", "payout IS NOT NULL") == 4


def test_resource_without_a_key_says_so(monkeypatch):
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    with pytest.raises(StripeAuthError, match="set STRIPE_API_KEY"):
        StripeResource().config()
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_fromenv")
    monkeypatch.setenv("CHARGEOPS_STRIPE_API_BASE", "http://127.0.0.1:1")
    monkeypatch.setenv("CHARGEOPS_STRIPE_ACCOUNT", "acct_1Env")
    cfg = StripeResource().config()
    assert (cfg.api_key, cfg.api_base, cfg.account) == (
        "sk_test_fromenv", "http://127.0.0.1:1", "acct_1Env"
    )  # fmt: skip
    client = cfg.client()
    assert client._requestor._options.stripe_account == "acct_1Env"
    assert client._requestor._options.base_addresses["api"] == "http://127.0.0.1:1"
