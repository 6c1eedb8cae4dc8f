-- Access lists move to the kernel's table `record_readers` (created here as the kernel's
-- read_model/0002_record_readers.sql does, which runs after this): one table for every
-- domain's records.
CREATE TABLE IF NOT EXISTS record_readers (
    projection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    reader     TEXT NOT NULL,
    PRIMARY KEY (projection, record_id, reader)
);
CREATE INDEX IF NOT EXISTS record_readers_by_reader ON record_readers (projection, reader, record_id);
INSERT INTO record_readers (projection, record_id, reader)
    SELECT 'evidence_records', evidence_id, reader FROM evidence_readers;
DROP TABLE evidence_readers;
