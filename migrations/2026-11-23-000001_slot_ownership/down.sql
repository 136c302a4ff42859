DROP FUNCTION shardgate_owns(INTEGER);
DROP FUNCTION shardgate_serves(INTEGER);
DROP FUNCTION shardgate_claim(INTEGER);
DROP FUNCTION shardgate_claim(INTEGER[]);
DROP TABLE shardgate_slots;
DROP TABLE shardgate_map;
