-- Every product an event names, by its GS1 key: each identifier that is an SGTIN, an LGTIN, an
-- SGTIN pattern of a whole GTIN, or a GS1 Digital Link with a GTIN, under its Digital Link path
-- (`/01/{gtin}[/10/{lot}][/21/{serial}]`): what a product's history and GET /01/... look up,
-- whichever way each partner wrote the identifier.
CREATE TABLE epcis_event_products (
    product    TEXT NOT NULL,
    gtin       TEXT NOT NULL,
    identifier TEXT NOT NULL,
    role       TEXT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (product, identifier, role, position)
);
CREATE INDEX epcis_event_products_by_gtin ON epcis_event_products (gtin, position);
CREATE INDEX epcis_event_identifiers_by_position ON epcis_event_identifiers (position);
