-- Installs a record version in the cache only if it is not older than what is known.
-- KEYS[1]: the record's value key; KEYS[2]: its version floor key; KEYS[3]: the shard's
-- retired-epoch marker (`retired.rs`).
-- ARGV[1]: version; ARGV[2]: '<seen_at>|<compact JSON>' (JSON '' = the record was
-- deleted; seen_at: a WAL position the entry reflects, 0 = unknown);
-- ARGV[3]: value TTL (ms); ARGV[4]: floor TTL (ms); ARGV[5]: 'w' writer | 'r' reader;
-- ARGV[6]: the epoch the keys belong to.
-- Writers (after commit, before acknowledging) raise the floor to their version, so a
-- reader holding an older version (slow, or from a lagging replica) can never install it.
-- Nothing goes into an epoch a mover retired: no gateway reads it any more.
if tonumber(ARGV[6]) < tonumber(redis.call('GET', KEYS[3]) or '0') then return 0 end
local v = tonumber(ARGV[1])
local raw_floor = redis.call('GET', KEYS[2])
if raw_floor then
  -- 'N': the newest version a writer installed; 'uN': since version N a write of
  -- unknown outcome may have committed (connection lost, or a replay's first attempt),
  -- 'u' alone: one whose version is not known at all (see forget.lua).
  local unknown, n = string.match(raw_floor, '^(u?)(%-?%d*)$')
  if unknown == nil then return 0 end
  if unknown == 'u' then
    -- No reader may install: what it read may predate that write. A writer may, if its
    -- version is past N: its commit came after every write acknowledged so far. (A writer
    -- at N or below is a late install of an older commit, which must not come back.)
    if ARGV[5] ~= 'w' or n == '' or v <= tonumber(n) then return 0 end
  elseif n == '' or v < tonumber(n) then
    return 0
  end
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cv, cs = string.match(cur, '^(%d+)|(%d+)|')
  cv = tonumber(cv)
  -- A reader may replace the same version only to record that it is known further on
-- (a writer always does: it raises the floor too).
  local seen = tonumber(string.match(ARGV[2], '^(%d+)|')) or 0
  if cv and (cv > v or (cv == v and ARGV[5] == 'r' and (tonumber(cs) or 0) >= seen)) then
    return 0
  end
end
if ARGV[5] == 'w' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4]) end
-- A deletion leaves a tombstone ('<version>|<seen_at>|'): reads answer "not found" from it, and
-- readers cannot install an older version over it.
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
