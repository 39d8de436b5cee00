-- CELAEST 0.1.0 → 0.2.0 (ALTER EXTENSION celaest UPDATE TO '0.2.0').
--
-- Every schema change made since 0.1.0 lands here as well as in src/sql, so that an upgraded
-- database equals a fresh 0.2.0 install object by object (test/upgrade checks it).

\echo Use "ALTER EXTENSION celaest UPDATE TO '0.2.0'" to load this file. \quit

-- boundary probes: installed by the tests, not the extension
DROP FUNCTION celaest._boundary_probe(text);
DROP FUNCTION celaest._boundary_destructor_count();
