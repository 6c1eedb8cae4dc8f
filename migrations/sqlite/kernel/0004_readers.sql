-- Who may read each event: organisation ids, and `role:court` where every court may. Decided
-- by the domain, kept beside the event and never hashed into it. An event recorded before
-- access lists existed is readable by the organisation that recorded it.
ALTER TABLE events ADD COLUMN readers TEXT NOT NULL DEFAULT '[]';
UPDATE events SET readers = json_array(json_extract(envelope, '$.organisation'));
