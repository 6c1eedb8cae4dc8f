-- Who may read each leaf's receipt, as the recording service said (its event's access list);
-- the anchor never reads it from the event itself. Leaves received before access lists
-- existed are readable by the organisation that recorded their event.
ALTER TABLE leaves ADD COLUMN readers TEXT NOT NULL DEFAULT '[]';
UPDATE leaves SET readers = json_array(json_extract(envelope, '$.organisation'));
