-- check_limit as an end user (row-level security on): the user of organization :n, named by
-- the request's JWT claims as PostgREST sets them, in the same statement.
\set n random(1, 1000)
SELECT set_config('request.jwt.claims', '{"sub": "00000000-0000-4000-a000-' || lpad(:n::text, 12, '0') || '"}', true),
       celaest.check_limit(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, 'ai_requests', 1);
