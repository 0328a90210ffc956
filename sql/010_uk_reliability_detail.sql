-- What the UK reliability report needs per rapid charge point and day, computed in the `uptime`
-- asset rather than in the report: the minutes the site was closed (accessible minutes =
-- minutes_in_period - closed_minutes) and the counted inoperative minutes with a connector
-- offline (the report's figure if offline were read as OCPI UNKNOWN). Rows written before this
-- migration hold NULL in both until their day of `uptime` is materialised again.
ALTER TABLE analytics.uk_reliability_daily
    ADD COLUMN closed_minutes double precision,
    ADD COLUMN offline_minutes double precision;

-- Only accessible hours count (reg. 6): the yearly view divides by them, as the daily rows,
-- `uk_reliability_rollup` and the report do.
CREATE OR REPLACE VIEW analytics.uk_reliability_yearly AS
SELECT date_trunc('year', day)::date AS year, charge_point_id, site_id,
       100.0 * (sum(minutes_in_period - coalesce(closed_minutes, 0))
                - (sum(inoperative_minutes) - sum(excluded_minutes)))
             / nullif(sum(minutes_in_period - coalesce(closed_minutes, 0)), 0) AS reliability_pct
FROM analytics.uk_reliability_daily GROUP BY 1, 2, 3;
