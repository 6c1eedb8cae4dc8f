-- Named queries and their webhook subscriptions (`/queries`), beside the provenance event
-- store: delivery state, not business facts, and they hold each subscriber's signature
-- token, which no event may carry (events are anchored and read by auditors).
CREATE TABLE epcis_named_queries (
    organisation TEXT NOT NULL,
    name         TEXT NOT NULL,
    query_json   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (organisation, name)
);
CREATE TABLE epcis_subscriptions (
    subscription_id     TEXT PRIMARY KEY,
    organisation        TEXT NOT NULL,
    query_name          TEXT NOT NULL,
    -- Who the deliveries are for: the subscriber's access-list entries (JSON array), or
    -- null for the admin and auditors, who read every event.
    readers_json        TEXT,
    dest                TEXT NOT NULL,
    signature_token     TEXT,
    stream              BIGINT NOT NULL,
    schedule_json       TEXT,
    report_if_empty     BIGINT NOT NULL,
    initial_record_time TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    -- Every matching event at or before this read-model position has been delivered and
    -- acknowledged.
    delivered_through   BIGINT NOT NULL,
    last_notified_at    TEXT,
    attempts            BIGINT NOT NULL,
    next_attempt_ms     BIGINT NOT NULL,
    last_error          TEXT,
    -- A scheduled subscription whose time has come.
    due                 BIGINT NOT NULL
);
CREATE INDEX epcis_subscriptions_by_query ON epcis_subscriptions (organisation, query_name);
