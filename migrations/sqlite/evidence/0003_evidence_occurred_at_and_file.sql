-- When each registered fact happened (the registering event's `occurred_at`: as the registrant
-- stated it, else when it was recorded), and the file's name and size in bytes where the
-- registrant gave them (EvidenceRegistered version 2). Records from before: their
-- registration time, which is what their events' `occurred_at` holds, and no name or size.
ALTER TABLE evidence_records ADD COLUMN occurred_at TEXT NOT NULL DEFAULT '';
UPDATE evidence_records SET occurred_at = registered_at;
ALTER TABLE evidence_records ADD COLUMN file_name TEXT;
ALTER TABLE evidence_records ADD COLUMN size_bytes BIGINT;
