-- Behind a service address (`follow = 'address'`) the map's servers never change: the
-- primary is known by its identity instead, as the first connection through the address
-- found it and every recorded promotion since. NULL until first seen, and for shards
-- that follow their servers. `system_identifier` is pg_control_system()'s (a u64, as
-- text; NULL where the role may not read it); `node` the host:port really reached, for
-- people and logs only.
ALTER TABLE map_shards
    ADD COLUMN timeline INTEGER CHECK (timeline > 0),
    ADD COLUMN system_identifier TEXT,
    ADD COLUMN node TEXT;
