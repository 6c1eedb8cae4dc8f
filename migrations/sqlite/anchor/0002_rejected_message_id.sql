-- The AMQP message id of the message a rejected event came in (`<service>:<first>-<last
-- position>`), to find it beside its copy in the dead-letter queue. NULL when the message had none.
ALTER TABLE rejected_events ADD COLUMN message_id TEXT;
