-- SQLite only (a leaf's digest found through sorted runs there, as its WAL logs each page a
-- random index entry lands on); PostgreSQL's WAL logs the entry, and its unique index stays.
-- Kept so that both backends count the same migrations.
SELECT 1;
