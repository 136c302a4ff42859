ALTER TABLE map_shards DROP COLUMN timeline, DROP COLUMN system_identifier, DROP COLUMN node;
