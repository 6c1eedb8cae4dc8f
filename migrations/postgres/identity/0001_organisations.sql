-- Organisations and their API keys. Only a hash of each key is stored.
CREATE TABLE organisations (
    organisation_id TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at      TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_hash        TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL REFERENCES organisations (organisation_id),
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
);
