-- Raw tables written by the collector. Units are normalised on ingest (Wh, W, A, V, Percent, ...);
-- the raw unit and multiplier are kept beside the normalised value.

CREATE TABLE site (
    site_id         text PRIMARY KEY,
    name            text NOT NULL,
    site_type       text,
    timezone        text NOT NULL DEFAULT 'UTC',
    country         text,
    grid_region     text,
    operating_hours jsonb,          -- {"mon": ["07:00", "19:00"], ...}; NULL means 24/7
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tariff (
    tariff_id            text PRIMARY KEY,
    site_id              text REFERENCES site (site_id),
    charge_point_id      text,
    currency             text NOT NULL,
    energy_price_per_kwh numeric NOT NULL DEFAULT 0,
    time_price_per_min   numeric NOT NULL DEFAULT 0,
    idle_fee_per_min     numeric NOT NULL DEFAULT 0,
    idle_grace_min       integer NOT NULL DEFAULT 0,
    session_fee          numeric NOT NULL DEFAULT 0,
    tax_rate             numeric NOT NULL DEFAULT 0,
    prices_include_tax   boolean NOT NULL DEFAULT true,
    valid_from           timestamptz NOT NULL DEFAULT '2000-01-01 00:00+00',
    valid_to             timestamptz
);

CREATE TABLE charge_point (
    charge_point_id   text PRIMARY KEY,
    site_id           text REFERENCES site (site_id),
    password_hash     text,           -- scrypt; NULL means no password (auto-registered without one)
    vendor            text,
    model             text,
    serial_number     text,
    firmware_version  text,
    ocpp_version      text,
    current_type      text,           -- AC | DC, where known
    max_power_w       double precision,
    auto_registered   boolean NOT NULL DEFAULT false,
    registered_at     timestamptz NOT NULL DEFAULT now(),
    last_boot_at      timestamptz,
    last_seen_at      timestamptz
);

CREATE TABLE evse (
    charge_point_id text NOT NULL REFERENCES charge_point (charge_point_id),
    evse_id         integer NOT NULL,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_point_id, evse_id)
);

-- OCPP 1.6 connectorId N (N >= 1) is stored as EVSE N, connector 1; connectorId 0 (the charge
-- point itself) as EVSE 0, connector 0. OCPP 2.0.1 ids are stored as sent.
CREATE TABLE connector (
    charge_point_id text NOT NULL,
    evse_id         integer NOT NULL,
    connector_id    integer NOT NULL,
    connector_type  text,
    max_power_w     double precision,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_point_id, evse_id, connector_id),
    FOREIGN KEY (charge_point_id, evse_id) REFERENCES evse (charge_point_id, evse_id)
);

-- One row per transaction. 1.6 integer ids (assigned here) and 2.0.1 string ids share the text
-- column transaction_id; the pair (charge_point_id, transaction_id) is the key.
CREATE SEQUENCE transaction_id_seq;

CREATE TABLE transaction (
    charge_point_id  text NOT NULL,
    transaction_id   text NOT NULL,
    ocpp_version     text NOT NULL,
    evse_id          integer,
    connector_id     integer,
    id_token         text,
    id_token_type    text,
    start_ts         timestamptz,
    meter_start_wh   double precision,
    stop_ts          timestamptz,
    meter_stop_wh    double precision,
    stop_reason      text,
    reservation_id   integer,
    remote_start_id  integer,
    charging_state   text,
    last_seq_no      integer,
    offline_seen     boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (charge_point_id, transaction_id)
);
CREATE INDEX transaction_start_ts_idx ON transaction (start_ts);
CREATE INDEX transaction_stop_ts_idx ON transaction (stop_ts);
-- A retried 1.6 StartTransaction must get back the id it was given the first time.
CREATE UNIQUE INDEX transaction_v16_start_key
    ON transaction (charge_point_id, evse_id, start_ts) WHERE ocpp_version = '1.6';

SELECT chargeops_create_timeseries('status_event', $cols$
    ts                timestamptz NOT NULL,
    charge_point_id   text NOT NULL,
    evse_id           integer NOT NULL,
    connector_id      integer NOT NULL,
    status            text NOT NULL,
    error_code        text NOT NULL DEFAULT 'NoError',
    info              text,
    vendor_id         text,
    vendor_error_code text,
    ocpp_version      text NOT NULL,
    received_at       timestamptz NOT NULL,
    PRIMARY KEY (charge_point_id, evse_id, connector_id, ts, status)
$cols$, '7 days', 'charge_point_id', '30 days');

SELECT chargeops_create_timeseries('meter_value', $cols$
    ts               timestamptz NOT NULL,
    charge_point_id  text NOT NULL,
    evse_id          integer NOT NULL,
    connector_id     integer NOT NULL,
    transaction_id   text,
    measurand        text NOT NULL,
    phase            text NOT NULL DEFAULT '',
    location         text NOT NULL,
    context          text NOT NULL,
    value            double precision NOT NULL,
    unit             text NOT NULL,
    raw_value        text NOT NULL,
    raw_unit         text,
    multiplier       integer NOT NULL DEFAULT 0,
    received_at      timestamptz NOT NULL,
    PRIMARY KEY (charge_point_id, evse_id, connector_id, ts, measurand, phase, location, context)
$cols$, '1 day', 'charge_point_id', '7 days');
CREATE INDEX meter_value_tx_idx ON meter_value (charge_point_id, transaction_id);

-- 2.0.1 TransactionEvents, ordered and deduplicated by seqNo.
SELECT chargeops_create_timeseries('transaction_event', $cols$
    ts               timestamptz NOT NULL,
    charge_point_id  text NOT NULL,
    transaction_id   text NOT NULL,
    seq_no           integer NOT NULL,
    event_type       text NOT NULL,
    trigger_reason   text NOT NULL,
    charging_state   text,
    evse_id          integer,
    connector_id     integer,
    offline          boolean NOT NULL DEFAULT false,
    received_at      timestamptz NOT NULL,
    PRIMARY KEY (charge_point_id, transaction_id, seq_no, ts)
$cols$, '7 days', 'charge_point_id', '30 days');

SELECT chargeops_create_timeseries('connection_event', $cols$
    ts               timestamptz NOT NULL,
    charge_point_id  text NOT NULL,
    event            text NOT NULL,   -- connect | disconnect | boot | heartbeat | refused |
                                      -- firmware_status | diagnostics_status | notify_event | security_event
    event_key        text NOT NULL DEFAULT '',  -- tells apart same-time events (NotifyEvent eventId)
    detail           jsonb,
    PRIMARY KEY (charge_point_id, ts, event, event_key)
$cols$, '7 days', 'charge_point_id', '30 days');

-- Every frame in and out: the audit trail and the source for replay.
CREATE SEQUENCE ocpp_message_seq;
SELECT chargeops_create_timeseries('ocpp_message', $cols$
    ts               timestamptz NOT NULL,
    message_seq      bigint NOT NULL DEFAULT nextval('ocpp_message_seq'),
    charge_point_id  text NOT NULL,
    direction        text NOT NULL CHECK (direction IN ('in', 'out')),
    ocpp_version     text,
    message_type     smallint,
    unique_id        text,
    action           text,
    payload          jsonb,
    raw              text,            -- only for frames that are not valid JSON
    error_code       text,            -- for CALLERRORs
    PRIMARY KEY (ts, message_seq)
$cols$, '1 day', 'charge_point_id', '7 days');

CREATE TABLE outage_exclusion (
    exclusion_id    bigserial PRIMARY KEY,
    charge_point_id text NOT NULL,
    evse_id         integer,          -- NULL: the whole charge point
    connector_id    integer,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('utility_interruption', 'vehicle_fault',
        'scheduled_maintenance', 'vandalism', 'natural_disaster', 'other')),
    note            text,
    entered_by      text,
    entered_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);

DO $$
BEGIN
    PERFORM chargeops_ensure_partitions(t, now() - interval '1 month', now() + interval '2 months')
    FROM unnest(ARRAY['status_event', 'meter_value', 'transaction_event', 'connection_event',
                      'ocpp_message']) AS t;
END
$$;
