DROP TRIGGER records_log_insert ON records;
DROP TRIGGER records_log_update ON records;
DROP TRIGGER records_log_delete ON records;
DROP FUNCTION shardgate_log_upserts();
DROP FUNCTION shardgate_log_deletes();
DROP TABLE shardgate_changes_pruned;
DROP TABLE shardgate_changes;
