-- Installs a record version in the cache only if it is not older than what is known.
-- KEYS[1]: the record's value key; KEYS[2]: its version floor key.
-- ARGV[1]: version; ARGV[2]: compact JSON ('' = the record was deleted);
-- ARGV[3]: value TTL (ms); ARGV[4]: floor TTL (ms); ARGV[5]: 'w' writer | 'r' reader.
-- Writers (after commit, before acknowledging) raise the floor to their version, so a
-- reader holding an older version (slow, or from a lagging replica) can never install it.
local v = tonumber(ARGV[1])
local floor = tonumber(redis.call('GET', KEYS[2]) or '-1')
if v < floor then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cv = tonumber(string.match(cur, '^(%d+)|'))
  if cv and (cv > v or (cv == v and ARGV[5] == 'r')) then return 0 end
end
if ARGV[5] == 'w' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4]) end
-- A deletion leaves a tombstone ('<version>|'): reads answer "not found" from it, and
-- readers cannot install an older version over it.
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
