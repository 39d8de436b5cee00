\set n random(1, 1000)
SELECT celaest._reserve_ai_request(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, NULL);
