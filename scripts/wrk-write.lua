-- wrk script: gateway single writes, the same upserts as `loadtest --scenario write`.
--
-- Key n (uniform over 0 .. KEYS-1) is shard key user_{n}, record users/rec_{n}: writes
-- replace the records the loadtest prefill made. The document is the ~330-byte user
-- profile scripts/bench/write.sql gives pgbench, so both sides store the same bytes.
--
--   KEYS=10000 wrk -t1 -c8 -d15s -s scripts/wrk-write.lua http://127.0.0.1:18080
--
-- wrk counts anything but 2xx/3xx under "Non-2xx or 3xx responses".

local keys = tonumber(os.getenv("KEYS") or "10000")
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

function init(args)
    math.randomseed(os.time() + 7919 * (thread_no or 0))
end

function request()
    local n = math.random(0, keys - 1)
    local body = '{"table":"users","id":"rec_' .. n .. '","data":{"user_id":"user_' .. n
        .. '","name":"Anjali Mueller","email":"meaghan' .. n .. '@example.net",'
        .. '"phone":"(180) 979-7444 x289","company":"Parisian Inc","address":{'
        .. '"street":"3719 Roob Hill","city":"Carter berg","state":"TX","zip":"'
        .. math.random(10000, 99999) .. '","country":"US"},"tier":"pro",'
        .. '"marketing_opt_in":' .. (math.random(0, 1) == 1 and "true" or "false")
        .. ',"lifetime_value_cents":' .. math.random(0, 4999999) .. '}}'
    return wrk.format("POST", "/api/write",
        { ["x-shard-key"] = "user_" .. n, ["content-type"] = "application/json" }, body)
end
