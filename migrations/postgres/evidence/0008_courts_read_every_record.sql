-- Every court reads every evidence record (`EvidenceRecords::EVERY_RECORD_READERS`): the
-- access lists no longer name them record by record.
DELETE FROM record_readers WHERE projection = 'evidence_records' AND reader = 'role:court';
