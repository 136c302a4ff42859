-- Lists (one key's, or a whole table's across shards) are ordered by
-- (updated_at DESC, shard_key DESC, id DESC): unique per table, so cursor pagination
-- has no duplicates and no gaps. These indexes serve that order.
DROP INDEX records_by_key_recent;
DROP INDEX records_by_table_recent;
CREATE INDEX records_by_key_recent ON records (table_name, shard_key, updated_at DESC, id DESC);
CREATE INDEX records_by_table_recent ON records (table_name, updated_at DESC, shard_key DESC, id DESC);
