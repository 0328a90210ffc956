"""Stripe ingestion with Stripe's own SDK: every object type listed incrementally by `created`,
upserted by id into the raw `stripe_*` tables, the cursor advanced only with the commit.

Why an overlap: an object's `created` never changes, but its state does (a charge gets refunded,
a dispute is won). Each run re-reads the last `overlap` before the cursor, and re-fetches the
charges and intents named by new refunds and disputes, so recent changes land; `ON CONFLICT (id)
DO UPDATE` makes the re-read harmless.

Retries: the SDK's `max_network_retries` retries connection errors, 409 and 5xx with exponential
backoff, but not a 429 unless Stripe adds `Stripe-Should-Retry: true` (see
`stripe._http_client.HTTPClient._should_retry`), so rate limits get our own bounded exponential
backoff here, resuming the listing after the last object received. A rejected key stops the run
with `StripeAuthError`, whose message never contains the key.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from chargeops.db import connect
from chargeops.settings import ConfigError

if TYPE_CHECKING:
    import stripe

log = logging.getLogger(__name__)

# in the order they are synced: parents before what points at them
OBJECTS = ("payment_intent", "charge", "refund", "dispute", "balance_transaction", "payout")
SERVICES = {
    "payment_intent": "payment_intents",
    "charge": "charges",
    "refund": "refunds",
    "dispute": "disputes",
    "balance_transaction": "balance_transactions",
    "payout": "payouts",
}
COLUMNS = {  # table columns filled from the object (besides id, account, raw, synced_at)
    "payment_intent": ("created", "amount", "amount_received", "currency", "status",
                       "latest_charge", "session_id", "charge_point_id", "transaction_id",
                       "metadata", "livemode"),
    "charge": ("payment_intent", "created", "amount", "amount_captured", "amount_refunded",
               "currency", "status", "captured", "refunded", "disputed", "failure_code",
               "balance_transaction"),
    "refund": ("charge", "payment_intent", "created", "amount", "currency", "status", "reason",
               "balance_transaction"),
    "dispute": ("charge", "payment_intent", "created", "amount", "currency", "status", "reason"),
    "balance_transaction": ("created", "available_on", "type", "source", "amount", "fee", "net",
                            "currency", "exchange_rate", "status", "payout"),
    "payout": ("created", "arrival_date", "amount", "currency", "status"),
}  # fmt: skip
_TIMES = {"created", "available_on", "arrival_date"}
_FROM_METADATA = {"session_id", "charge_point_id", "transaction_id"}


class StripeAuthError(ConfigError):
    """Stripe refused the credentials: the run stops with this message alone."""


@dataclass(frozen=True)
class StripeConfig:
    """How to reach Stripe. `api_base` empty: Stripe itself; `account`: a Connect account id."""

    api_key: str = field(repr=False)
    api_base: str = ""
    account: str = ""
    max_retries: int = 4  # the SDK's network retries (connection errors, 409, 5xx)
    rate_limit_retries: int = 6  # our retries of a 429
    backoff_base: float = 0.5  # seconds; doubled per retry, with jitter
    backoff_cap: float = 20.0
    overlap: timedelta = timedelta(days=3)
    page_size: int = 100

    def __post_init__(self) -> None:
        if not self.api_key:
            raise StripeAuthError(
                "no Stripe API key: set STRIPE_API_KEY to a secret key (sk_live_... or sk_test_...)"
            )

    def client(self) -> stripe.StripeClient:
        kwargs: dict[str, Any] = {"max_network_retries": self.max_retries}
        if self.api_base:
            kwargs["base_addresses"] = {"api": self.api_base.rstrip("/")}
        if self.account:
            kwargs["stripe_account"] = self.account
        import stripe  # here, not at import: the Dagster code location loads this module

        return stripe.StripeClient(self.api_key, **kwargs)


@dataclass
class SyncResult:
    upserted: dict[str, int]
    cursors: dict[str, datetime | None]
    retries: int = 0


def _ts(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _id_of(value: Any) -> Any:
    """An expandable field: its id whether it came expanded or not."""
    if value is None or isinstance(value, str):
        return value
    return value.get("id")


def to_row(obj: str, data: dict[str, Any], account: str) -> dict[str, Any]:
    """The table row for one object as Stripe sent it (`data` from `to_dict()`)."""
    meta = data.get("metadata") or {}
    row: dict[str, Any] = {"id": data["id"], "account": account}
    for col in COLUMNS[obj]:
        if col in _FROM_METADATA:
            row[col] = meta.get(col)
        elif col == "metadata":
            row[col] = Jsonb(meta)
        elif col in _TIMES:
            row[col] = _ts(data.get(col))
        elif col == "payout":
            row[col] = data.get("_payout")
        elif col in ("latest_charge", "payment_intent", "charge", "balance_transaction", "source"):
            row[col] = _id_of(data.get(col))
        else:
            row[col] = data.get(col)
    for col in ("amount_received", "amount_captured", "amount_refunded", "fee"):
        if col in row and row[col] is None:
            row[col] = 0
    for col in ("captured", "refunded", "disputed", "livemode"):
        if col in row and row[col] is None:
            row[col] = False
    raw = {k: v for k, v in data.items() if k != "_payout"}
    row["raw"] = Jsonb(json.loads(json.dumps(raw, default=str)))
    return row


def _upsert_sql(obj: str) -> str:
    cols = ("id", "account", *COLUMNS[obj], "raw")
    updates = [f"{c} = EXCLUDED.{c}" for c in cols if c not in ("id", "payout")]
    if obj == "balance_transaction":  # the plain listing does not know the payout: keep it
        updates.append("payout = COALESCE(EXCLUDED.payout, stripe_balance_transaction.payout)")
    updates.append("synced_at = now()")
    return (
        f"INSERT INTO stripe_{obj} ({', '.join(cols)}) "
        f"VALUES ({', '.join(f'%({c})s' for c in cols)}) "
        f"ON CONFLICT (id) DO UPDATE SET {', '.join(updates)}"
    )


def upsert(conn: psycopg.Connection, obj: str, rows: list[dict[str, Any]]) -> int:
    if rows:
        with conn.cursor() as cur:
            cur.executemany(_upsert_sql(obj), rows)
    return len(rows)


def read_cursor(conn: psycopg.Connection, obj: str, account: str) -> datetime | None:
    row = conn.execute(
        "SELECT last_created FROM stripe_sync_state WHERE object = %s AND account = %s",
        (obj, account),
    ).fetchone()
    return row[0] if row else None


def write_cursor(conn: psycopg.Connection, obj: str, account: str, last: datetime | None) -> None:
    conn.execute(
        """INSERT INTO stripe_sync_state (object, account, last_created, synced_at)
           VALUES (%s, %s, %s, now())
           ON CONFLICT (object, account) DO UPDATE
           SET last_created = GREATEST(stripe_sync_state.last_created, EXCLUDED.last_created),
               synced_at = now()""",
        (obj, account, last),
    )


class _Lister:
    """Lists with the SDK's auto-paging, retrying 429s with bounded exponential backoff."""

    def __init__(self, client: stripe.StripeClient, config: StripeConfig):
        self.client, self.config = client, config
        self.retries = 0

    def _sleep(self, attempt: int, err: stripe.RateLimitError) -> None:
        after = (err.headers or {}).get("Retry-After") if err.headers else None
        try:
            wait = float(after) if after else 0.0
        except ValueError:
            wait = 0.0
        if not wait:
            wait = self.config.backoff_base * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
        time.sleep(min(wait, self.config.backoff_cap))

    def call(self, fn: Callable[[], Any]) -> Any:
        import stripe

        attempt = 0
        while True:
            try:
                return fn()
            except stripe.RateLimitError as e:
                attempt += 1
                if attempt > self.config.rate_limit_retries:
                    raise
                self.retries += 1
                log.info("Stripe rate limit (429): retry %d", attempt)
                self._sleep(attempt, e)

    def iterate(self, obj: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        import stripe

        service = getattr(self.client.v1, SERVICES[obj])
        last_id: str | None = None
        attempt = 0
        while True:
            page_params = {**params, "limit": self.config.page_size}
            if last_id:
                page_params["starting_after"] = last_id
            try:
                for item in service.list(params=page_params).auto_paging_iter():
                    last_id, attempt = item.id, 0
                    yield item.to_dict(for_json=True)
                return
            except stripe.RateLimitError as e:  # resume after the last object received
                attempt += 1
                if attempt > self.config.rate_limit_retries:
                    raise
                self.retries += 1
                log.info("Stripe rate limit (429) listing %s: retry %d", obj, attempt)
                self._sleep(attempt, e)

    def retrieve(self, obj: str, object_id: str) -> dict[str, Any]:
        service = getattr(self.client.v1, SERVICES[obj])
        return self.call(lambda: service.retrieve(object_id)).to_dict(for_json=True)


def _since(cursor: datetime | None, overlap: timedelta) -> dict[str, Any]:
    if cursor is None:
        return {}
    return {"created": {"gte": int((cursor - overlap).timestamp())}}


def _progress(enabled: bool | None):
    """A rich progress display on a terminal; None otherwise."""
    if enabled is False or (enabled is None and not sys.stderr.isatty()):
        return None
    from rich.progress import Progress, SpinnerColumn, TextColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True)


def sync_stripe(
    url: str, client_config: StripeConfig, *, progress: bool | None = None
) -> dict[str, int]:
    """Sync every object type; return objects upserted per type."""
    return run_sync(url, client_config, progress=progress).upserted


def run_sync(url: str, config: StripeConfig, *, progress: bool | None = None) -> SyncResult:
    """`sync_stripe` with the cursors reached and the 429 retries made (for metadata)."""
    import stripe

    account = config.account
    lister = _Lister(config.client(), config)
    result = SyncResult(upserted={o: 0 for o in OBJECTS}, cursors={})
    bar = _progress(progress)
    task = bar.add_task("stripe") if bar else None
    if bar:
        bar.start()
    try:
        with connect(url, autocommit=True) as conn:  # one transaction per object type
            seen: dict[str, set[str]] = {o: set() for o in OBJECTS}
            for obj in OBJECTS:
                cursor = read_cursor(conn, obj, account)
                newest = cursor
                with conn.transaction():
                    batch: list[dict[str, Any]] = []
                    for item in lister.iterate(obj, _since(cursor, config.overlap)):
                        batch.append(to_row(obj, item, account))
                        seen[obj].add(item["id"])
                        created = _ts(item["created"])
                        newest = created if newest is None or created > newest else newest
                        if len(batch) >= 500:
                            result.upserted[obj] += upsert(conn, obj, batch)
                            batch = []
                        if bar and task is not None and len(seen[obj]) % 100 == 0:
                            bar.update(task, description=f"stripe {obj}: {len(seen[obj])}")
                    result.upserted[obj] += upsert(conn, obj, batch)
                    if obj == "dispute":
                        _refresh_parents(conn, lister, seen, account, result)
                    if obj == "payout":
                        _assign_payouts(conn, lister, seen["payout"], account)
                    write_cursor(conn, obj, account, newest)
                result.cursors[obj] = newest
                log.info("stripe %s: %d upserted", obj, result.upserted[obj])
    except stripe.AuthenticationError:
        raise StripeAuthError(
            "Stripe rejected the API key (401): set STRIPE_API_KEY to a valid secret key"
        ) from None
    except stripe.PermissionError:
        raise StripeAuthError(
            f"Stripe refused access (403) to account {account or '(platform)'}: check "
            "CHARGEOPS_STRIPE_ACCOUNT and the key's permissions"
        ) from None
    finally:
        if bar:
            bar.stop()
    result.retries = lister.retries
    return result


def _refresh_parents(
    conn: psycopg.Connection,
    lister: _Lister,
    seen: dict[str, set[str]],
    account: str,
    result: SyncResult,
) -> None:
    """Re-fetch the charges and intents that refunds and disputes of this run point at, when
    they were created before the overlap: their refunded/disputed state changed since."""
    charges, intents = set(), set()
    for obj in ("refund", "dispute"):
        if not seen[obj]:
            continue
        for charge, intent in conn.execute(
            f"SELECT charge, payment_intent FROM stripe_{obj} WHERE id = ANY(%s)",
            (list(seen[obj]),),
        ):
            charges.add(charge)
            intents.add(intent)
    for obj, ids in (("charge", charges), ("payment_intent", intents)):
        stale = sorted(i for i in ids if i and i not in seen[obj])
        rows = [to_row(obj, lister.retrieve(obj, i), account) for i in stale]
        result.upserted[obj] += upsert(conn, obj, rows)
        seen[obj].update(stale)


def _assign_payouts(
    conn: psycopg.Connection, lister: _Lister, payouts: set[str], account: str
) -> None:
    """Fill `stripe_balance_transaction.payout` from each payout's balance transactions (the
    payout's own `type = payout` transaction is not part of what it paid out). An automatic
    payout's transactions are fixed when it is created, so payouts linked before are skipped."""
    linked = {
        po
        for (po,) in conn.execute(
            "SELECT DISTINCT payout FROM stripe_balance_transaction WHERE payout = ANY(%s)",
            (sorted(payouts),),
        )
    }
    for po in sorted(payouts - linked):
        rows = []
        for item in lister.iterate("balance_transaction", {"payout": po}):
            if item.get("type") == "payout":
                continue
            rows.append(to_row("balance_transaction", {**item, "_payout": po}, account))
        upsert(conn, "balance_transaction", rows)
