-- A sealed leaf's row is written in the transaction that writes its batch (`seal`), so a key
-- check adds nothing; on PostgreSQL it is a trigger that runs a query for every leaf sealed.
-- The audit recomputes each batch's root from the leaves sealed into it.
ALTER TABLE sealed_leaves DROP CONSTRAINT IF EXISTS sealed_leaves_batch_id_fkey;
