-- Issue 17: rows an import kept with a note (an overlapping session placed on another
-- connector), one per row, with the batch of the file they came from. The quality table for
-- imported history: `chargeops import` prints the same counts.

CREATE TABLE import_flag (
    import_batch_id  bigint NOT NULL REFERENCES import_batch (import_batch_id),
    line             integer NOT NULL,            -- the row's line in the file
    charge_point_id  text NOT NULL,
    transaction_id   text NOT NULL,
    reason           text NOT NULL,               -- short and stable, counted
    detail           text NOT NULL,
    energy_wh        double precision NOT NULL,
    PRIMARY KEY (import_batch_id, line)
);
