ALTER TABLE map_shards DROP COLUMN term;
