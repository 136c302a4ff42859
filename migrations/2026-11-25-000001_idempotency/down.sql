DROP FUNCTION shardgate_idempotency_taken();
DROP TABLE shardgate_idempotency;
