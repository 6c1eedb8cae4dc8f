-- The GTINs whose history the public sees, and whose events: the brand owner's (the events it
-- may read). A withdrawn GTIN's row is deleted.
CREATE TABLE published_products (
    gtin         TEXT PRIMARY KEY,
    organisation TEXT NOT NULL,
    published_at TEXT NOT NULL
);
