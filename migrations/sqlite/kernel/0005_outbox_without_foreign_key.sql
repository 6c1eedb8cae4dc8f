-- The outbox's rows are written in the transaction that appends their events and only ever
-- deleted after, so a key check adds nothing but a lookup in `events` per event appended.
-- SQLite drops a constraint by rewriting its table: the outbox holds only what is not yet
-- published.
CREATE TABLE outbox_unchecked (position INTEGER PRIMARY KEY);
INSERT INTO outbox_unchecked (position) SELECT position FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_unchecked RENAME TO outbox;
