-- citybrain:mode all
-- The outbox sends the most urgent first: each delivery's rank (lower first) is set when it
-- is queued from the task's priority and the message's kind (`citybrain.dispatch.outbox.
-- delivery_rank`); a claim takes the due deliveries in rank order, then oldest first.
ALTER TABLE dispatch_outbox ADD COLUMN rank smallint NOT NULL DEFAULT 6;
DROP INDEX IF EXISTS dispatch_outbox_due_idx;
CREATE INDEX dispatch_outbox_due_idx ON dispatch_outbox (rank, next_attempt_at)
    WHERE status IN ('pending', 'failed');
