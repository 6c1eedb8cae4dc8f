-- SQLite only (record_readers clustered on its key there); a PostgreSQL table has no rowid to
-- drop, so nothing changes here. Kept so that both backends count the same migrations.
SELECT 1;
