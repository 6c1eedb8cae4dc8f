-- Read model of evidence records, rebuilt from the event store by the projector.
CREATE TABLE evidence_records (
    evidence_id         TEXT    PRIMARY KEY,
    organisation        TEXT    NOT NULL,
    algorithm           TEXT    NOT NULL,
    digest              TEXT    NOT NULL,
    title               TEXT    NOT NULL,
    case_reference      TEXT,
    metadata            TEXT,
    status              TEXT    NOT NULL,
    registered_at       TEXT    NOT NULL,
    registered_event_id TEXT    NOT NULL,
    withdrawn_at        TEXT,
    withdrawal_reason   TEXT,
    version             BIGINT  NOT NULL
);
CREATE INDEX evidence_records_by_digest ON evidence_records (digest);
CREATE INDEX evidence_records_by_organisation ON evidence_records (organisation, registered_at);

-- How far each projection has read the event store.
CREATE TABLE projection_checkpoints (
    projection TEXT   PRIMARY KEY,
    position   BIGINT NOT NULL
);
