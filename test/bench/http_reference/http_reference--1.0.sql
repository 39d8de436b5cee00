CREATE FUNCTION bench_http_post(url text, body text) RETURNS text
    AS 'MODULE_PATHNAME', 'bench_http_post' LANGUAGE C STRICT VOLATILE;
