-- What each finished session owes under the tariff in force at its start, in minor units.
CREATE TABLE analytics.expected_revenue (
    day date NOT NULL, session_id text NOT NULL, charge_point_id text NOT NULL, site_id text,
    tariff_id text NOT NULL, currency text NOT NULL, minor_unit_exponent smallint NOT NULL,
    energy_kwh double precision, session_min double precision,
    billable_idle_min double precision, energy_amount bigint, time_amount bigint,
    idle_amount bigint, session_fee_amount bigint, tax_amount bigint, net_amount bigint,
    gross_amount bigint,
    PRIMARY KEY (day, session_id)
);
CREATE INDEX ON analytics.expected_revenue (site_id, day);
