-- The balancer's lines go with the column that tells them apart: the map's changes
-- alone have one line per version.
DELETE FROM map_history WHERE note;
DROP INDEX map_history_changes;
ALTER TABLE map_history DROP COLUMN note;
ALTER TABLE map_history DROP COLUMN seq;
ALTER TABLE map_history ADD PRIMARY KEY (version);
