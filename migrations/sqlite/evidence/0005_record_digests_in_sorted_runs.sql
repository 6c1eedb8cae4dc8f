-- Records are found by their file's digest through sorted runs (the kernel's `digest_runs`)
-- instead of an index whose random pages each registration wrote to the WAL, a cost that grew
-- with the table. Keyed by rowid: records are never deleted, so it only grows.
DROP INDEX evidence_records_by_digest;
CREATE TABLE evidence_record_digest_runs (
    run     INTEGER NOT NULL,
    digest  TEXT    NOT NULL,
    row_key INTEGER NOT NULL,
    PRIMARY KEY (run, digest, row_key)
) WITHOUT ROWID;
CREATE TABLE evidence_record_digest_run_catalog (
    run          INTEGER PRIMARY KEY,
    last_row_key INTEGER NOT NULL,
    entries      INTEGER NOT NULL
);
-- The records already there are one run.
INSERT INTO evidence_record_digest_runs (run, digest, row_key)
    SELECT 1, digest, rowid FROM evidence_records ORDER BY digest, rowid;
INSERT INTO evidence_record_digest_run_catalog (run, last_row_key, entries)
    SELECT 1, MAX(rowid), COUNT(*) FROM evidence_records HAVING COUNT(*) > 0;
