-- Raw Stripe objects, upserted by id (ON CONFLICT (id) DO UPDATE) by the stripe_payments asset.
-- Amounts are integers in the currency's minor units, as Stripe sends them; currencies are lower
-- case, as Stripe writes them. `account` is the Connect account id ('' for the platform itself).
-- `raw` keeps the whole object as received, so a field we did not map is never lost.

CREATE TABLE stripe_payment_intent (
    id               text PRIMARY KEY,
    account          text NOT NULL DEFAULT '',
    created          timestamptz NOT NULL,
    amount           bigint NOT NULL,
    amount_received  bigint NOT NULL DEFAULT 0,
    currency         text NOT NULL,
    status           text NOT NULL,   -- succeeded | requires_payment_method | canceled | processing ...
    latest_charge    text,
    session_id       text,            -- metadata.session_id (charge_point_id:transaction_id)
    charge_point_id  text,            -- metadata.charge_point_id
    transaction_id   text,            -- metadata.transaction_id
    metadata         jsonb NOT NULL DEFAULT '{}',
    livemode         boolean NOT NULL DEFAULT false,
    raw              jsonb NOT NULL,
    synced_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON stripe_payment_intent (session_id);
CREATE INDEX ON stripe_payment_intent (created);

CREATE TABLE stripe_charge (
    id                   text PRIMARY KEY,
    account              text NOT NULL DEFAULT '',
    payment_intent       text,
    created              timestamptz NOT NULL,
    amount               bigint NOT NULL,
    amount_captured      bigint NOT NULL DEFAULT 0,
    amount_refunded      bigint NOT NULL DEFAULT 0,
    currency             text NOT NULL,
    status               text NOT NULL,   -- succeeded | pending | failed
    captured             boolean NOT NULL DEFAULT false,
    refunded             boolean NOT NULL DEFAULT false,
    disputed             boolean NOT NULL DEFAULT false,
    failure_code         text,
    balance_transaction  text,
    raw                  jsonb NOT NULL,
    synced_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON stripe_charge (payment_intent);
CREATE INDEX ON stripe_charge (created);

CREATE TABLE stripe_refund (
    id                   text PRIMARY KEY,
    account              text NOT NULL DEFAULT '',
    charge               text,
    payment_intent       text,
    created              timestamptz NOT NULL,
    amount               bigint NOT NULL,
    currency             text NOT NULL,
    status               text NOT NULL,   -- succeeded | pending | failed | canceled
    reason               text,
    balance_transaction  text,
    raw                  jsonb NOT NULL,
    synced_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON stripe_refund (payment_intent);

CREATE TABLE stripe_dispute (
    id              text PRIMARY KEY,
    account         text NOT NULL DEFAULT '',
    charge          text,
    payment_intent  text,
    created         timestamptz NOT NULL,
    amount          bigint NOT NULL,
    currency        text NOT NULL,
    status          text NOT NULL,   -- needs_response | under_review | won | lost ...
    reason          text,
    raw             jsonb NOT NULL,
    synced_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON stripe_dispute (payment_intent);

-- amount/fee/net are in the balance's (settlement) currency; exchange_rate is set when the
-- charge's currency differed. `payout` is filled from GET /v1/balance_transactions?payout=...
CREATE TABLE stripe_balance_transaction (
    id             text PRIMARY KEY,
    account        text NOT NULL DEFAULT '',
    created        timestamptz NOT NULL,
    available_on   timestamptz,
    type           text NOT NULL,   -- charge | payment | refund | adjustment | payout | ...
    source         text,            -- ch_..., re_..., dp_..., po_...
    amount         bigint NOT NULL,
    fee            bigint NOT NULL DEFAULT 0,
    net            bigint NOT NULL,
    currency       text NOT NULL,
    exchange_rate  numeric,
    status         text,
    payout         text,
    raw            jsonb NOT NULL,
    synced_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON stripe_balance_transaction (source);
CREATE INDEX ON stripe_balance_transaction (payout);

CREATE TABLE stripe_payout (
    id            text PRIMARY KEY,
    account       text NOT NULL DEFAULT '',
    created       timestamptz NOT NULL,
    arrival_date  timestamptz,
    amount        bigint NOT NULL,
    currency      text NOT NULL,
    status        text NOT NULL,   -- paid | pending | in_transit | canceled | failed
    raw           jsonb NOT NULL,
    synced_at     timestamptz NOT NULL DEFAULT now()
);

-- The incremental cursor per object type and account: the greatest `created` synced so far.
CREATE TABLE stripe_sync_state (
    object        text NOT NULL,   -- payment_intent | charge | refund | dispute | balance_transaction | payout
    account       text NOT NULL DEFAULT '',
    last_created  timestamptz,
    synced_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (object, account)
);
