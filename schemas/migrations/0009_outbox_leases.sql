-- citybrain:mode all
-- The attempt each delivery's last lease was for (0: never leased). A lease sets it to
-- attempts + 1; recording that attempt makes attempts catch up. When the next claim finds it
-- still ahead of attempts, the worker holding the lease died between a send and its record:
-- the next worker first looks for the message at its destination (Kafka topics) before it
-- sends again, so a kill does not repeat a task message.
ALTER TABLE dispatch_outbox ADD COLUMN leased_attempt integer NOT NULL DEFAULT 0;
