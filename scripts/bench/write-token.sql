-- pgbench: what a gateway single write sends, at the protocol level: the upsert of
-- write.sql and, pipelined behind it, the statement that reads the WAL position and the
-- cache epoch after the commit (shard-manager's store::upsert). One round trip.
\set n random(0, :keys - 1)
\set ltv random(0, 4999999)
\startpipeline
INSERT INTO records (table_name, shard_key, id, slot, data)
VALUES ('users', 'user_' || :n, 'rec_' || :n, :n % 1024,
        ('{"user_id": "user_' || :n || '", "name": "Anjali Mueller", "email": "meaghan'
         || :n || '@example.net", "tier": "pro", "lifetime_value_cents": ' || :ltv || '}')::jsonb)
ON CONFLICT (table_name, shard_key, id) DO UPDATE
   SET data = excluded.data, slot = excluded.slot,
       version = nextval('record_version_seq'), updated_at = now()
RETURNING version, created_at, updated_at, (xmax = 0);
SELECT pg_current_wal_lsn()::text, (SELECT epoch FROM shardgate_cache);
\endpipeline
