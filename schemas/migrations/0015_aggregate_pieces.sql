-- citybrain:mode plain
-- Housekeeping that yields: an aggregate is refreshed one piece at a time (at most
-- `max_buckets` buckets a transaction), so the worker's maintenance can wait for the report
-- path between pieces instead of holding a core for one long statement. Each call takes
-- the aggregate's invalidations, merges them, recomputes the first piece and logs the rest
-- back, all in one transaction: a pass that stops half-way loses nothing.
CREATE FUNCTION citybrain_refresh_aggregate_piece(agg text, width interval, max_buckets integer)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    first record;
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
    piece_hi := least(first.hi, first.lo + width * max_buckets);
    INSERT INTO aggregate_invalidations (aggregate, lo, hi)
    SELECT agg, lo, hi - width FROM (
        SELECT piece_hi AS lo, first.hi AS hi WHERE piece_hi < first.hi
        UNION ALL
        SELECT lo, hi FROM citybrain_islands WHERE lo > first.lo
    ) more;
    GET DIAGNOSTICS rest = ROW_COUNT;
    DROP TABLE citybrain_islands;
    EXECUTE format('SELECT %I($1, $2)', 'citybrain_aggregate_' || agg) USING first.lo, piece_hi;
    RETURN CASE WHEN rest > 0 THEN 2 ELSE 1 END;
END
$fn$;
