-- Collector durability (issue 16).

-- A spooled request that PostgreSQL refused on replay (written by a collector from before
-- values were made storable at write time, or a rule the writer does not know). It was
-- acknowledged, so it is kept here with the reason instead of blocking the rest of the spool.
CREATE TABLE spool_dead_letter (
    segment_id   text NOT NULL,
    line_no      integer NOT NULL,
    reason       text NOT NULL,
    request      text NOT NULL,     -- the spool line: JSON, [[kind, params], ...]
    set_aside_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (segment_id, line_no)
);

-- 1.6 transaction ids assigned while the database was unreachable come from blocks of the
-- sequence reserved ahead and kept on the collector's disk; once those are used up, from a
-- range of this collector's own (its node number) with a counter kept on disk.
CREATE SEQUENCE IF NOT EXISTS collector_node_seq MINVALUE 0 START 0 MAXVALUE 1023 CYCLE;

-- 1.6 has no idToken type: the type of a 1.6 idTag is unknown, not "Central".
UPDATE transaction SET id_token_type = NULL WHERE ocpp_version = '1.6' AND id_token_type = 'Central';
