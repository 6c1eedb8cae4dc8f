-- Batches of event digests, sealed into Merkle trees and anchored on the chain.
CREATE TABLE batches (
    batch_id     TEXT   PRIMARY KEY,
    root         TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    -- Hash of the anchor transaction, known at sealing: resubmitting is idempotent.
    tx_hash      TEXT   NOT NULL UNIQUE,
    sealed_at    TEXT   NOT NULL,
    submitted_at TEXT,
    block_height BIGINT,
    tx_index     BIGINT,
    anchored_at  TEXT
);
CREATE INDEX batches_unanchored ON batches (sealed_at) WHERE block_height IS NULL;

-- One row per distinct event digest: the same event delivered twice is one leaf.
CREATE TABLE leaves (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest      TEXT   NOT NULL UNIQUE,
    event_id    TEXT   NOT NULL UNIQUE,
    -- Canonical envelope, so receipts can be served without the recording service.
    envelope    TEXT   NOT NULL,
    received_at TEXT   NOT NULL,
    batch_id    TEXT   REFERENCES batches (batch_id),
    leaf_index  BIGINT
);
CREATE INDEX leaves_unsealed ON leaves (seq) WHERE batch_id IS NULL;
CREATE INDEX leaves_by_batch ON leaves (batch_id, leaf_index);

-- Events that arrived malformed or with a digest that does not match their envelope.
CREATE TABLE rejected_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    routing_key TEXT NOT NULL,
    reason      TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
