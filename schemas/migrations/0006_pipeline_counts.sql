-- 0006 pipeline counts: records and dead letters per stage, outcome and reason, per
-- minute, flushed from the worker's counters (agents/monitor.py), so that the pipeline
-- health dashboard reads the database like every other panel. Monitoring, not accounting:
-- a batch retried after a crash may be counted twice.

-- citybrain:mode all
CREATE TABLE pipeline_counts (
    bucket   timestamptz NOT NULL,          -- the minute
    stage    text NOT NULL,                 -- normalize, correlate, dispatch, ...
    outcome  text NOT NULL,                 -- ok, dead_letter
    reason   text NOT NULL DEFAULT '',      -- the dead letter's reason
    n        bigint NOT NULL,
    PRIMARY KEY (bucket, stage, outcome, reason)
);
CREATE INDEX pipeline_counts_time_idx ON pipeline_counts (bucket DESC);
