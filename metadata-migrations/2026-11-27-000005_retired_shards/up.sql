-- A shard emptied by `shard-admin remove-shard` stays in the map, retired.
ALTER TABLE map_shards ADD COLUMN retired BOOLEAN NOT NULL DEFAULT false;
