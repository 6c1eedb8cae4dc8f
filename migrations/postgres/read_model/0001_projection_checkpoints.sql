-- How far each projection has read the event store (the kernel's read_model module moves it
-- in the transaction that applies the events). IF NOT EXISTS: before the kernel owned this
-- table, a domain's own first migration created it (evidence/0001_evidence_records.sql), and
-- those databases keep theirs.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection TEXT   PRIMARY KEY,
    position   BIGINT NOT NULL
);
