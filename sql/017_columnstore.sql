-- TimescaleDB only (a no-op on native partitioning): the columnstore of the time-series tables.
-- Rows of one connector are segmented together (meter values and statuses are read per
-- connector), ordered by ts within a segment. Chunks are compressed 35 days after their end:
-- the late-data window (the `late_data` sensor re-runs days up to 30 days late; chargers replay
-- their offline queues within it) plus a margin, so late rows normally land uncompressed. Rows
-- older than that (an import of history, a charger offline for months) still go in: TimescaleDB
-- writes into compressed chunks, checking the primary key there too.

CREATE OR REPLACE FUNCTION chargeops_columnstore(tbl text, segment_by text, compress_after interval)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF chargeops_storage() <> 'timescaledb' THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format(
            'ALTER TABLE %I SET (timescaledb.compress, timescaledb.compress_segmentby = %L, '
            'timescaledb.compress_orderby = %L)', tbl, segment_by, 'ts');
    EXCEPTION WHEN OTHERS THEN
        -- chunks already compressed with the earlier settings keep them
        RAISE WARNING 'columnstore settings of % kept: %', tbl, SQLERRM;
    END;
    EXECUTE format('SELECT remove_compression_policy(%L, if_exists => true)', tbl);
    EXECUTE format('SELECT add_compression_policy(%L, %L::interval)', tbl, compress_after);
    INSERT INTO chargeops_meta (key, value)
    VALUES ('columnstore:' || tbl, format('segmentby %s, orderby ts, after %s', segment_by,
                                          compress_after))
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_at = now();
END
$$;

SELECT chargeops_columnstore('meter_value', 'charge_point_id, evse_id, connector_id', '35 days');
SELECT chargeops_columnstore('status_event', 'charge_point_id, evse_id, connector_id', '35 days');
SELECT chargeops_columnstore('transaction_event', 'charge_point_id', '35 days');
SELECT chargeops_columnstore('connection_event', 'charge_point_id', '35 days');
SELECT chargeops_columnstore('ocpp_message', 'charge_point_id', '35 days');
SELECT chargeops_columnstore('charger_message', 'charge_point_id', '35 days');

-- Retention of the audit log (`ocpp_message`, every frame in and out: the largest table), set
-- from CHARGEOPS_AUDIT_RETENTION_DAYS by `chargeops db upgrade` (0: keep everything, the
-- default). TimescaleDB: a retention policy drops chunks older than that. Native: whole monthly
-- partitions older than that are dropped when it runs. The rows derived from the frames
-- (meter values, statuses, transactions) are kept either way.
CREATE OR REPLACE FUNCTION chargeops_audit_retention(days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part    record;
    dropped integer := 0;
BEGIN
    IF chargeops_storage() = 'timescaledb' THEN
        EXECUTE 'SELECT remove_retention_policy(''ocpp_message'', if_exists => true)';
        IF days > 0 THEN
            EXECUTE format('SELECT add_retention_policy(%L, %L::interval)', 'ocpp_message',
                           days || ' days');
        END IF;
    ELSIF days > 0 THEN
        FOR part IN
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'ocpp_message'::regclass AND c.relname ~ '^ocpp_message_p\d{6}$'
              AND (to_date(right(c.relname, 6), 'YYYYMM') + interval '1 month')
                  <= (now() AT TIME ZONE 'UTC') - make_interval(days => days)
        LOOP
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END LOOP;
    END IF;
    INSERT INTO chargeops_meta (key, value)
    VALUES ('retention:ocpp_message', CASE WHEN days > 0 THEN days || ' days' ELSE 'off' END)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_at = now();
    RETURN dropped;
END
$$;

-- Chunk length of the two largest hypertables (`meter_value`, `ocpp_message`), set from
-- CHARGEOPS_CHUNK_HOURS by `chargeops db upgrade` (default 24; a network of 100,000 connectors
-- wants 1, see the README). It applies to chunks made from then on. Native partitions are
-- monthly whatever it says.
CREATE OR REPLACE FUNCTION chargeops_chunk_hours(hours integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    tbl text;
BEGIN
    IF chargeops_storage() <> 'timescaledb' THEN
        RETURN;
    END IF;
    FOREACH tbl IN ARRAY ARRAY['meter_value', 'ocpp_message'] LOOP
        EXECUTE format('SELECT set_chunk_time_interval(%L, %L::interval)', tbl, hours || ' hours');
        INSERT INTO chargeops_meta (key, value) VALUES ('chunk:' || tbl, hours || ' hours')
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_at = now();
    END LOOP;
END
$$;
