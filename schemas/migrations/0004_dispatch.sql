-- 0004 dispatch: what the dispatch stage keeps per task, its outbox and every delivery
-- attempt. Deadlines live on the dispatch row; the outbox holds one row per message and
-- destination with its delivery state (pending, sent, failed, dead), so that delivery
-- resumes after a restart and every attempt can be audited.

-- citybrain:mode all
ALTER TABLE dispatches ADD COLUMN category text NOT NULL DEFAULT '';
ALTER TABLE dispatches ADD COLUMN sla_clock text NOT NULL DEFAULT 'calendar';
ALTER TABLE dispatches ADD COLUMN escalations text[] NOT NULL DEFAULT '{}';   -- actions sent
ALTER TABLE dispatches ADD COLUMN next_action_at timestamptz;              -- next timer due
ALTER TABLE dispatches ADD COLUMN note text;                               -- resolve note
ALTER TABLE dispatches ADD COLUMN reason text;                             -- reject reason
ALTER TABLE dispatches ADD COLUMN route text;                              -- the route taken
ALTER TABLE dispatches ADD COLUMN reopened integer NOT NULL DEFAULT 0;
ALTER TABLE dispatches ADD CONSTRAINT dispatches_status_check CHECK (status IN
    ('dispatched', 'acknowledged', 'in_progress', 'resolved', 'rejected', 'cancelled'));
CREATE INDEX dispatches_timers_idx ON dispatches (next_action_at)
    WHERE status IN ('dispatched', 'acknowledged', 'in_progress');

CREATE TABLE dispatch_outbox (
    message_id       text NOT NULL,        -- webhook-id: the same for every retry
    destination      text NOT NULL,        -- kafka:<topic> or webhook:<endpoint name>
    dispatch_id      text NOT NULL REFERENCES dispatches ON DELETE CASCADE,
    department       text NOT NULL,
    kind             text NOT NULL,        -- task.created, task.updated, task.reminder, ...
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    PRIMARY KEY (message_id, destination)
);
CREATE INDEX dispatch_outbox_due_idx ON dispatch_outbox (next_attempt_at)
    WHERE status IN ('pending', 'failed');
CREATE INDEX dispatch_outbox_dispatch_idx ON dispatch_outbox (dispatch_id);

CREATE TABLE delivery_attempts (
    message_id     text NOT NULL,
    destination    text NOT NULL,
    attempt        integer NOT NULL,
    at             timestamptz NOT NULL,
    outcome        text NOT NULL,          -- sent, retry, fail
    status_code    integer,
    error          text,
    duration_ms    integer NOT NULL,
    PRIMARY KEY (message_id, destination, attempt, at)
) /* citybrain:partition-by at */;

-- citybrain:mode timescale
SELECT create_hypertable('delivery_attempts', by_range('at', INTERVAL '7 days'));

-- citybrain:mode plain
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;
