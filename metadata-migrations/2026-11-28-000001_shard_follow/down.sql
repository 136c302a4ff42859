ALTER TABLE map_shards DROP COLUMN follow;
