-- The key space write.sql upserts, written once so its upserts are updates, as the
-- gateway's are once the loadtest prefill has run. psql variable: keys.
INSERT INTO records (table_name, shard_key, id, slot, data)
SELECT 'users', 'user_' || n, 'rec_' || n, n % 1024,
       ('{"user_id": "user_' || n || '", "name": "Anjali Mueller", "email": "meaghan'
        || n || '@example.net", "phone": "(180) 979-7444 x289", "company": "Parisian Inc", '
        || '"address": {"street": "3719 Roob Hill", "city": "Carter berg", "state": "TX", '
        || '"zip": "12345", "country": "US"}, "tier": "pro", "marketing_opt_in": false, '
        || '"lifetime_value_cents": ' || n || '}')::jsonb
  FROM generate_series(0, :keys - 1) AS n
ON CONFLICT DO NOTHING;
VACUUM ANALYZE records;
