-- xff.lua: a wrk script that makes the requests come from many clients, as
-- far as a limiter that trusts wrk's address as a proxy can tell: each
-- thread t rotates X-Forwarded-For over 10.t.0.0 to 10.t.a.b, N addresses
-- (at most 65,536 per thread). With enough of them every client stays under
-- 2/s and 60/min and the limiter mostly admits.
--
--   wrk -t2 -c64 -d10s -s xff.lua http://127.0.0.1:18181/v1/people -- 65536
local threads = 0

function setup(thread)
   thread:set("tid", threads)
   threads = threads + 1
end

local clients, n, prefix = 65536, 0, "10.0."

function init(args)
   clients = math.min(tonumber(args[1]) or clients, 65536)
   prefix = "10." .. (tid or 0) .. "."
end

function request()
   n = n + 1
   if n >= clients then n = 0 end
   return wrk.format(nil, nil, { ["X-Forwarded-For"] = prefix .. math.floor(n / 256) .. "." .. (n % 256) })
end
