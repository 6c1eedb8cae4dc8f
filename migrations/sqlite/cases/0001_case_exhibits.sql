-- Read model of case files: one row per exhibit (an evidence registration that named a case),
-- rebuilt from the cases event store by the projector.
CREATE TABLE case_exhibits (
    evidence_id         TEXT PRIMARY KEY,
    case_reference      TEXT NOT NULL,
    registrant          TEXT NOT NULL,
    algorithm           TEXT NOT NULL,
    digest              TEXT NOT NULL,
    title               TEXT NOT NULL,
    status              TEXT NOT NULL,
    registered_at       TEXT NOT NULL,
    -- The evidence service's EvidenceRegistered, and the CaseExhibitAdded that filed it.
    registered_event_id TEXT NOT NULL,
    added_event_id      TEXT NOT NULL,
    withdrawn_at        TEXT,
    withdrawal_reason   TEXT,
    -- Stream version of `exhibit-<evidence_id>` last applied.
    version             BIGINT NOT NULL
);
CREATE INDEX case_exhibits_by_case ON case_exhibits (case_reference, registered_at);

-- Who may read each exhibit besides the admin and auditors: whoever may read any of its
-- events (the registrant, `role:court`, the organisations the registration is shared with).
CREATE TABLE case_exhibit_readers (
    evidence_id TEXT NOT NULL REFERENCES case_exhibits (evidence_id),
    reader      TEXT NOT NULL,
    PRIMARY KEY (evidence_id, reader)
);
CREATE INDEX case_exhibit_readers_by_reader ON case_exhibit_readers (reader, evidence_id);
