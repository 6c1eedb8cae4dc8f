-- The leaves waiting for a batch, as ranges of consecutive `seq`s: a row per message's
-- leaves received, not a row written and deleted again per leaf. A leaf waits if its `seq`
-- lies in a range; sealing takes the oldest, splitting a range it takes part of.
CREATE TABLE unsealed_ranges (
    first_seq INTEGER PRIMARY KEY,
    last_seq  INTEGER NOT NULL
);
INSERT INTO unsealed_ranges (first_seq, last_seq)
    SELECT MIN(seq), MAX(seq)
    FROM (SELECT seq, seq - ROW_NUMBER() OVER (ORDER BY seq) AS island FROM unsealed_leaves) AS waiting
    GROUP BY island;
DROP TABLE unsealed_leaves;
