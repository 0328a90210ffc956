-- Emissions of the energy delivered and the tailpipe emissions it displaces (reports/emissions.py),
-- written by the `emissions` asset one UTC day at a time. Grams of CO2 (CO2e where the grid factor's
-- publisher gives CO2e); factor_basis says whether hourly or annual grid intensities were used.
CREATE TABLE analytics.emissions_session_day (
    day date NOT NULL, session_id text NOT NULL, site_id text, grid_region text, baseline text,
    energy_kwh double precision, factor_basis text, grid_g_per_kwh double precision,
    grid_g double precision, tailpipe_g double precision, net_saving_g double precision,
    PRIMARY KEY (day, session_id)
);

CREATE TABLE analytics.emissions_site_day (
    day date NOT NULL, site_id text NOT NULL, grid_region text, baseline text,
    energy_kwh double precision, sessions bigint, factor_basis text,
    grid_g_per_kwh double precision, grid_g double precision, tailpipe_g double precision,
    net_saving_g double precision,
    PRIMARY KEY (day, site_id)
);
