-- wrk script: the same JSON body POSTed to one path on every request.
--
--   BODY_FILE=query.json PATH_=/api/query wrk -t1 -c1 -d10s -s scripts/wrk-post.lua http://127.0.0.1:18080
--
-- wrk counts anything but 2xx/3xx under "Non-2xx or 3xx responses".

local f = assert(io.open(os.getenv("BODY_FILE"), "r"))
local body = f:read("*a")
f:close()
local path = os.getenv("PATH_") or "/api/query"

function request()
    return wrk.format("POST", path, {["content-type"] = "application/json"}, body)
end
