-- Roles per organisation and per key. An organisation is the platform's `admin`, a `member`
-- (a party that records facts), an `auditor` (a regulator) or a `court`; each of its keys holds
-- one role its organisation may hold: admin; writer or reader; auditor; court. Keys get an id
-- that can be shown and named, to revoke them. SQLite cannot change a CHECK constraint, so
-- both tables are rebuilt (children first, so no foreign key is ever left dangling).
CREATE TABLE organisations_v2 (
    organisation_id TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member', 'auditor', 'court')),
    created_at      TEXT NOT NULL
);
INSERT INTO organisations_v2 (organisation_id, name, role, created_at)
    SELECT organisation_id, name, role, created_at FROM organisations;

CREATE TABLE api_keys_v2 (
    key_hash        TEXT PRIMARY KEY,
    key_id          TEXT NOT NULL UNIQUE,
    organisation_id TEXT NOT NULL REFERENCES organisations_v2 (organisation_id),
    role            TEXT NOT NULL CHECK (role IN ('admin', 'writer', 'reader', 'auditor', 'court')),
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
);
-- An existing key keeps what it could do: an admin's stays admin, a member's writes.
INSERT INTO api_keys_v2 (key_hash, key_id, organisation_id, role, created_at, revoked_at)
    SELECT k.key_hash, substr(k.key_hash, 1, 32), k.organisation_id,
           CASE o.role WHEN 'admin' THEN 'admin' ELSE 'writer' END,
           k.created_at, k.revoked_at
    FROM api_keys k JOIN organisations o ON o.organisation_id = k.organisation_id;

DROP TABLE api_keys;
DROP TABLE organisations;
ALTER TABLE organisations_v2 RENAME TO organisations;
ALTER TABLE api_keys_v2 RENAME TO api_keys;
CREATE INDEX api_keys_organisation ON api_keys (organisation_id);
