-- Predictive maintenance (models/, pipelines/maintenance.py): features per connector and day,
-- and the daily risk scores with what drives them. Columns follow models.features.FEATURES and
-- models.score.SCORES (tests/test_maintenance.py checks they agree).
CREATE TABLE analytics.maintenance_features (
    day date NOT NULL, charge_point_id text NOT NULL, evse_id integer NOT NULL,
    connector_id integer NOT NULL,
    faults_1d float8, faults_7d float8, faults_30d float8, faults_1d_connector_lock_failure float8,
    faults_7d_connector_lock_failure float8, faults_30d_connector_lock_failure float8,
    faults_1d_ev_communication_error float8, faults_7d_ev_communication_error float8,
    faults_30d_ev_communication_error float8, faults_1d_ground_failure float8,
    faults_7d_ground_failure float8, faults_30d_ground_failure float8,
    faults_1d_high_temperature float8, faults_7d_high_temperature float8,
    faults_30d_high_temperature float8, faults_1d_internal_error float8,
    faults_7d_internal_error float8, faults_30d_internal_error float8,
    faults_1d_local_list_conflict float8, faults_7d_local_list_conflict float8,
    faults_30d_local_list_conflict float8, faults_1d_over_current_failure float8,
    faults_7d_over_current_failure float8, faults_30d_over_current_failure float8,
    faults_1d_over_voltage float8, faults_7d_over_voltage float8, faults_30d_over_voltage float8,
    faults_1d_power_meter_failure float8, faults_7d_power_meter_failure float8,
    faults_30d_power_meter_failure float8, faults_1d_power_switch_failure float8,
    faults_7d_power_switch_failure float8, faults_30d_power_switch_failure float8,
    faults_1d_reader_failure float8, faults_7d_reader_failure float8,
    faults_30d_reader_failure float8, faults_1d_reset_failure float8,
    faults_7d_reset_failure float8, faults_30d_reset_failure float8,
    faults_1d_under_voltage float8, faults_7d_under_voltage float8,
    faults_30d_under_voltage float8, faults_1d_weak_signal float8, faults_7d_weak_signal float8,
    faults_30d_weak_signal float8, faults_1d_other float8, faults_7d_other float8,
    faults_30d_other float8, sessions_3d float8, sessions_7d float8, sessions_30d float8,
    energy_kwh_7d float8, energy_kwh_30d float8, failed_starts_1d float8, failed_starts_3d float8,
    failed_starts_7d float8, failed_starts_30d float8, failed_start_rate_3d float8,
    failed_start_rate_7d float8, failed_start_rate_30d float8, peak_ratio_3d float8,
    peak_ratio_7d float8, peak_ratio_30d float8, derate_trend float8, reconnects_7d float8,
    boots_7d float8, offline_min_1d float8, offline_min_7d float8, heartbeat_gap_max_min_1d float8,
    heartbeat_gap_max_min_7d float8, days_since_fault float8, days_since_firmware_change float8,
    connector_age_days float8,
    model text, firmware_version text,
    PRIMARY KEY (day, charge_point_id, evse_id, connector_id)
);

CREATE TABLE analytics.maintenance_scores (
    day date NOT NULL, charge_point_id text NOT NULL, evse_id integer NOT NULL,
    connector_id integer NOT NULL, model text,
    risk double precision NOT NULL,      -- probability of an outage starting within the horizon
    score_source text NOT NULL,          -- 'model' | 'prior' (no history: charger-model prior)
    rank integer NOT NULL,               -- 1 = riskiest of the day
    at_risk boolean NOT NULL,
    top_features jsonb,                  -- [{"feature", "value", "contribution"}, ...]
    model_version text,
    PRIMARY KEY (day, charge_point_id, evse_id, connector_id)
);
CREATE INDEX ON analytics.maintenance_scores (day, rank);

-- The dashboard's at-risk list: the latest scored day, riskiest first.
CREATE VIEW analytics.maintenance_at_risk AS
SELECT s.day, s.rank, s.charge_point_id, s.evse_id, s.connector_id, cp.site_id, s.model, s.risk,
       s.score_source, s.top_features, s.model_version
FROM analytics.maintenance_scores s
LEFT JOIN charge_point cp USING (charge_point_id)
WHERE s.at_risk AND s.day = (SELECT max(day) FROM analytics.maintenance_scores);
