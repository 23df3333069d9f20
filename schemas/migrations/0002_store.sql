-- 0002 store: the platform's tables, in TimescaleDB mode or plain PostgreSQL mode.
--
-- Sections: `-- citybrain:mode all|timescale|plain` switches which mode the lines after it
-- belong to, and `/* citybrain:partition-by col */` marks a time-partitioned table (see
-- citybrain/db/modes.py). Both modes give the same tables, columns and view
-- names, so writers and dashboards do not care which one runs.

-- citybrain:mode timescale
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- citybrain:mode all
-- ---------------------------------------------------------------- reference data
CREATE TABLE departments (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    channels    jsonb NOT NULL DEFAULT '[]'::jsonb,
    supervisor  text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE boundary_sets (
    set_code     text NOT NULL,
    version      integer NOT NULL,
    city         text NOT NULL,
    source       text NOT NULL,
    licence      text NOT NULL,
    source_crs   text NOT NULL DEFAULT 'WGS-84',
    imported_at  timestamptz NOT NULL DEFAULT now(),
    active       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (set_code, version)
);

CREATE TABLE boundaries (
    set_code     text NOT NULL,
    version      integer NOT NULL,
    layer        text NOT NULL,      -- district, street, community, grid, jurisdiction:<dept>
    code         text NOT NULL,
    name         text NOT NULL,
    parent_code  text,
    geometry     jsonb NOT NULL,     -- GeoJSON geometry, WGS-84
    PRIMARY KEY (set_code, version, layer, code),
    FOREIGN KEY (set_code, version) REFERENCES boundary_sets ON DELETE CASCADE
);

CREATE TABLE devices (
    device_id     text PRIMARY KEY,
    feed          text NOT NULL,
    asset_type    text NOT NULL,
    lon           double precision NOT NULL,
    lat           double precision NOT NULL,
    installed_on  date,
    attributes    jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- current state
CREATE TABLE incidents (
    incident_id     text PRIMARY KEY,
    category        text NOT NULL,
    priority        smallint NOT NULL,
    status          text NOT NULL CHECK (status IN
                    ('open', 'dispatched', 'acknowledged', 'resolved', 'closed', 'reopened')),
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    report_counts   jsonb NOT NULL DEFAULT '{}'::jsonb,   -- {"iot": 3, "hotline": 7}
    reports_total   integer NOT NULL DEFAULT 0,
    lon             double precision,
    lat             double precision,
    location_status text NOT NULL DEFAULT 'located',      -- located, needs_location, out_of_area
    district        text,
    street          text,
    community       text,
    grid_cell       text,
    jurisdiction    text,
    title           text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL DEFAULT 1
);
CREATE INDEX incidents_open_idx ON incidents (status, last_seen DESC);
CREATE INDEX incidents_place_idx ON incidents (district, category);

CREATE TABLE incident_reports (
    event_id     text PRIMARY KEY,            -- an event belongs to one incident
    incident_id  text NOT NULL REFERENCES incidents ON DELETE CASCADE,
    source_kind  text NOT NULL,
    observed_at  timestamptz NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_reports_incident_idx ON incident_reports (incident_id, observed_at);

CREATE TABLE dispatches (
    dispatch_id       text PRIMARY KEY,
    incident_id       text NOT NULL REFERENCES incidents,
    department        text NOT NULL,
    role              text NOT NULL DEFAULT 'lead' CHECK (role IN ('lead', 'helper')),
    status            text NOT NULL,
    priority          smallint NOT NULL,
    ack_deadline      timestamptz,
    resolve_deadline  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    acknowledged_at   timestamptz,
    resolved_at       timestamptz,
    report_count      integer NOT NULL DEFAULT 1,
    details           jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (incident_id, department)         -- one dispatch per incident and department
);
CREATE INDEX dispatches_department_idx ON dispatches (department, status, resolve_deadline);

-- Personal data lives apart, so that a role can be kept away from it entirely.
CREATE TABLE personal_contacts (
    event_id      text PRIMARY KEY,
    caller_phone  text,
    caller_name   text,
    stored_at     timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- time series
-- citybrain:mode all
-- Time-partitioned: TimescaleDB hypertables, or declarative range partitions on plain
-- PostgreSQL (the marker below becomes `PARTITION BY RANGE (column)` there).
CREATE TABLE events (
    event_id         text NOT NULL,
    observed_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL,
    source_kind      text NOT NULL,            -- iot, hotline, open311
    feed             text NOT NULL,
    category         text NOT NULL,
    severity         smallint NOT NULL DEFAULT 3,
    lon              double precision,
    lat              double precision,
    crs              text,
    location_status  text NOT NULL DEFAULT 'located',
    district         text,
    street           text,
    community        text,
    grid_cell        text,
    jurisdiction     text,
    device_id        text,
    address          text,
    body             text,
    attributes       jsonb NOT NULL DEFAULT '{}'::jsonb,
    raw_ref          jsonb,
    PRIMARY KEY (event_id, observed_at)
) /* citybrain:partition-by observed_at */;

CREATE TABLE readings (
    device_id  text NOT NULL,
    metric     text NOT NULL,
    ts         timestamptz NOT NULL,
    value      double precision NOT NULL,
    unit       text,
    feed       text NOT NULL,
    PRIMARY KEY (device_id, metric, ts)
) /* citybrain:partition-by ts */;

CREATE TABLE incident_history (
    incident_id    text NOT NULL,
    at             timestamptz NOT NULL,
    change         text NOT NULL,             -- opened, merged, status, priority, reopened
    status         text NOT NULL,
    category       text NOT NULL,
    district       text,
    priority       smallint NOT NULL,
    reports_total  integer NOT NULL,
    PRIMARY KEY (incident_id, at, change)
) /* citybrain:partition-by at */;

CREATE TABLE dispatch_history (
    dispatch_id       text NOT NULL,
    at                timestamptz NOT NULL,
    status            text NOT NULL,           -- created, sent, acknowledged, resolved, ...
    department        text NOT NULL,
    incident_id       text NOT NULL,
    actor             text,
    note              text,
    ack_deadline      timestamptz,
    resolve_deadline  timestamptz,
    on_time           boolean,
    PRIMARY KEY (dispatch_id, at, status)
) /* citybrain:partition-by at */;

-- citybrain:mode timescale
SELECT create_hypertable('events', by_range('observed_at', INTERVAL '1 day'));
SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'));
SELECT create_hypertable('incident_history', by_range('at', INTERVAL '7 days'));
SELECT create_hypertable('dispatch_history', by_range('at', INTERVAL '7 days'));
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id, metric',
    timescaledb.compress_orderby = 'ts DESC'
);
ALTER TABLE events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'feed',
    timescaledb.compress_orderby = 'observed_at DESC'
);

-- citybrain:mode plain
-- citybrain_ensure_partitions() creates the partitions ahead of time and a DEFAULT
-- partition keeps any row whose partition does not exist yet.
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE TABLE incident_history_default PARTITION OF incident_history DEFAULT;
CREATE TABLE dispatch_history_default PARTITION OF dispatch_history DEFAULT;

-- Create the partitions of `parent` covering [from_ts, to_ts) in steps of `step`.
-- A range whose rows already sit in the DEFAULT partition is left there (never lost).
CREATE FUNCTION citybrain_ensure_partitions(
    parent regclass, step interval, from_ts timestamptz, to_ts timestamptz
) RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    lo timestamptz := date_bin(step, from_ts, TIMESTAMPTZ '2000-01-01');
    hi timestamptz;
    name text;
    created integer := 0;
BEGIN
    WHILE lo < to_ts LOOP
        hi := lo + step;
        name := format('%s_p%s', parent::text, to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD'));
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                               name, parent, lo, hi);
                created := created + 1;
            EXCEPTION WHEN check_violation THEN
                RAISE NOTICE 'rows for % are in the default partition; left there', name;
            END;
        END IF;
        lo := hi;
    END LOOP;
    RETURN created;
END
$fn$;

-- Drop the partitions of `parent` that end before `cutoff` (retention). Returns the count.
CREATE FUNCTION citybrain_drop_partitions_before(parent regclass, cutoff timestamptz)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    part record;
    upper_bound timestamptz;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.oid::regclass AS rel, pg_get_expr(c.relpartbound, c.oid) AS bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent
    LOOP
        CONTINUE WHEN part.bound = 'DEFAULT';
        upper_bound := substring(part.bound FROM 'TO \(''([^'']+)''\)')::timestamptz;
        IF upper_bound <= cutoff THEN
            EXECUTE format('DROP TABLE %s', part.rel);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$fn$;

-- citybrain:mode all
-- No index on (feed, time): each index costs ~20% of the write rate; per-feed rates come
-- from the worker's metrics, per-place queries use events_place_idx.
CREATE INDEX events_place_idx ON events (district, category, observed_at DESC);
CREATE INDEX events_needs_location_idx ON events (observed_at DESC)
    WHERE location_status = 'needs_location';
CREATE INDEX incident_history_opened_idx ON incident_history (at DESC) WHERE change = 'opened';
CREATE INDEX dispatch_history_department_idx ON dispatch_history (department, at DESC);

-- ---------------------------------------------------------------- dashboard aggregates
-- citybrain:mode timescale
CREATE MATERIALIZED VIEW incidents_hourly WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', at) AS bucket,
       coalesce(district, '') AS district,
       category,
       count(*) AS incidents
FROM incident_history
WHERE change = 'opened'
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW readings_5m WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '5 minutes', ts) AS bucket,
       device_id,
       metric,
       avg(value) AS avg_value,
       min(value) AS min_value,
       max(value) AS max_value,
       count(*) AS samples
FROM readings
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW sla_daily WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 day', at) AS bucket,
       department,
       count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged,
       count(*) FILTER (WHERE status = 'acknowledged' AND on_time) AS acknowledged_on_time,
       count(*) FILTER (WHERE status = 'resolved') AS resolved,
       count(*) FILTER (WHERE status = 'resolved' AND on_time) AS resolved_on_time
FROM dispatch_history
GROUP BY 1, 2
WITH NO DATA;

-- Dashboards see the newest data too (real-time aggregation).
ALTER MATERIALIZED VIEW incidents_hourly SET (timescaledb.materialized_only = false);
ALTER MATERIALIZED VIEW readings_5m SET (timescaledb.materialized_only = false);
ALTER MATERIALIZED VIEW sla_daily SET (timescaledb.materialized_only = false);

-- citybrain:mode plain
-- Same names and columns as the continuous aggregates; `citybrain db maintain` (and the
-- worker's timer) refreshes them. Unique indexes allow REFRESH ... CONCURRENTLY.
CREATE MATERIALIZED VIEW incidents_hourly AS
SELECT date_bin(INTERVAL '1 hour', at, TIMESTAMPTZ '2000-01-01') AS bucket,
       coalesce(district, '') AS district,
       category,
       count(*) AS incidents
FROM incident_history
WHERE change = 'opened'
GROUP BY 1, 2, 3
WITH NO DATA;
CREATE UNIQUE INDEX incidents_hourly_key ON incidents_hourly (bucket, district, category);

CREATE MATERIALIZED VIEW readings_5m AS
SELECT date_bin(INTERVAL '5 minutes', ts, TIMESTAMPTZ '2000-01-01') AS bucket,
       device_id,
       metric,
       avg(value) AS avg_value,
       min(value) AS min_value,
       max(value) AS max_value,
       count(*) AS samples
FROM readings
GROUP BY 1, 2, 3
WITH NO DATA;
CREATE UNIQUE INDEX readings_5m_key ON readings_5m (bucket, device_id, metric);

CREATE MATERIALIZED VIEW sla_daily AS
SELECT date_bin(INTERVAL '1 day', at, TIMESTAMPTZ '2000-01-01') AS bucket,
       department,
       count(*) FILTER (WHERE status = 'acknowledged') AS acknowledged,
       count(*) FILTER (WHERE status = 'acknowledged' AND on_time) AS acknowledged_on_time,
       count(*) FILTER (WHERE status = 'resolved') AS resolved,
       count(*) FILTER (WHERE status = 'resolved' AND on_time) AS resolved_on_time
FROM dispatch_history
GROUP BY 1, 2
WITH NO DATA;
CREATE UNIQUE INDEX sla_daily_key ON sla_daily (bucket, department);
