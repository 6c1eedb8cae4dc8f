-- A leaf's digest is found through sorted runs (the kernel's `digest_runs`) instead of a
-- unique index: each leaf inserted wrote about one page of that index to the WAL, a cost that
-- grew with the table. The same event delivered twice is still one leaf, by its event id
-- (whose key grows with time, so its index is appended to). The table is rebuilt, as SQLite
-- cannot drop a constraint, and loses the two columns emptied by migration 4.
DROP VIEW leaves;
CREATE TABLE received_leaves_rebuilt (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    digest      TEXT    NOT NULL,
    event_id    TEXT    NOT NULL UNIQUE,
    -- Canonical envelope, so receipts can be served without the recording service.
    envelope    TEXT    NOT NULL,
    received_at TEXT    NOT NULL,
    readers     TEXT    NOT NULL DEFAULT '[]'
);
INSERT INTO received_leaves_rebuilt (seq, digest, event_id, envelope, received_at, readers)
    SELECT seq, digest, event_id, envelope, received_at, readers FROM received_leaves ORDER BY seq;
-- A seq once given is never given again, even that of a leaf no longer there.
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'received_leaves'))
    WHERE name = 'received_leaves_rebuilt';
DROP TABLE received_leaves;
ALTER TABLE received_leaves_rebuilt RENAME TO received_leaves;
CREATE VIEW leaves AS
    SELECT r.seq, r.digest, r.event_id, r.envelope, r.received_at, r.readers, s.batch_id, s.leaf_index
    FROM received_leaves r LEFT JOIN sealed_leaves s ON s.seq = r.seq;

CREATE TABLE leaf_digest_runs (
    run     INTEGER NOT NULL,
    digest  TEXT    NOT NULL,
    row_key INTEGER NOT NULL,
    PRIMARY KEY (run, digest, row_key)
) WITHOUT ROWID;
CREATE TABLE leaf_digest_run_catalog (
    run          INTEGER PRIMARY KEY,
    last_row_key INTEGER NOT NULL,
    entries      INTEGER NOT NULL
);
-- The leaves already there are one run.
INSERT INTO leaf_digest_runs (run, digest, row_key)
    SELECT 1, digest, seq FROM received_leaves ORDER BY digest, seq;
INSERT INTO leaf_digest_run_catalog (run, last_row_key, entries)
    SELECT 1, MAX(seq), COUNT(*) FROM received_leaves HAVING COUNT(*) > 0;
