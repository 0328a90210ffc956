-- Derived tables written by the Dagster assets, one daily (UTC) partition at a time: each asset
-- deletes its day and inserts it again in one transaction, so re-runs never double count.
CREATE SCHEMA IF NOT EXISTS analytics;

CREATE TABLE analytics.sessions (
    day date NOT NULL, session_id text NOT NULL, charge_point_id text NOT NULL,
    transaction_id text NOT NULL, ocpp_version text, site_id text, evse_id integer,
    connector_id integer, id_token text, start_ts timestamptz, end_ts timestamptz,
    plug_in_ts timestamptz, plug_out_ts timestamptz, charging_end_ts timestamptz,
    duration_min double precision, idle_min double precision, energy_wh double precision,
    energy_source text, peak_power_w double precision, mean_power_w double precision,
    missing_stop boolean, meter_reset boolean, energy_mismatch boolean,
    PRIMARY KEY (day, session_id)
);
CREATE INDEX ON analytics.sessions (site_id, day);

CREATE TABLE analytics.connector_states (
    day date NOT NULL, charge_point_id text NOT NULL, evse_id integer NOT NULL,
    connector_id integer NOT NULL, start_ts timestamptz NOT NULL, end_ts timestamptz NOT NULL,
    state text NOT NULL, error_code text,
    PRIMARY KEY (day, charge_point_id, evse_id, connector_id, start_ts)
);

CREATE TABLE analytics.utilisation_hourly (
    day date NOT NULL, hour_ts timestamptz NOT NULL, charge_point_id text NOT NULL,
    evse_id integer NOT NULL, connector_id integer NOT NULL, site_id text,
    minutes_available double precision, minutes_charging double precision,
    minutes_suspended double precision, minutes_occupied_other double precision,
    minutes_faulted double precision, minutes_unavailable double precision,
    minutes_offline double precision, minutes_unknown double precision,
    occupancy_ratio double precision, charging_ratio double precision,
    PRIMARY KEY (day, charge_point_id, evse_id, connector_id, hour_ts)
);

CREATE TABLE analytics.utilisation_site_day (
    day date NOT NULL, site_id text NOT NULL, connectors bigint,
    connector_hours double precision, available_hours double precision,
    charging_hours double precision, suspended_hours double precision,
    occupied_other_hours double precision, faulted_hours double precision,
    unavailable_hours double precision, offline_hours double precision,
    unknown_hours double precision, occupied_hours double precision,
    occupancy_ratio double precision, charging_ratio double precision,
    PRIMARY KEY (day, site_id)
);

CREATE TABLE analytics.uptime_daily (
    day date NOT NULL, charge_point_id text NOT NULL, evse_id integer NOT NULL,
    connector_id integer NOT NULL, site_id text, minutes_in_period double precision,
    outage_minutes double precision, excluded_minutes double precision,
    uptime_pct double precision,
    PRIMARY KEY (day, charge_point_id, evse_id, connector_id)
);

CREATE TABLE analytics.outages (
    day date NOT NULL, charge_point_id text NOT NULL, evse_id integer NOT NULL,
    connector_id integer NOT NULL, site_id text, start_ts timestamptz NOT NULL,
    end_ts timestamptz NOT NULL, duration_min double precision, cause text, excluded boolean,
    exclusion_reason text
);
CREATE INDEX ON analytics.outages (day);

CREATE TABLE analytics.uk_reliability_daily (
    day date NOT NULL, charge_point_id text NOT NULL, site_id text,
    minutes_in_period double precision, inoperative_minutes double precision,
    excluded_minutes double precision, reliability_pct double precision,
    PRIMARY KEY (day, charge_point_id)
);

CREATE TABLE analytics.energy_connector_day (
    day date NOT NULL, charge_point_id text NOT NULL, evse_id integer NOT NULL,
    connector_id integer NOT NULL, site_id text, energy_kwh double precision, sessions bigint,
    PRIMARY KEY (day, charge_point_id, evse_id, connector_id)
);

CREATE TABLE analytics.energy_site_day (
    day date NOT NULL, site_id text NOT NULL, energy_kwh double precision, sessions bigint,
    peak_demand_kw double precision, peak_demand_at timestamptz,
    PRIMARY KEY (day, site_id)
);

CREATE TABLE analytics.load_curve (
    day date NOT NULL, site_id text NOT NULL, interval_start timestamptz NOT NULL,
    energy_kwh double precision, mean_kw double precision,
    PRIMARY KEY (day, site_id, interval_start)
);

CREATE TABLE analytics.peak_usage (
    day date NOT NULL, site_id text NOT NULL, local_weekday smallint NOT NULL,
    local_hour smallint NOT NULL, connector_hours double precision,
    occupied_hours double precision, charging_hours double precision,
    energy_kwh double precision, sessions_started bigint,
    PRIMARY KEY (day, site_id, local_weekday, local_hour)
);

-- Rollups: recomputed from sums, never averages of percentages.
CREATE VIEW analytics.uptime_quarterly AS
SELECT date_trunc('quarter', day)::date AS quarter, charge_point_id, evse_id, connector_id,
       site_id, sum(minutes_in_period) AS minutes_in_period,
       sum(outage_minutes) AS outage_minutes, sum(excluded_minutes) AS excluded_minutes,
       100.0 * (sum(minutes_in_period) - (sum(outage_minutes) - sum(excluded_minutes)))
             / nullif(sum(minutes_in_period), 0) AS uptime_pct
FROM analytics.uptime_daily GROUP BY 1, 2, 3, 4, 5;

CREATE VIEW analytics.uptime_yearly AS
SELECT date_trunc('year', day)::date AS year, charge_point_id, evse_id, connector_id, site_id,
       sum(minutes_in_period) AS minutes_in_period, sum(outage_minutes) AS outage_minutes,
       sum(excluded_minutes) AS excluded_minutes,
       100.0 * (sum(minutes_in_period) - (sum(outage_minutes) - sum(excluded_minutes)))
             / nullif(sum(minutes_in_period), 0) AS uptime_pct
FROM analytics.uptime_daily GROUP BY 1, 2, 3, 4, 5;

CREATE VIEW analytics.uk_reliability_yearly AS
SELECT date_trunc('year', day)::date AS year, charge_point_id, site_id,
       100.0 * (sum(minutes_in_period) - (sum(inoperative_minutes) - sum(excluded_minutes)))
             / nullif(sum(minutes_in_period), 0) AS reliability_pct
FROM analytics.uk_reliability_daily GROUP BY 1, 2, 3;

-- Hour-of-day by weekday profile per site over every day materialised.
CREATE VIEW analytics.peak_usage_profile AS
SELECT site_id, local_weekday, local_hour, count(DISTINCT day) AS days,
       sum(occupied_hours) / nullif(sum(connector_hours), 0) AS occupancy_ratio,
       sum(charging_hours) / nullif(sum(connector_hours), 0) AS charging_ratio,
       sum(energy_kwh) / nullif(count(DISTINCT day), 0) AS energy_kwh_per_day,
       sum(sessions_started) AS sessions_started
FROM analytics.peak_usage GROUP BY 1, 2, 3;

-- The late-data sensor finds rows received after their day; BRIN stays cheap on the ingest path
-- because received_at grows with insertion order.
CREATE INDEX meter_value_received_brin ON meter_value USING brin (received_at);
CREATE INDEX status_event_received_brin ON status_event USING brin (received_at);
CREATE INDEX transaction_event_received_brin ON transaction_event USING brin (received_at);
