-- Issue 17: fees in imported history. An export's fee (ChargePoint `Fee`/`Currency`, an OCPI
-- CDR's `total_cost`/`currency`, a mapped fee column) is a payment on its session, marked as
-- imported rather than synced from Stripe. The expected_revenue asset prices a session without
-- a tariff in force at its imported fee; the reconciliation counts the fee as captured, so
-- revenue and reconciliation cover imported history.

CREATE TABLE import_payment (
    charge_point_id  text NOT NULL,
    transaction_id   text NOT NULL,
    session_id       text GENERATED ALWAYS AS (charge_point_id || ':' || transaction_id) STORED,
    amount           bigint NOT NULL CHECK (amount >= 0),  -- minor units of currency
    currency         text NOT NULL,                         -- ISO 4217, upper case
    paid_at          timestamptz NOT NULL,                  -- the session's stop (exports say no more)
    import_batch_id  bigint NOT NULL REFERENCES import_batch (import_batch_id),
    line             integer NOT NULL,                      -- the row's line in the file
    PRIMARY KEY (charge_point_id, transaction_id)
);
CREATE INDEX ON import_payment (session_id);

-- `chargeops import csv FILE --mapping MAP.yaml`: any CSV layout, described by a mapping
ALTER TABLE import_batch DROP CONSTRAINT import_batch_format_check;
ALTER TABLE import_batch ADD CONSTRAINT import_batch_format_check
    CHECK (format IN ('chargepoint', 'acn', 'ocpi', 'csv'));

-- a row may carry more than one note (its end date contradicted its duration, and it overlapped
-- another session)
ALTER TABLE import_flag DROP CONSTRAINT import_flag_pkey;
ALTER TABLE import_flag ADD PRIMARY KEY (import_batch_id, line, reason);

-- the export's own CO2 saving estimate (ChargePoint `GHG Savings (kg)`) over the sessions this
-- file added, and their energy: the compliance report compares it with its own figure and says
-- why they differ; NULL when the file states none
ALTER TABLE import_batch ADD COLUMN stated_ghg_kg double precision;
ALTER TABLE import_batch ADD COLUMN stated_ghg_energy_wh double precision;
