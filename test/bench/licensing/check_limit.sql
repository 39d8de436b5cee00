\set n random(1, 1000)
SELECT celaest.check_limit(('00000000-0000-4000-8000-' || lpad(:n::text, 12, '0'))::uuid, 'ai_requests', 1);
