-- How each shard's failover is followed (`[[shards]] follow`): 'servers', its listed
-- servers asked their roles and the map moved to the promoted one; 'address', fixed
-- addresses an HA layer keeps pointed at the primary and the standbys. In the map, so
-- every gateway follows a shard alike.
ALTER TABLE map_shards ADD COLUMN follow TEXT NOT NULL DEFAULT 'servers'
    CHECK (follow IN ('servers', 'address'));
