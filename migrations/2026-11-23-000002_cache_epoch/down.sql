DROP TABLE shardgate_cache;
