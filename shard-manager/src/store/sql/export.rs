//! The statement an export reads a shard with, one page at a time: a table's records
//! in keyset order `(shard_key, id)` (unique within a table, and never changed by a
//! write, so a record updated while the export runs neither moves nor repeats), only
//! the slots the shard owns, and in the same statement (one snapshot) what the shard
//! was told of the map, so an export notices a change of ownership between its pages.

/// One page of an export. Binds: `$1` table (text), `$2` shard key prefix (text, `''`
/// for every key), `$3` and `$4` the last (shard key, id) exported from this shard
/// (text; `''` and `''` before the first page, which every key sorts after: a key is
/// at least one byte), `$5` the page's row limit (int8).
///
/// Columns: the map version the shard was told (int8, NULL if never told), how many
/// slots it owns (int8), whether the row holds a record (bool), then `Record`'s columns
/// in its field order. A page without a record is one row with `false` and NULLs, so
/// even the empty last page says what the shard owned when it was read.
pub const EXPORT_PAGE: &str = "SELECT (SELECT version FROM shardgate_map), \
     (SELECT count(*) FROM shardgate_slots), r.table_name IS NOT NULL, \
     r.table_name, r.shard_key, r.id, r.slot, r.data, r.version, r.created_at, r.updated_at \
     FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
     SELECT table_name, shard_key, id, slot, data, version, created_at, updated_at \
     FROM records WHERE table_name = $1 AND starts_with(shard_key, $2) \
     AND (shard_key, id) > ($3, $4) \
     AND (NOT EXISTS (SELECT 1 FROM shardgate_map) OR slot IN (SELECT slot FROM shardgate_slots)) \
     ORDER BY shard_key, id LIMIT $5) AS r ON true \
     ORDER BY r.shard_key, r.id";
