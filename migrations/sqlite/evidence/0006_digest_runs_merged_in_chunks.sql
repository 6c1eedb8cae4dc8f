-- Digest runs are merged in chunks, each in a transaction of its own (the kernel's
-- `digest_runs`): the catalog says where a merge stands. `state` is `live`, `writing` (a
-- merge's new run, written for the digests below `written_below`) or `retired` (replaced, to
-- be dropped); a run being merged names its new run in `merging_into`.
ALTER TABLE evidence_record_digest_run_catalog ADD COLUMN state TEXT NOT NULL DEFAULT 'live';
ALTER TABLE evidence_record_digest_run_catalog ADD COLUMN merging_into INTEGER;
ALTER TABLE evidence_record_digest_run_catalog ADD COLUMN written_below TEXT;
