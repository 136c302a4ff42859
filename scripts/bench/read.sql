-- pgbench: the gateway's replica point read (shard-manager's store::find_sql), run
-- straight against a replica: the CPU a bare client spends on one prepared point query
-- (scripts/bench.sh cpu, the floor rows). Slot check left out: it is PostgreSQL's work.
\set n random(0, :keys - 1)
SELECT table_name, shard_key, id, slot, data, version, created_at, updated_at
  FROM records WHERE table_name = 'users' AND shard_key = 'user_' || :n AND id = 'rec_' || :n
 LIMIT 1;
