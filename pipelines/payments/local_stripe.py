"""A local server that speaks the part of Stripe's HTTP API the ingestion calls.

Why not `localstripe` or `stripe-mock`: stripe-mock cannot be installed here and answers canned
fixtures, and localstripe reports every fee as 0 and has no payouts, while the reconciliation is
about fees, nets and payouts. So this server keeps Stripe's objects in memory, computes card fees
the way Stripe prices them (2.9 % + 30 minor units; 3.6 % for zero-decimal JPY; 1500 per
dispute), makes daily payouts out of available balance, and answers the real `stripe` SDK with
Stripe's list envelope, cursors, `created` filters, `expand`, error bodies and status codes.

Stdlib only (`http.server`); one lock guards the store, so seeding and serving can overlap.
"""

from __future__ import annotations

import copy
import json
import random
import re
import secrets
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chargeops.money import exponent_of

RESOURCES = {  # URL segment -> object name
    "payment_intents": "payment_intent",
    "charges": "charge",
    "refunds": "refund",
    "disputes": "dispute",
    "balance_transactions": "balance_transaction",
    "payouts": "payout",
}
PREFIX = {
    "payment_intent": "pi",
    "charge": "ch",
    "refund": "re",
    "dispute": "dp",
    "balance_transaction": "txn",
    "payout": "po",
}
OBJECT_OF_PREFIX = {p: o for o, p in PREFIX.items()}
# list filters each endpoint accepts besides limit/starting_after/ending_before/created/expand
FILTERS = {
    "payment_intent": {"customer"},
    "charge": {"payment_intent", "customer"},
    "refund": {"charge", "payment_intent"},
    "dispute": {"charge", "payment_intent"},
    "balance_transaction": {"payout", "source", "type", "currency"},
    "payout": {"status", "currency"},
}
EXPANDABLE = {
    "payment_intent": {"latest_charge"},
    "charge": {"payment_intent", "balance_transaction"},
    "refund": {"charge", "payment_intent", "balance_transaction"},
    "dispute": {"charge", "payment_intent"},
    "balance_transaction": {"source"},
    "payout": {"balance_transaction"},
}
DISPUTE_FEE = 1500  # minor units of the settlement currency
# settlement conversions for accounts that settle in one currency (units per unit)
RATES = {("eur", "usd"): "1.0850", ("gbp", "usd"): "1.2700", ("jpy", "usd"): "0.0067",
         ("usd", "eur"): "0.9200", ("gbp", "eur"): "1.1700", ("jpy", "eur"): "0.0062",
         ("usd", "gbp"): "0.7900", ("eur", "gbp"): "0.8550", ("jpy", "gbp"): "0.0053"}  # fmt: skip
DAY = 86400


def card_fee(amount: int, currency: str) -> int:
    """Stripe's standard card pricing on `amount` minor units, rounded half up."""
    if exponent_of(currency) == 0:
        fee = Decimal(amount) * Decimal("0.036")
    else:
        fee = Decimal(amount) * Decimal("0.029") + 30
    return int(fee.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _midnight(ts: int) -> int:
    return ts - ts % DAY


class StripeError(Exception):
    """An error the server answers with Stripe's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status, message, type, code, param,
        )  # fmt: skip

    def body(self) -> dict:
        err: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            err["param"] = self.param
        return {"error": err}


@dataclass
class Account:
    """One balance: the platform ('') or a Connect account."""

    id: str
    settlement_currency: str | None = None  # None: settle in each charge's currency
    objects: dict[str, dict[str, dict]] = field(default_factory=lambda: {o: {} for o in PREFIX})
    paid_out: dict[str, str] = field(default_factory=dict)  # balance transaction id -> payout id


class StripeStore:
    """Stripe objects in memory, created the way Stripe would create them."""

    def __init__(self, *, seed: int = 0, settlement_currency: str | None = None):
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self.accounts: dict[str, Account] = {"": Account("", settlement_currency)}

    # --- accounts and ids ---------------------------------------------------------------------

    def add_account(self, account_id: str, *, settlement_currency: str | None = None) -> Account:
        with self.lock:
            return self.accounts.setdefault(account_id, Account(account_id, settlement_currency))

    def account(self, account_id: str = "") -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise StripeError(
                403,
                f"The provided key does not have access to account '{account_id}' (or that "
                "account does not exist). Application access may have been revoked.",
                type="invalid_request_error",
                code="account_invalid",
            ) from None

    def _id(self, prefix: str) -> str:
        alphabet = string.ascii_letters + string.digits
        return f"{prefix}_" + "".join(self._rng.choice(alphabet) for _ in range(24))

    def get(self, object_id: str, account: str = "") -> dict:
        obj = OBJECT_OF_PREFIX.get(object_id.split("_", 1)[0])
        found = self.account(account).objects[obj].get(object_id) if obj else None
        if found is None:
            raise StripeError(404, f"No such object: '{object_id}'", code="resource_missing")
        return found

    def count(self, obj: str, account: str = "") -> int:
        return len(self.account(account).objects[obj])

    # --- object creation ----------------------------------------------------------------------

    def _put(self, account: str, obj: dict) -> dict:
        self.account(account).objects[obj["object"]][obj["id"]] = obj
        return obj

    def _settle(self, account: str, amount: int, currency: str) -> tuple[int, str, float | None]:
        """`amount` converted to the account's settlement currency, and the rate used."""
        target = self.account(account).settlement_currency
        if target is None or target == currency:
            return amount, currency, None
        rate = Decimal(RATES[(currency, target)])
        scaled = (
            Decimal(amount) * rate * Decimal(10) ** (exponent_of(target) - exponent_of(currency))
        )
        return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_UP)), target, float(rate)

    def _balance_transaction(
        self,
        account: str,
        *,
        created: int,
        available_on: int,
        type: str,
        category: str,
        source: str,
        amount: int,
        currency: str,
        fee: int,
        fee_description: str,
        exchange_rate: float | None,
    ) -> dict:
        details = []
        if fee:
            details.append({"amount": fee, "application": None, "currency": currency,
                            "description": fee_description, "type": "stripe_fee"})  # fmt: skip
        return self._put(
            account,
            {
                "id": self._id("txn"),
                "object": "balance_transaction",
                "amount": amount,
                "available_on": available_on,
                "balance_type": "payments",
                "created": created,
                "currency": currency,
                "description": None,
                "exchange_rate": exchange_rate,
                "fee": fee,
                "fee_details": details,
                "net": amount - fee,
                "reporting_category": category,
                "source": source,
                "status": "available" if available_on <= time.time() else "pending",
                "type": type,
            },
        )

    def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        created: int,
        metadata: dict[str, str] | None = None,
        account: str = "",
        fail: str | None = None,
        description: str | None = None,
    ) -> tuple[dict, dict]:
        """A confirmed card PaymentIntent and its charge; `fail` = a decline code."""
        currency = currency.lower()
        metadata = {k: str(v) for k, v in (metadata or {}).items()}
        with self.lock:
            pi_id, ch_id = self._id("pi"), self._id("ch")
            pm = self._id("pm")
            bt = None
            if not fail:
                settled, bt_currency, rate = self._settle(account, amount, currency)
                bt = self._balance_transaction(
                    account, created=created, available_on=_midnight(created) + 2 * DAY,
                    type="charge", category="charge", source=ch_id, amount=settled,
                    currency=bt_currency, fee=card_fee(settled, bt_currency),
                    fee_description="Stripe processing fees", exchange_rate=rate,
                )  # fmt: skip
            charge = self._put(
                account,
                {
                    "id": ch_id,
                    "object": "charge",
                    "amount": amount,
                    "amount_captured": 0 if fail else amount,
                    "amount_refunded": 0,
                    "balance_transaction": bt["id"] if bt else None,
                    "calculated_statement_descriptor": "CHARGEOPS",
                    "captured": not fail,
                    "created": created,
                    "currency": currency,
                    "customer": None,
                    "description": description,
                    "disputed": False,
                    "failure_code": fail,
                    "failure_message": "Your card was declined." if fail else None,
                    "livemode": False,
                    "metadata": dict(metadata),
                    "outcome": {
                        "network_status": "declined_by_network" if fail else "approved_by_network",
                        "reason": "generic_decline" if fail else None,
                        "risk_level": "normal",
                        "seller_message": "The bank did not return any further details."
                        if fail
                        else "Payment complete.",
                        "type": "issuer_declined" if fail else "authorized",
                    },
                    "paid": not fail,
                    "payment_intent": pi_id,
                    "payment_method": pm,
                    "payment_method_details": {"type": "card", "card": {"brand": "visa"}},
                    "refunded": False,
                    "status": "failed" if fail else "succeeded",
                },
            )
            intent = self._put(
                account,
                {
                    "id": pi_id,
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_capturable": 0,
                    "amount_received": 0 if fail else amount,
                    "canceled_at": None,
                    "capture_method": "automatic_async",
                    "client_secret": f"{pi_id}_secret_{self._id('x')[2:]}",
                    "confirmation_method": "automatic",
                    "created": created,
                    "currency": currency,
                    "customer": None,
                    "description": description,
                    "last_payment_error": {
                        "code": "card_declined",
                        "decline_code": fail,
                        "message": "Your card was declined.",
                        "type": "card_error",
                        "charge": ch_id,
                    }
                    if fail
                    else None,
                    "latest_charge": ch_id,
                    "livemode": False,
                    "metadata": metadata,
                    "payment_method": None if fail else pm,
                    "payment_method_types": ["card"],
                    "status": "requires_payment_method" if fail else "succeeded",
                },
            )
        return copy.deepcopy(intent), copy.deepcopy(charge)

    def refund(
        self,
        charge_id: str,
        *,
        created: int,
        amount: int | None = None,
        reason: str | None = "requested_by_customer",
        account: str = "",
    ) -> dict:
        """Refund a charge (all of what is left by default). Stripe keeps the original fee."""
        with self.lock:
            charge = self.get(charge_id, account)
            left = charge["amount_captured"] - charge["amount_refunded"]
            amount = left if amount is None else amount
            if not 0 < amount <= left:
                raise StripeError(400, f"Refund amount ({amount}) is greater than unrefunded "
                                  f"amount on charge ({left})", code="amount_too_large")  # fmt: skip
            re_id = self._id("re")
            settled, bt_currency, rate = self._settle(account, amount, charge["currency"])
            bt = self._balance_transaction(
                account, created=created, available_on=created, type="refund", category="refund",
                source=re_id, amount=-settled, currency=bt_currency, fee=0, fee_description="",
                exchange_rate=rate,
            )  # fmt: skip
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
            refund = self._put(
                account,
                {
                    "id": re_id,
                    "object": "refund",
                    "amount": amount,
                    "balance_transaction": bt["id"],
                    "charge": charge_id,
                    "created": created,
                    "currency": charge["currency"],
                    "metadata": {},
                    "payment_intent": charge["payment_intent"],
                    "reason": reason,
                    "receipt_number": None,
                    "status": "succeeded",
                },
            )
            return copy.deepcopy(refund)

    def dispute(
        self,
        charge_id: str,
        *,
        created: int,
        reason: str = "fraudulent",
        status: str = "needs_response",
        account: str = "",
    ) -> dict:
        """A chargeback: the amount and Stripe's dispute fee leave the balance."""
        with self.lock:
            charge = self.get(charge_id, account)
            dp_id = self._id("dp")
            settled, bt_currency, rate = self._settle(account, charge["amount"], charge["currency"])
            bt = self._balance_transaction(
                account, created=created, available_on=created, type="adjustment",
                category="dispute", source=dp_id, amount=-settled, currency=bt_currency,
                fee=DISPUTE_FEE, fee_description="Dispute fee", exchange_rate=rate,
            )  # fmt: skip
            charge["disputed"] = True
            dispute = self._put(
                account,
                {
                    "id": dp_id,
                    "object": "dispute",
                    "amount": charge["amount"],
                    "balance_transactions": [copy.deepcopy(bt)],
                    "charge": charge_id,
                    "created": created,
                    "currency": charge["currency"],
                    "evidence_details": {
                        "due_by": created + 7 * DAY,
                        "has_evidence": False,
                        "past_due": False,
                        "submission_count": 0,
                    },  # fmt: skip
                    "is_charge_refundable": False,
                    "livemode": False,
                    "metadata": {},
                    "payment_intent": charge["payment_intent"],
                    "reason": reason,
                    "status": status,
                },
            )
            return copy.deepcopy(dispute)

    def run_payouts(self, *, until: int | None = None, account: str = "") -> list[dict]:
        """Daily automatic payouts: at each UTC midnight up to `until`, per currency, pay out
        the net of every balance transaction available by then and not yet paid (carried over
        while the sum is not positive). `None`: until everything available has been paid."""
        made: list[dict] = []
        with self.lock:
            acct = self.account(account)
            unpaid = [
                bt
                for bt in acct.objects["balance_transaction"].values()
                if bt["type"] != "payout" and bt["id"] not in acct.paid_out
            ]
            if not unpaid:
                return made
            last = max(bt["available_on"] for bt in unpaid)
            end = _midnight(until if until is not None else last + DAY - 1)
            day = _midnight(min(bt["available_on"] for bt in unpaid))
            if day < min(bt["available_on"] for bt in unpaid):
                day += DAY
            while day <= end:
                due: dict[str, list[dict]] = {}
                for bt in unpaid:
                    if bt["available_on"] <= day and bt["id"] not in acct.paid_out:
                        due.setdefault(bt["currency"], []).append(bt)
                for currency in sorted(due):
                    total = sum(bt["net"] for bt in due[currency])
                    if total <= 0:
                        continue
                    made.append(self._payout(acct, day, currency, total, due[currency]))
                day += DAY
        return [copy.deepcopy(p) for p in made]

    def _payout(self, acct: Account, day: int, currency: str, total: int, bts: list[dict]) -> dict:
        po_id = self._id("po")
        bt = self._balance_transaction(
            acct.id, created=day, available_on=day, type="payout", category="payout",
            source=po_id, amount=-total, currency=currency, fee=0, fee_description="",
            exchange_rate=None,
        )  # fmt: skip
        for paid in bts:
            acct.paid_out[paid["id"]] = po_id
        arrival = day + DAY
        return self._put(
            acct.id,
            {
                "id": po_id,
                "object": "payout",
                "amount": total,
                "arrival_date": arrival,
                "automatic": True,
                "balance_transaction": bt["id"],
                "created": day,
                "currency": currency,
                "description": "STRIPE PAYOUT",
                "destination": "ba_" + po_id[3:],
                "failure_code": None,
                "livemode": False,
                "metadata": {},
                "method": "standard",
                "reconciliation_status": "completed",
                "source_type": "card",
                "statement_descriptor": None,
                "status": "paid" if arrival <= time.time() else "in_transit",
                "type": "bank_account",
            },
        )

    # --- reading, as the API answers ----------------------------------------------------------

    def list(self, obj: str, params: dict[str, str], account: str = "") -> dict:
        """The list envelope for GET /v1/<obj>s with Stripe's parameters (already validated)."""
        with self.lock:
            acct = self.account(account)
            items = list(acct.objects[obj].values())
            items = [o for o in items if _created_matches(o["created"], params)]
            for key in FILTERS[obj] & params.keys():
                value = params[key]
                if key == "payout":
                    items = [
                        o
                        for o in items
                        if acct.paid_out.get(o["id"]) == value and o["type"] != "payout"
                    ]
                else:
                    items = [o for o in items if o.get(key) == value]
            items.sort(key=lambda o: (o["created"], o["id"]), reverse=True)
            limit = _limit(params.get("limit"))
            if after := params.get("starting_after"):  # older than the cursor object
                mark = _cursor(acct, obj, after, "starting_after")
                older = [o for o in items if (o["created"], o["id"]) < mark]
                page, has_more = older[:limit], len(older) > limit
            elif before := params.get("ending_before"):  # newer, the closest `limit` of them
                mark = _cursor(acct, obj, before, "ending_before")
                newer = [o for o in items if (o["created"], o["id"]) > mark]
                page, has_more = newer[-limit:], len(newer) > limit
            else:
                page, has_more = items[:limit], len(items) > limit
            expand = _expand_paths(params)
            data = [self._expanded(copy.deepcopy(o), _under(expand, "data"), acct) for o in page]
            return {"object": "list", "data": data, "has_more": has_more, "url": f"/v1/{obj}s"}

    def retrieve(self, obj: str, object_id: str, params: dict[str, str], account: str = "") -> dict:
        with self.lock:
            acct = self.account(account)
            found = acct.objects[obj].get(object_id)
            if found is None:
                raise StripeError(
                    404, f"No such {obj}: '{object_id}'", code="resource_missing", param="id"
                )
            return self._expanded(copy.deepcopy(found), _expand_paths(params), acct)

    def _expanded(self, obj: dict, paths: list[str], acct: Account) -> dict:
        for path in paths:
            head, _, rest = path.partition(".")
            if head not in EXPANDABLE[obj["object"]]:
                raise StripeError(
                    400, f"This property cannot be expanded ({path}).", param="expand"
                )
            value = obj.get(head)
            if isinstance(value, str):
                kind = OBJECT_OF_PREFIX.get(value.split("_", 1)[0])
                found = acct.objects[kind].get(value) if kind else None
                if found is not None:
                    obj[head] = copy.deepcopy(found)
            if rest and isinstance(obj.get(head), dict):
                obj[head] = self._expanded(obj[head], [rest], acct)
        return obj


def _limit(raw: str | None) -> int:
    if raw is None:
        return 10
    if not re.fullmatch(r"\d+", raw):
        raise StripeError(400, f"Invalid integer: {raw}", param="limit")
    value = int(raw)
    if not 1 <= value <= 100:
        raise StripeError(
            400, "This value must be greater than or equal to 1 and less than or equal to 100.",
            param="limit",
        )  # fmt: skip
    return value


def _cursor(acct: Account, obj: str, object_id: str, param: str) -> tuple[int, str]:
    """Where a cursor object sits in the order; it need not match the list's filters."""
    found = acct.objects[obj].get(object_id)
    if found is None:
        raise StripeError(
            400, f"No such {obj}: '{object_id}'", code="resource_missing", param=param
        )
    return found["created"], found["id"]


_CREATED_OPS = {
    "created": lambda v, x: v == x,
    "created[gt]": lambda v, x: v > x,
    "created[gte]": lambda v, x: v >= x,
    "created[lt]": lambda v, x: v < x,
    "created[lte]": lambda v, x: v <= x,
}


def _created_matches(created: int, params: dict[str, str]) -> bool:
    return all(op(created, int(params[k])) for k, op in _CREATED_OPS.items() if k in params)


def _expand_paths(params: dict[str, str]) -> list[str]:
    return [v for k, v in params.items() if re.fullmatch(r"expand\[\d*\]", k)]


def _under(paths: list[str], prefix: str) -> list[str]:
    out = []
    for p in paths:
        head, _, rest = p.partition(".")
        if head != prefix or not rest:
            raise StripeError(
                400, f"This property cannot be expanded ({p}); list expansions start with data.",
                param="expand",
            )  # fmt: skip
        out.append(rest)
    return out


def validate_list_params(obj: str, pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Reject what Stripe rejects: unknown parameters, non-integer `created` bounds."""
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in ("limit", "starting_after", "ending_before") or key in FILTERS[obj]:
            pass
        elif key in _CREATED_OPS:
            if not re.fullmatch(r"-?\d+", value):
                raise StripeError(400, f"Invalid integer: {value}", param=key)
        elif not re.fullmatch(r"expand\[\d*\]", key):
            raise StripeError(400, f"Received unknown parameter: {key}", param=key)
        if key == "expand[]":  # keep every entry of the unindexed form
            key = f"expand[{sum(k.startswith('expand[') for k in params)}]"
        params[key] = value
    return params


@dataclass
class RequestRecord:
    method: str
    path: str
    params: dict[str, str]
    account: str
    status: int = 0


class LocalStripe:
    """`with LocalStripe() as server:` a Stripe API on 127.0.0.1 for the real SDK.

    `.base_url` goes into `StripeClient(base_addresses={"api": ...})`, `.api_key` is the secret
    key it accepts, `.store` holds the objects, `.requests` logs every request, and
    `.fail_next(n, status=429)` makes the next n requests fail the way Stripe does.
    """

    def __init__(self, store: StripeStore | None = None, *, api_key: str | None = None):
        self.store = store or StripeStore()
        self.api_key = api_key or "sk_test_local_" + secrets.token_hex(12)
        self.requests: list[RequestRecord] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(self, n: int, status: int = 429) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def _next_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def list_requests(self, path: str) -> Iterator[RequestRecord]:
        return (r for r in list(self.requests) if r.path == path)

    def start(self) -> LocalStripe:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="local-stripe", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> LocalStripe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(
        self, method: str, path: str, query: str, headers: dict[str, str]
    ) -> tuple[int, dict]:
        """Route one request; returns (status, JSON body)."""
        account = headers.get("stripe-account", "")
        record = RequestRecord(method, path, dict(parse_qsl(query)), account)
        self._log(record)
        try:
            self._authenticate(headers.get("authorization", ""))
            failure = self._next_failure()
            if failure == 429:
                raise StripeError(
                    429,
                    "Too many requests hit the API too quickly. We recommend an exponential "
                    "backoff of your requests.",
                    code="rate_limit",
                )
            if failure is not None:
                raise StripeError(
                    failure,
                    "An unknown error occurred while processing your request.",
                    type="api_error",
                )
            record.status, body = 200, self._route(method, path, query, account)
        except StripeError as e:
            record.status, body = e.status, e.body()
        return record.status, body

    def _authenticate(self, authorization: str) -> None:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_"
                "SECRET_KEY').",
            )
        if not secrets.compare_digest(key.strip(), self.api_key):
            masked = key[:8] + "*" * max(4, len(key) - 12) + (key[-4:] if len(key) > 12 else "")
            raise StripeError(401, f"Invalid API Key provided: {masked}")

    def _route(self, method: str, path: str, query: str, account: str) -> dict:
        m = re.fullmatch(r"/v1/([a-z_]+)(?:/([A-Za-z0-9_]+))?/?", path)
        if method != "GET" or not m or m.group(1) not in RESOURCES:
            raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")
        obj = RESOURCES[m.group(1)]
        self.store.account(account)  # 403 for an unknown Connect account
        pairs = parse_qsl(query, keep_blank_values=True)
        if m.group(2):
            for key, _ in pairs:
                if not re.fullmatch(r"expand\[\d*\]", key):
                    raise StripeError(400, f"Received unknown parameter: {key}", param=key)
            params = {f"expand[{i}]": v for i, (_, v) in enumerate(pairs)}
            return self.store.retrieve(obj, m.group(2), params, account)
        return self.store.list(obj, validate_list_params(obj, pairs), account)


def _handler(server: LocalStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "local-stripe/1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, body = server.answer(self.command, parts.path, parts.query, headers)
            payload = json.dumps(body, indent=2).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", "req_" + secrets.token_hex(7))
            self.send_header("Stripe-Version", headers.get("stripe-version", "2025-01-01"))
            if headers.get("stripe-account"):
                self.send_header("Stripe-Account", headers["stripe-account"])
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet; requests are logged
            pass

    return Handler


def to_unix(ts: datetime) -> int:
    return int(ts.astimezone(UTC).timestamp())


def from_unix(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
