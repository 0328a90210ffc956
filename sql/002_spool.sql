-- Spool segments replayed by a collector, so a segment is applied exactly once even when the
-- collector dies between the commit and the removal of the file.
CREATE TABLE spool_replay (
    segment_id  text PRIMARY KEY,
    operations  integer NOT NULL,
    replayed_at timestamptz NOT NULL DEFAULT now()
);
