-- citybrain:mode plain
-- An aggregate of bulk telemetry materialises closed buckets only, as its TimescaleDB
-- policy does (`end_offset`): the open bucket of readings_5m, written to 50,000 times a
-- second in a storm, was recomputed from scratch on every pass (up to 15 million rows a
-- piece, seconds of a core each minute). A piece now stops at `until` (bucket-aligned
-- down); what lies at or after it stays logged for a later pass. NULL: no limit.
DROP FUNCTION citybrain_refresh_aggregate_piece(text, interval, integer);
CREATE FUNCTION citybrain_refresh_aggregate_piece(
    agg text, width interval, max_buckets integer, until timestamptz DEFAULT NULL
)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    first record;
    cap timestamptz := coalesce(date_bin(width, until, TIMESTAMPTZ '2000-01-01'), 'infinity');
    piece_hi timestamptz;
    rest integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('citybrain_refresh_aggregate'), hashtext(agg));
    CREATE TEMP TABLE IF NOT EXISTS citybrain_islands (lo timestamptz, hi timestamptz)
        ON COMMIT DROP;
    WITH taken AS (
        DELETE FROM aggregate_invalidations WHERE aggregate = agg RETURNING lo, hi
    ), aligned AS (
        SELECT date_bin(width, lo, TIMESTAMPTZ '2000-01-01') AS lo,
               date_bin(width, hi, TIMESTAMPTZ '2000-01-01') + width AS hi
        FROM taken
    ), marked AS (
        SELECT lo, hi,
               CASE WHEN lo <= max(hi) OVER (ORDER BY lo, hi ROWS BETWEEN UNBOUNDED
                                              PRECEDING AND 1 PRECEDING)
                    THEN 0 ELSE 1 END AS starts
        FROM aligned
    ), islands AS (
        SELECT lo, hi, sum(starts) OVER (ORDER BY lo, hi) AS island FROM marked
    )
    INSERT INTO citybrain_islands
    SELECT min(lo), max(hi) FROM islands GROUP BY island;
    SELECT lo, hi INTO first FROM citybrain_islands ORDER BY lo LIMIT 1;
    IF NOT FOUND THEN
        DROP TABLE citybrain_islands;
        RETURN 0;
    END IF;
    IF first.lo >= cap THEN  -- only open buckets are stale: all of it stays logged
        INSERT INTO aggregate_invalidations (aggregate, lo, hi)
        SELECT agg, lo, hi - width FROM citybrain_islands;
        DROP TABLE citybrain_islands;
        RETURN 0;
    END IF;
    piece_hi := least(first.hi, first.lo + width * max_buckets, cap);
    INSERT INTO aggregate_invalidations (aggregate, lo, hi)
    SELECT agg, lo, hi - width FROM (
        SELECT piece_hi AS lo, first.hi AS hi WHERE piece_hi < first.hi
        UNION ALL
        SELECT lo, hi FROM citybrain_islands WHERE lo > first.lo
    ) more;
    -- more pieces are due now only if some of what was logged back lies before the cap
    SELECT count(*) INTO rest FROM (
        SELECT piece_hi AS lo WHERE piece_hi < first.hi
        UNION ALL
        SELECT lo FROM citybrain_islands WHERE lo > first.lo
    ) more WHERE lo < cap;
    DROP TABLE citybrain_islands;
    EXECUTE format('SELECT %I($1, $2)', 'citybrain_aggregate_' || agg) USING first.lo, piece_hi;
    RETURN CASE WHEN rest > 0 THEN 2 ELSE 1 END;
END
$fn$;
