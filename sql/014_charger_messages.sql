-- Issue 16: every message a charger sends, what it declares, conflicting seqNos.

-- Charger-initiated messages without a table of their own (NotifyReport, NotifyEVChargingNeeds,
-- SignCertificate, ...): the payload as the handler received it (snake_case keys), on arrival.
-- The audit log (ocpp_message) keeps the frame itself; this is the queryable store per action.
SELECT chargeops_create_timeseries('charger_message', $cols$
    ts               timestamptz NOT NULL,   -- arrival
    charge_point_id  text NOT NULL,
    action           text NOT NULL,
    unique_id        text NOT NULL,
    payload          jsonb NOT NULL,
    PRIMARY KEY (charge_point_id, ts, action, unique_id)
$cols$, '7 days', 'charge_point_id', '30 days');

DO $$
BEGIN
    PERFORM chargeops_ensure_partitions('charger_message', now() - interval '1 month',
                                        now() + interval '2 months');
END
$$;

-- The charger's device model as it last reported it (2.0.1 NotifyReport): one row per component,
-- variable and attribute type; a later report replaces the value.
CREATE TABLE charger_variable (
    charge_point_id    text NOT NULL,
    component          text NOT NULL,
    component_instance text NOT NULL DEFAULT '',
    evse_id            integer,
    connector_id       integer,
    variable           text NOT NULL,
    variable_instance  text NOT NULL DEFAULT '',
    attribute_type     text NOT NULL DEFAULT 'Actual',
    value              text,
    mutability         text,
    reported_at        timestamptz NOT NULL,
    received_at        timestamptz NOT NULL
);
CREATE UNIQUE INDEX charger_variable_key ON charger_variable (
    charge_point_id, component, component_instance, coalesce(evse_id, -1),
    coalesce(connector_id, -1), variable, variable_instance, attribute_type);

-- Where an EVSE or connector is known from: NULL = accepted on first use (within the plausible
-- count, see ingest/inventory.py); 'NotifyReport' = the charger's inventory; 'registry' = entered
-- by the operator (chargeops register / a fleet file).
ALTER TABLE evse ADD COLUMN declared_by text;
ALTER TABLE connector ADD COLUMN declared_by text;

-- The digest of the first TransactionEvent stored per seqNo: a retry with the same content is
-- a silent duplicate, one with other content is quarantined (the first is kept).
CREATE TABLE transaction_event_digest (
    charge_point_id text NOT NULL,
    transaction_id  text NOT NULL,
    seq_no          integer NOT NULL,
    digest          text NOT NULL,
    PRIMARY KEY (charge_point_id, transaction_id, seq_no)
);
