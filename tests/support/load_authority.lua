-- wrk script for bench/load_authority.py: the full issuance flow at maximum rate.
--
-- Each connection alternates between POST /api/generate and
-- POST /api/generate-certificate: a thread-local queue holds the session ids
-- the authority answered, and request() redeems one whenever the queue is not
-- empty. Every event is written (line-buffered) to a per-thread journal so the
-- Python side can check afterwards that nothing a client was told is lost:
--
--   G <session>             a session was answered (200)
--   S <session>             a session was sent for redemption
--   C <cert_id> <token>     a certificate was answered (201)
--   E <status> <body>       any other answer (body flattened to one line)
--
-- Arguments (after --): journal prefix, API key.

local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
end

local journal
local queue = {}
local head, tail = 1, 0
-- One commitment for every session (args[3]): the authority checks its form and binds it.
local generate_body

function init(args)
   local prefix = args[1]
   wrk.headers["Authorization"] = "Bearer " .. args[2]
   wrk.headers["Content-Type"] = "application/json"
   journal = assert(io.open(prefix .. "." .. tostring(wrk.thread:get("tid")), "w"))
   journal:setvbuf("line")
   generate_body = '{"compliance_standard":"soc2","seed_commitment":"' .. args[3] .. '"}'
end

function request()
   if head <= tail then
      local sid = queue[head]
      queue[head] = nil
      head = head + 1
      journal:write("S ", sid, "\n")
      return wrk.format("POST", "/api/generate-certificate", nil,
                        '{"generation_session_id":"' .. sid .. '"}')
   end
   return wrk.format("POST", "/api/generate", nil, generate_body)
end

function response(status, headers, body)
   if status == 200 then
      local sid = body:match('"generation_session_id":"([^"]+)"')
      if sid then
         journal:write("G ", sid, "\n")
         tail = tail + 1
         queue[tail] = sid
         return
      end
   elseif status == 201 then
      local cert_id = body:match('"cert_id":"([^"]+)"')
      local token = body:match('"token":"([^"]+)"')
      if cert_id and token then
         journal:write("C ", cert_id, " ", token, "\n")
         return
      end
   end
   journal:write("E ", tostring(status), " ", ((body or ""):gsub("[\r\n]", " ")), "\n")
end

function done(summary, latency, requests)
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
      '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
      '"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, summary.bytes, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
