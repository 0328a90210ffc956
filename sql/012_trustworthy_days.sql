-- Figures a regulator can trust on any day (issue 15).

-- Values the collector refused to store as data because they cannot be physical: a non-finite
-- number (NaN, Infinity, or a value that overflows once in base units), a timestamp far ahead
-- of the time it was received. Acknowledged like any frame (the audit row keeps the frame),
-- never summed, listed here with the reason.
CREATE TABLE quarantine (
    received_at     timestamptz NOT NULL,
    charge_point_id text NOT NULL,
    kind            text NOT NULL,              -- the table it would have gone to
    ts              timestamptz NOT NULL,       -- the time the charger gave it
    evse_id         integer NOT NULL DEFAULT 0,
    connector_id    integer NOT NULL DEFAULT 0,
    transaction_id  text NOT NULL DEFAULT '',
    what            text NOT NULL DEFAULT '',   -- measurand or status
    raw_value       text NOT NULL DEFAULT '',
    reason          text NOT NULL,
    PRIMARY KEY (charge_point_id, kind, ts, evse_id, connector_id, transaction_id, what, raw_value)
);
CREATE INDEX quarantine_received_idx ON quarantine (received_at);

-- Sessions: where the end comes from, failed attempts kept as data, impossible steps left out.
ALTER TABLE analytics.sessions ADD COLUMN end_source text;
ALTER TABLE analytics.sessions ADD COLUMN failed_attempt boolean;
ALTER TABLE analytics.sessions ADD COLUMN quarantined_steps integer;

-- Per day, the raw values the reconstruction refused to count (sessions.py, plausibility.py).
CREATE TABLE analytics.quarantine (
    day date NOT NULL, charge_point_id text NOT NULL, evse_id integer, connector_id integer,
    transaction_id text, ts timestamptz, value double precision, previous double precision,
    reason text NOT NULL
);
CREATE INDEX ON analytics.quarantine (day);

-- Per daily asset and day: did the last materialisation succeed and pass its blocking checks?
-- Assets refuse to run on an upstream day that is not 'ok'; reports name the days that are not.
CREATE TABLE analytics.partition_status (
    asset      text NOT NULL,
    day        date NOT NULL,
    status     text NOT NULL CHECK (status IN ('ok', 'failed')),
    detail     text NOT NULL DEFAULT '',
    run_id     text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset, day)
);

-- Days computed before this migration were written by runs that succeeded (an asset replaced its
-- day only at the end of a successful run): record them, so an upgraded database does not refuse
-- its own history.
INSERT INTO analytics.partition_status (asset, day, status, detail)
SELECT asset, day, 'ok', 'computed before partition_status existed' FROM (
    SELECT DISTINCT 'connector_states' AS asset, day FROM analytics.connector_states
    UNION SELECT DISTINCT 'sessions', day FROM analytics.sessions
    UNION SELECT DISTINCT 'utilisation', day FROM analytics.utilisation_hourly
    UNION SELECT DISTINCT 'uptime', day FROM analytics.uptime_daily
    UNION SELECT DISTINCT 'energy', day FROM analytics.energy_site_day
    UNION SELECT DISTINCT 'peak_usage', day FROM analytics.peak_usage
    UNION SELECT DISTINCT 'expected_revenue', day FROM analytics.expected_revenue
    UNION SELECT DISTINCT 'emissions', day FROM analytics.emissions_site_day
    UNION SELECT DISTINCT 'reconciliation', day FROM analytics.reconciliation_lines
    UNION SELECT DISTINCT 'maintenance_features', day FROM analytics.maintenance_features
    UNION SELECT DISTINCT 'maintenance_scores', day FROM analytics.maintenance_scores
) computed
ON CONFLICT (asset, day) DO NOTHING;
