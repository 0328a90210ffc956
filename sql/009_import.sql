-- Imports of charging history exported by other systems (`chargeops import`): one row per
-- imported file, and the batch and source of every imported transaction and charge point.
-- A file is identified by its sha256, its format and the --site it was imported under, so a
-- re-import finds its batch again and adds nothing.

CREATE TABLE import_batch (
    import_batch_id bigserial PRIMARY KEY,
    format          text NOT NULL CHECK (format IN ('chargepoint', 'acn', 'ocpi')),
    file_name       text NOT NULL,
    file_sha256     text NOT NULL,
    site_override   text NOT NULL DEFAULT '',   -- the --site given, '' for sites from the file
    rows_read       integer NOT NULL,
    rows_imported   integer NOT NULL,           -- sessions this file added (all runs)
    rows_skipped    integer NOT NULL,           -- malformed or duplicate rows at the first run
    energy_wh       double precision NOT NULL,  -- energy of the sessions this file added
    first_start_ts  timestamptz,
    last_stop_ts    timestamptz,
    imported_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (file_sha256, format, site_override)
);

ALTER TABLE transaction ADD COLUMN source text;  -- NULL: collected over OCPP
ALTER TABLE transaction ADD COLUMN import_batch_id bigint REFERENCES import_batch (import_batch_id);
ALTER TABLE charge_point ADD COLUMN source text;
ALTER TABLE charge_point ADD COLUMN import_batch_id bigint REFERENCES import_batch (import_batch_id);
CREATE INDEX transaction_import_batch_idx ON transaction (import_batch_id)
    WHERE import_batch_id IS NOT NULL;
