-- SQLite only (records found by digest through sorted runs there, as its WAL logs each page a
-- random index entry lands on); PostgreSQL's WAL logs the entry, and evidence_records_by_digest
-- stays. Kept so that both backends count the same migrations.
SELECT 1;
