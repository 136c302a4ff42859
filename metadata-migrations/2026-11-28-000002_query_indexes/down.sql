DROP TABLE query_index_shards;
DROP TABLE query_indexes;
