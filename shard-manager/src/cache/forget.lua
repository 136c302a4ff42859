-- Forgets one record: drops its cached value and marks its version floor unknown, so no
-- reader installs a version from before the write that forgot it.
-- KEYS[1]: the record's value key; KEYS[2]: its version floor key.
-- ARGV[1]: floor TTL (ms); ARGV[2]: what is known of the write:
--   'm' it may have committed (its connection was lost): the floor keeps the version it
--       had ('uN'), so a late install of an older commit stays refused;
--   'k' it committed with version ARGV[3] (a replayed answer): 'u' with the newer of the
--       two, since that version may have been acknowledged by the replay;
--   'c' it committed, its version is not known (a replayed delete or transaction): 'u',
--       no install at all until the floor expires (install.lua).
-- Floors only rise: a 'u' floor stays 'u'.
local raw = redis.call('GET', KEYS[2])
local floor = 'u'
if raw ~= 'u' and ARGV[2] ~= 'c' then
  local n = tonumber(raw and string.match(raw, '^u?(%-?%d+)$') or '-1') or -1
  if ARGV[2] == 'k' then n = math.max(n, tonumber(ARGV[3])) end
  floor = 'u' .. n
end
redis.call('SET', KEYS[2], floor, 'PX', ARGV[1])
redis.call('DEL', KEYS[1])
return 1
