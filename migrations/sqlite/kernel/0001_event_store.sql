-- The event store: every event of a service, in commit order, and its outbox.
CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id       TEXT    NOT NULL UNIQUE,
    stream         TEXT    NOT NULL,
    stream_version INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    -- RFC 8785 canonical JSON of the envelope: exactly the bytes the digest is taken over.
    envelope       TEXT    NOT NULL,
    digest         TEXT    NOT NULL,
    recorded_at    TEXT    NOT NULL,
    UNIQUE (stream, stream_version)
);

-- One row per event not yet confirmed by the bus; written in the same transaction as the
-- event, deleted once the bus confirmed it.
CREATE TABLE outbox (
    position INTEGER PRIMARY KEY REFERENCES events (position)
);
