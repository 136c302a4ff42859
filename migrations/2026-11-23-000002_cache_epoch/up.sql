-- The shard's cache epoch, shared by every gateway: cache keys of this shard's records
-- carry it. A writer that committed but could not update Redis raises it before it
-- acknowledges; every gateway reads it with each health check and stops using the
-- older keys, so no gateway serves an entry older than that write for longer than
-- about one check interval.
CREATE TABLE shardgate_cache (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch     BIGINT  NOT NULL
);
INSERT INTO shardgate_cache (epoch) VALUES (0);
