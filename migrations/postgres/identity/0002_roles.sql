-- Roles per organisation and per key. An organisation is the platform's `admin`, a `member`
-- (a party that records facts), an `auditor` (a regulator) or a `court`; each of its keys holds
-- one role its organisation may hold: admin; writer or reader; auditor; court. Keys get an id
-- that can be shown and named, to revoke them.
ALTER TABLE organisations DROP CONSTRAINT organisations_role_check;
ALTER TABLE organisations ADD CONSTRAINT organisations_role_check
    CHECK (role IN ('admin', 'member', 'auditor', 'court'));

ALTER TABLE api_keys ADD COLUMN key_id TEXT;
ALTER TABLE api_keys ADD COLUMN role TEXT;
-- An existing key keeps what it could do: an admin's stays admin, a member's writes.
UPDATE api_keys k SET key_id = substr(k.key_hash, 1, 32),
    role = CASE (SELECT o.role FROM organisations o WHERE o.organisation_id = k.organisation_id)
           WHEN 'admin' THEN 'admin' ELSE 'writer' END;
ALTER TABLE api_keys ALTER COLUMN key_id SET NOT NULL;
ALTER TABLE api_keys ALTER COLUMN role SET NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_key_id_key UNIQUE (key_id);
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check
    CHECK (role IN ('admin', 'writer', 'reader', 'auditor', 'court'));
CREATE INDEX api_keys_organisation ON api_keys (organisation_id);
