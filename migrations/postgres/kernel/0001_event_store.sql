-- The event store: every event of a service, in commit order, and its outbox. Lives in the
-- service's own schema (the connection's search_path).
CREATE TABLE events (
    position       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       UUID   NOT NULL UNIQUE,
    stream         TEXT   NOT NULL,
    stream_version BIGINT NOT NULL,
    event_type     TEXT   NOT NULL,
    -- RFC 8785 canonical JSON of the envelope: exactly the bytes the digest is taken over.
    -- TEXT, never JSONB, which would reorder keys and rewrite numbers.
    envelope       TEXT   NOT NULL,
    digest         TEXT   NOT NULL,
    recorded_at    TEXT   NOT NULL,
    UNIQUE (stream, stream_version)
);

-- One row per event not yet confirmed by the bus; written in the same transaction as the
-- event, deleted once the bus confirmed it.
CREATE TABLE outbox (
    position BIGINT PRIMARY KEY REFERENCES events (position)
);
