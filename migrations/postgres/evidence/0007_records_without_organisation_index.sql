-- No query reads evidence records by organisation: a caller's records are found through
-- `record_readers`, newest first by `registered_at`. The index cost an entry per registration.
DROP INDEX IF EXISTS evidence_records_by_organisation;
