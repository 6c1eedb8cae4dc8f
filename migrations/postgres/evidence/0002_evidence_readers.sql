-- Who may read each evidence record besides the admin and auditors: its registrant, the
-- organisations it is shared with, and `role:court` (every court). The same access list each
-- of its events carries. Records from before access lists: their registrant and the courts.
CREATE TABLE evidence_readers (
    evidence_id TEXT NOT NULL REFERENCES evidence_records (evidence_id),
    reader      TEXT NOT NULL,
    PRIMARY KEY (evidence_id, reader)
);
CREATE INDEX evidence_readers_by_reader ON evidence_readers (reader, evidence_id);
INSERT INTO evidence_readers (evidence_id, reader)
    SELECT evidence_id, organisation FROM evidence_records
    UNION SELECT evidence_id, 'role:court' FROM evidence_records;
