-- Read model of EPCIS events as the query interface serves them: one row per event captured,
-- rebuilt from the provenance event store by the projector.
CREATE TABLE epcis_events (
    -- The EPCIS eventID (as sent, or the canonical hash where the event came without one).
    event_id       TEXT PRIMARY KEY,
    -- The event store's position of its EpcisEventCaptured: capture order, which pages follow.
    position       BIGINT NOT NULL UNIQUE,
    -- The EpcisEventCaptured event's id: its receipt's name.
    record_id      TEXT NOT NULL,
    capture_id     TEXT NOT NULL,
    organisation   TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    -- Times in UTC to the millisecond, `YYYY-MM-DDTHH:MM:SS.mmmZ`, so text order is time order.
    event_time     TEXT NOT NULL,
    record_time    TEXT NOT NULL,
    action         TEXT,
    -- Standard CBV values as bare words (`shipping`), user values as sent.
    biz_step       TEXT,
    disposition    TEXT,
    read_point     TEXT,
    biz_location   TEXT,
    canonical_hash TEXT NOT NULL,
    -- The event as served (with its eventID and recordTime) and its document's @context.
    event_json     TEXT NOT NULL,
    context_json   TEXT NOT NULL
);
CREATE INDEX epcis_events_by_event_time ON epcis_events (event_time);

-- Every identifier an event names, by role (`epc`, `parent`, `child`, `input`, `output`, and
-- the quantity classes): what the MATCH_ parameters and a product's history look up.
CREATE TABLE epcis_event_identifiers (
    identifier TEXT NOT NULL,
    role       TEXT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (identifier, role, position)
);
