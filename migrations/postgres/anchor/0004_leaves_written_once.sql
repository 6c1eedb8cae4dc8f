-- A leaf is written once, when received. Sealing no longer rewrites it (a new version of its
-- row, its envelope, and an entry in every index over it): a sealed leaf's batch and index are
-- a narrow row of `sealed_leaves`, and the leaves waiting for a batch a queue of their own.
-- `leaves` is now the view that joins them, with the columns it had. No foreign key to
-- `received_leaves`: the seal checks that each leaf it takes was waiting, and a key check
-- would lock (write) the leaf's row for every row inserted.
ALTER TABLE leaves RENAME TO received_leaves;
CREATE TABLE unsealed_leaves (seq BIGINT PRIMARY KEY);
CREATE TABLE sealed_leaves (
    seq        BIGINT PRIMARY KEY,
    batch_id   TEXT   NOT NULL REFERENCES batches (batch_id),
    leaf_index BIGINT NOT NULL,
    UNIQUE (batch_id, leaf_index)
);
INSERT INTO sealed_leaves (seq, batch_id, leaf_index)
    SELECT seq, batch_id, leaf_index FROM received_leaves WHERE batch_id IS NOT NULL;
INSERT INTO unsealed_leaves (seq) SELECT seq FROM received_leaves WHERE batch_id IS NULL;
DROP INDEX leaves_unsealed;
DROP INDEX leaves_by_batch;
ALTER TABLE received_leaves DROP COLUMN batch_id, DROP COLUMN leaf_index;
CREATE VIEW leaves AS
    SELECT r.seq, r.digest, r.event_id, r.envelope, r.received_at, r.readers, s.batch_id, s.leaf_index
    FROM received_leaves r LEFT JOIN sealed_leaves s ON s.seq = r.seq;
