-- The outbox's rows are written in the statement that appends their events and only ever
-- deleted after, so a key check adds nothing; on PostgreSQL it is a trigger that runs a query
-- and locks the event's row, for every event appended.
ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_position_fkey;
