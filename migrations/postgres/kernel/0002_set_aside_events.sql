-- Events a consumer of the event store could not process (a stored envelope it cannot read, an
-- event its read model cannot apply), set aside so that everything behind them flows on. The
-- event itself stays in `events`, untouched, for the audit and for an operator to look at.
CREATE TABLE set_aside_events (
    -- `relay`, or `projection:<read model>`.
    consumer     TEXT   NOT NULL,
    position     BIGINT NOT NULL REFERENCES events (position),
    reason       TEXT   NOT NULL,
    set_aside_at TEXT   NOT NULL,
    PRIMARY KEY (consumer, position)
);
