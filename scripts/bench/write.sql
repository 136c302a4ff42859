-- pgbench: one gateway-like single write, run straight against one primary.
-- The same statement the gateway's POST /api/write runs (shard-manager's store::upsert):
-- an upsert into a copy of the records table (same columns and indexes, sgbench_rec
-- database), of a users record of ~330 bytes of JSON like the loadtest's fake profiles,
-- over :keys keys (the gateway's key space divided by the shards).
\set n random(0, :keys - 1)
\set zip random(10000, 99999)
\set ltv random(0, 4999999)
\set opt random(0, 1)
INSERT INTO records (table_name, shard_key, id, slot, data)
VALUES ('users', 'user_' || :n, 'rec_' || :n, :n % 1024,
        ('{"user_id": "user_' || :n || '", "name": "Anjali Mueller", "email": "meaghan'
         || :n || '@example.net", "phone": "(180) 979-7444 x289", "company": "Parisian Inc", '
         || '"address": {"street": "3719 Roob Hill", "city": "Carter berg", "state": "TX", '
         || '"zip": "' || :zip || '", "country": "US"}, "tier": "pro", "marketing_opt_in": '
         || CASE WHEN :opt = 1 THEN 'true' ELSE 'false' END
         || ', "lifetime_value_cents": ' || :ltv || '}')::jsonb)
ON CONFLICT (table_name, shard_key, id) DO UPDATE
   SET data = excluded.data, slot = excluded.slot,
       version = nextval('record_version_seq'), updated_at = now()
RETURNING version, created_at, updated_at, (xmax = 0);
