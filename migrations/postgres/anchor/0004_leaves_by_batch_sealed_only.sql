-- Only sealed leaves are found by batch: an unsealed leaf no longer takes an entry (under a
-- NULL batch) when received, only to move it when sealed. Every query by batch names one.
DROP INDEX leaves_by_batch;
CREATE INDEX leaves_by_batch ON leaves (batch_id, leaf_index) WHERE batch_id IS NOT NULL;
