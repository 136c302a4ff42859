-- The documents' GIN index keeps new entries in a pending list and merges them into
-- the index when the list outgrows `gin_pending_list_limit` (4 MB by default). The
-- write that crosses the limit does the merge, and with group commit that write
-- carries a whole group: every write of the shard waited 100-200 ms for it, every few
-- seconds under load. A 256 kB list merges sixteen times as often, each merge a
-- sixteenth of the work, so no write waits long behind one; the work per write is
-- unchanged (the list keeps its batching, unlike `fastupdate = off`, which costs every
-- write an index update in place).
ALTER INDEX records_data_gin SET (gin_pending_list_limit = 256);
