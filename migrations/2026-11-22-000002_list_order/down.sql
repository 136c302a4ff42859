DROP INDEX records_by_table_recent;
CREATE INDEX records_by_table_recent ON records (table_name, updated_at DESC, id DESC);
