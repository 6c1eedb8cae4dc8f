-- Who may read each record of a read model besides the admin and auditors: every reader of
-- any of the record's events (the access lists the event store keeps beside them), by
-- projection, so that one table serves every domain's tables. The kernel's read_model module
-- writes it as a projection applies events, and filters queries by it.
-- IF NOT EXISTS: a domain whose records had readers before the kernel kept them creates this
-- table in its own migration, to move its rows here (evidence/0004_record_readers.sql).
CREATE TABLE IF NOT EXISTS record_readers (
    projection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    reader     TEXT NOT NULL,
    PRIMARY KEY (projection, record_id, reader)
);
CREATE INDEX IF NOT EXISTS record_readers_by_reader ON record_readers (projection, reader, record_id);
