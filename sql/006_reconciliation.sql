-- Revenue reconciliation against Stripe (asset `reconciliation`), replaced one day at a time.
-- Amounts in the currency's minor units. A session line's day is its session's day; an orphan
-- payment's line is on the day the payment intent was created.

CREATE TABLE analytics.reconciliation_lines (
    day                 date NOT NULL,
    line_key            text NOT NULL,   -- session_id, or the PI id of an orphan payment
    session_id          text,
    site_id             text,
    currency            text NOT NULL,   -- upper-case ISO code
    minor_unit_exponent smallint NOT NULL,
    expected_gross      bigint NOT NULL,
    captured            bigint NOT NULL,
    refunded            bigint NOT NULL,
    disputed            bigint NOT NULL,
    fees                bigint NOT NULL,
    net                 bigint NOT NULL,  -- captured - refunded - fees
    bt_net              bigint NOT NULL,  -- sum of the balance transactions' nets
    paid_out            bigint NOT NULL,
    payment_intent_ids  text NOT NULL,    -- comma-separated, sorted
    payments            bigint NOT NULL,
    captured_payments   bigint NOT NULL,
    settled_elsewhere   bigint NOT NULL,  -- balance transactions in another currency, left out
    category            text NOT NULL CHECK (category IN (
        'matched', 'amount_mismatch', 'missing_payment', 'orphan_payment', 'duplicate_payment',
        'refunded', 'partially_refunded', 'disputed', 'failed')),
    reason              text NOT NULL,
    PRIMARY KEY (day, line_key)
);
CREATE INDEX ON analytics.reconciliation_lines (session_id);
CREATE INDEX ON analytics.reconciliation_lines (category, day);

CREATE TABLE analytics.reconciliation_site_day (
    day date NOT NULL, site_id text, currency text NOT NULL, sessions bigint NOT NULL,
    expected_gross bigint NOT NULL, captured bigint NOT NULL, refunded bigint NOT NULL,
    disputed bigint NOT NULL, fees bigint NOT NULL, net bigint NOT NULL, bt_net bigint NOT NULL,
    paid_out bigint NOT NULL, settled_elsewhere bigint NOT NULL,
    n_matched bigint NOT NULL, n_amount_mismatch bigint NOT NULL,
    n_missing_payment bigint NOT NULL, n_orphan_payment bigint NOT NULL,
    n_duplicate_payment bigint NOT NULL, n_refunded bigint NOT NULL,
    n_partially_refunded bigint NOT NULL, n_disputed bigint NOT NULL, n_failed bigint NOT NULL
);
-- site_id is null for orphan payments of chargers we do not know
CREATE INDEX ON analytics.reconciliation_site_day (day, site_id);

-- payment ids of a line, for the check that no payment is reconciled twice
CREATE INDEX ON analytics.reconciliation_lines USING gin (string_to_array(payment_intent_ids, ','));
-- payments name a session without its day: find it on any day
CREATE INDEX ON analytics.expected_revenue (session_id);
