-- Idempotency keys: the first successful answer to a POST sent with `Idempotency-Key`, kept
-- so that a retry with the same key and body gets that answer and records nothing new.
-- A row without `status` is a request still being processed (or one a crash interrupted).
CREATE TABLE idempotency_keys (
    organisation_id TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    -- SHA3-256 of the request's method, path and query, and body.
    fingerprint     TEXT   NOT NULL,
    created_at_ms   BIGINT NOT NULL,
    status          INTEGER,
    content_type    TEXT,
    location        TEXT,
    body            BYTEA,
    PRIMARY KEY (organisation_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at_ms);
