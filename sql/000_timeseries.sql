-- Storage decision and the helpers that make time-series tables.
-- TimescaleDB is used when CREATE EXTENSION succeeds (it needs shared_preload_libraries);
-- otherwise time-series tables are natively range-partitioned by month on ts.
-- Everything here is valid on plain PostgreSQL: TimescaleDB calls only run through EXECUTE.

CREATE TABLE IF NOT EXISTS chargeops_meta (
    key   text PRIMARY KEY,
    value text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE
    wanted text := coalesce(current_setting('chargeops.timescaledb', true), 'auto');
    mode   text := 'native';
BEGIN
    IF wanted <> 'off' THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            mode := 'timescaledb';
        EXCEPTION WHEN OTHERS THEN
            IF wanted = 'on' THEN
                RAISE EXCEPTION 'chargeops.timescaledb=on but CREATE EXTENSION timescaledb failed: %', SQLERRM;
            END IF;
            RAISE NOTICE 'TimescaleDB not available (%); using native partitioning', SQLERRM;
        END;
    END IF;
    INSERT INTO chargeops_meta (key, value) VALUES ('storage', mode)
    ON CONFLICT (key) DO NOTHING;
END
$$;

CREATE OR REPLACE FUNCTION chargeops_storage() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT value FROM chargeops_meta WHERE key = 'storage' $$;

-- The statements that create one time-series table in a given storage mode. Pure: it runs no DDL,
-- so the TimescaleDB branch can be checked on a server without the extension.
CREATE OR REPLACE FUNCTION chargeops_timeseries_ddl(
    tbl text, columns text, chunk interval, segment_by text, compress_after interval, mode text
) RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF mode = 'timescaledb' THEN
        RETURN NEXT format('CREATE TABLE IF NOT EXISTS %I (%s)', tbl, columns);
        RETURN NEXT format(
            'SELECT create_hypertable(%L, by_range(%L, %L::interval), if_not_exists => true)',
            tbl, 'ts', chunk);
        RETURN NEXT format(
            'ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
            'timescaledb.compress_orderby = %L)', tbl, segment_by, 'ts');
        RETURN NEXT format(
            'SELECT add_compression_policy(%L, %L::interval, if_not_exists => true)',
            tbl, compress_after);
    ELSIF mode = 'native' THEN
        RETURN NEXT format('CREATE TABLE IF NOT EXISTS %I (%s) PARTITION BY RANGE (ts)', tbl, columns);
        -- Rows outside 2000..2100 (a charger with a broken clock) land here rather than fail.
        RETURN NEXT format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
    ELSE
        RAISE EXCEPTION 'unknown storage mode %', mode;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION chargeops_create_timeseries(
    tbl text, columns text, chunk interval, segment_by text, compress_after interval
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    stmt text;
BEGIN
    FOR stmt IN SELECT chargeops_timeseries_ddl(tbl, columns, chunk, segment_by, compress_after,
                                                chargeops_storage()) LOOP
        EXECUTE stmt;
    END LOOP;
    INSERT INTO chargeops_meta (key, value) VALUES ('timeseries:' || tbl, chargeops_storage())
    ON CONFLICT (key) DO NOTHING;
END
$$;

-- Native mode: monthly partitions for every month touched by [from_ts, to_ts]. A no-op under
-- TimescaleDB, which makes its chunks itself. Safe to call concurrently and repeatedly.
CREATE OR REPLACE FUNCTION chargeops_ensure_partitions(tbl text, from_ts timestamptz, to_ts timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m       timestamptz;
    part    text;
    created integer := 0;
BEGIN
    IF chargeops_storage() <> 'native' THEN
        RETURN 0;
    END IF;
    from_ts := greatest(from_ts, '2000-01-01 00:00+00');
    to_ts := least(to_ts, '2099-12-01 00:00+00');
    m := date_trunc('month', from_ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    WHILE m <= to_ts LOOP
        part := format('%s_p%s', tbl, to_char(m AT TIME ZONE 'UTC', 'YYYYMM'));
        IF to_regclass(part) IS NULL THEN
            BEGIN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    part, tbl, m, (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC');
                created := created + 1;
            EXCEPTION
                WHEN duplicate_table THEN
                    NULL;  -- another session made it first
                WHEN check_violation THEN
                    -- rows for this month already sit in the default partition; they stay there
                    RAISE WARNING 'partition % not created: default partition holds its rows', part;
            END;
        END IF;
        m := (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
    END LOOP;
    RETURN created;
END
$$;
