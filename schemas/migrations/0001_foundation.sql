-- 0001 foundation: the wiring probe's table.
-- Every row is one record of pipeline.ping.v1 that went through the ping agent.
CREATE TABLE IF NOT EXISTS pipeline_pings (
    ping_id     text PRIMARY KEY,
    sent_at     timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    note        text
);
