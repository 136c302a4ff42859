-- wrk script for the CPU-per-request table (scripts/bench.sh cpu): one request kind,
-- chosen by KIND, over the loadtest key space (users/rec_n under shard key user_n).
--
--   KIND=read KEYS=10000 wrk -t1 -c8 -d8s -s scripts/wrk-cpu.lua http://127.0.0.1:18080
--
-- KIND: noop (GET /api/health/live), read (point read, eventual), list (a key's 10
-- newest), fanout (every shard's 10 newest), write (single upsert), keyed (the same
-- write with a fresh Idempotency-Key each time), bulk1 (a bulk write of one record), cached (a point read, against a gateway with the cache on), errors
-- (GET /api/analytics/errors?limit=1: a scoped request with no shard work).
-- AUTH=<key> sends `Authorization: Bearer <key>` with every request (the limits
-- benchmark, api-router/benches/topology/limits.rs).
-- txn1 (a transaction of two upserts under one shard key: one shard, one round),
-- txn2 (two upserts on two shards: two-phase commit; PAIRS=<file> of lines "n m" whose
-- keys user_n and user_m live on different shards; api-router/benches/topology/txn.rs),
-- pair2 (the same two upserts as one bulk write, without atomicity: a part per shard).

local kind = os.getenv("KIND") or "noop"
local keys = tonumber(os.getenv("KEYS") or "10000")
local auth = os.getenv("AUTH")
local threads = 0
local sent = 0

function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

local pairs_of = {}

function init(args)
    math.randomseed(os.time() + 7919 * (thread_no or 0))
    local file = os.getenv("PAIRS")
    if file then
        for line in io.lines(file) do
            local a, b = line:match("^(%d+) (%d+)$")
            if a then pairs_of[#pairs_of + 1] = { a, b } end
        end
    end
end

local function doc(n)
    return '{"user_id":"user_' .. n .. '","name":"Anjali Mueller","email":"meaghan' .. n
        .. '@example.net","tier":"pro","lifetime_value_cents":' .. math.random(0, 4999999) .. '}'
end

local function upsert(key, id, n)
    return '{"table":"users","shard_key":"' .. key .. '","id":"' .. id .. '","data":' .. doc(n) .. '}'
end

function request()
    local n = math.random(0, keys - 1)
    local key = { ["x-shard-key"] = "user_" .. n }
    if auth then
        key["authorization"] = "Bearer " .. auth
    end
    if kind == "noop" then
        return wrk.format("GET", "/api/health/live")
    elseif kind == "read" or kind == "cached" then
        return wrk.format("GET", "/api/read?table=users&id=rec_" .. n, key)
    elseif kind == "list" then
        return wrk.format("GET", "/api/read?table=users&limit=10", key)
    elseif kind == "fanout" then
        return wrk.format("GET", "/api/read?table=users&limit=10")
    elseif kind == "write" or kind == "keyed" then
        key["content-type"] = "application/json"
        if kind == "keyed" then
            sent = sent + 1
            key["idempotency-key"] = "cpu-" .. os.time() .. "-" .. (thread_no or 0) .. "-" .. sent
        end
        return wrk.format("POST", "/api/write", key,
            '{"table":"users","id":"rec_' .. n .. '","data":' .. doc(n) .. '}')
    elseif kind == "txn1" then
        key["content-type"] = "application/json"
        return wrk.format("POST", "/api/transaction", key, '{"operations":['
            .. upsert("user_" .. n, "rec_" .. n, n) .. ',' .. upsert("user_" .. n, "rec_" .. n .. "_b", n) .. ']}')
    elseif kind == "txn2" then
        local p = pairs_of[math.random(1, #pairs_of)]
        return wrk.format("POST", "/api/transaction", { ["content-type"] = "application/json" },
            '{"operations":[' .. upsert("user_" .. p[1], "rec_" .. p[1], p[1]) .. ','
            .. upsert("user_" .. p[2], "rec_" .. p[2], p[2]) .. ']}')
    elseif kind == "pair2" then
        local p = pairs_of[math.random(1, #pairs_of)]
        return wrk.format("POST", "/api/bulk-write", { ["content-type"] = "application/json" },
            '{"table":"users","records":[{"shard_key":"user_' .. p[1] .. '","id":"rec_' .. p[1] .. '","data":' .. doc(p[1]) .. '},'
            .. '{"shard_key":"user_' .. p[2] .. '","id":"rec_' .. p[2] .. '","data":' .. doc(p[2]) .. '}]}')
    elseif kind == "errors" then
        return wrk.format("GET", "/api/analytics/errors?limit=1", key)
    elseif kind == "bulk1" then
        key["content-type"] = "application/json"
        return wrk.format("POST", "/api/bulk-write", key,
            '{"table":"users","records":[{"id":"rec_' .. n .. '","data":' .. doc(n) .. '}]}')
    end
    error("unknown KIND " .. kind)
end
