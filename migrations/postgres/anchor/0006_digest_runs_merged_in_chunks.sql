-- SQLite only: PostgreSQL keeps a B-tree index on the digest, and has no digest runs.
-- Kept so that both backends count the same migrations.
SELECT 1;
