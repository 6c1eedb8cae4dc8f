-- PostgreSQL drops the key check of `sealed_leaves` on `batches` here (a trigger and a query
-- per leaf sealed). SQLite checks it in the engine, one lookup per leaf, and could drop it
-- only by rewriting every sealed leaf's row: it stays.
SELECT 1;
