-- The automatic balancer's decisions in the map's history (`moves::auto_balance`). A
-- decision changes no map, so its line (`note`) carries the version it saw; lines are
-- ordered by `seq`, and a version stays unique among the map's changes.
ALTER TABLE map_history DROP CONSTRAINT map_history_pkey;
ALTER TABLE map_history ADD COLUMN seq BIGSERIAL PRIMARY KEY;
ALTER TABLE map_history ADD COLUMN note BOOLEAN NOT NULL DEFAULT false;
CREATE UNIQUE INDEX map_history_changes ON map_history (version) WHERE NOT note;
