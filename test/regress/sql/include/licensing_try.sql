-- try(sql) runs one statement and answers 'ok' or 'SQLSTATE: message | detail | HINT: hint',
-- with license ids replaced by the labels in pg_temp.label and timestamps by <ts>.
CREATE TEMP TABLE label (id uuid PRIMARY KEY, name text NOT NULL);
CREATE FUNCTION pg_temp.masked(p_text text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r record; v text := p_text;
BEGIN
    FOR r IN SELECT id::text AS id, name FROM pg_temp.label LOOP v := replace(v, r.id, r.name); END LOOP;
    -- Timestamps derived from now() (they carry microseconds), in ISO or Postgres style.
    v := regexp_replace(v, '\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+([+-]\d\d(:\d\d)?)?', '<ts>', 'g');
    RETURN regexp_replace(v, '[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d\.\d+ \d{4}( [A-Z]+)?', '<ts>', 'g');
END $$;
CREATE FUNCTION pg_temp.try(p_sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE v_state text; v_msg text; v_detail text; v_hint text;
BEGIN
    EXECUTE p_sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_msg = MESSAGE_TEXT,
                            v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
    RETURN v_state || ': ' || pg_temp.masked(v_msg)
        || COALESCE(' | ' || NULLIF(pg_temp.masked(v_detail), ''), '')
        || COALESCE(' | HINT: ' || NULLIF(v_hint, ''), '');
END $$;
