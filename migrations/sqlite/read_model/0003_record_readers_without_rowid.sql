-- record_readers as a table clustered on its key (WITHOUT ROWID): a grant writes two B-trees
-- (the key and the by-reader index) instead of three (rowid table, key index, by-reader
-- index). Every event projected grants its readers, so this is on every event's path.
CREATE TABLE record_readers_keyed (
    projection TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    reader     TEXT NOT NULL,
    PRIMARY KEY (projection, record_id, reader)
) WITHOUT ROWID;
INSERT INTO record_readers_keyed (projection, record_id, reader)
    SELECT projection, record_id, reader FROM record_readers;
DROP TABLE record_readers;
ALTER TABLE record_readers_keyed RENAME TO record_readers;
CREATE INDEX record_readers_by_reader ON record_readers (projection, reader, record_id);
