\set n random(1, 1000)
UPDATE celaest.licenses SET ai_requests_used = ai_requests_used + 1
 WHERE id = ('00000000-0000-4000-9000-' || lpad(:n::text, 12, '0'))::uuid;
