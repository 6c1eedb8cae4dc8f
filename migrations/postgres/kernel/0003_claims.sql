-- Business keys claimed by one record each (a seller's tax number and invoice number, an
-- invoice pledged to a voucher): a key is claimed in the transaction that appends the claiming
-- events, and only once. The claim names the record that holds it.
CREATE TABLE claims (
    claim_key TEXT   PRIMARY KEY,
    stream    TEXT   NOT NULL,
    -- The first event of the append that claimed it.
    event_id  TEXT   NOT NULL,
    position  BIGINT NOT NULL REFERENCES events (position)
);
