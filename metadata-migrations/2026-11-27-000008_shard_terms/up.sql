-- Each shard's primary term, raised by every failover (`failover::record`): it only
-- grows, so a later map never names an older primary.
ALTER TABLE map_shards ADD COLUMN term BIGINT NOT NULL DEFAULT 1;
