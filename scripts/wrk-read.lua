-- wrk script: gateway point reads of the records the loadtest prefill wrote.
--
-- Key n (uniform over 0 .. KEYS-1) is shard key user_{n}; its record is users/rec_{n},
-- exactly what `loadtest --scenario read` requests. Run the loadtest once with the
-- same --keys first (its prefill writes the records), then for example:
--
--   KEYS=10000 wrk -t2 -c8 -d15s -s scripts/wrk-read.lua http://127.0.0.1:18080
--
-- wrk counts anything but 2xx/3xx under "Non-2xx or 3xx responses" (a 404 there means
-- the key space was not prefilled).

local keys = tonumber(os.getenv("KEYS") or "10000")
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("thread_no", threads)
end

function init(args)
    -- Each thread draws its own sequence.
    math.randomseed(os.time() + 7919 * (thread_no or 0))
end

function request()
    local n = math.random(0, keys - 1)
    return wrk.format("GET", "/api/read?table=users&id=rec_" .. n,
        { ["x-shard-key"] = "user_" .. n })
end
