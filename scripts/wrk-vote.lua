-- wrk script of scripts/bench.sh: POSTs single votes to the URL it is
-- given (/v1/polls/ID/votes), each with a new voter id as pollcast bench
-- sends them, and counts the answers by status: only 202s are votes done.
--
--   wrk -t1 -c64 -d10s -s scripts/wrk-vote.lua http://HOST/v1/polls/ID/votes
--
-- It ends with one line, parsed by bench.sh:
--   wrk-votes: accepted=N other=N errors=N seconds=S ok_rps=R p50_ms=L p99_ms=L max_ms=L
-- (other: answers that were not 202; errors: connect, read, write and
-- timeout errors; latencies are of every request, in milliseconds).
--
-- wrk runs setup and done in its main Lua state and each thread in a Lua
-- state of its own: request and response count in the thread's state, and
-- done reads each thread's counts through the thread objects setup kept.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  accepted, other, sent = 0, 0, 0
  prefix = '{"options":["a"],"voter":"wrk-' .. tid .. "-" .. os.time() .. "-"
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  sent = sent + 1
  return wrk.format("POST", nil, headers, prefix .. sent .. '"}')
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do
    ok = ok + t:get("accepted")
    bad = bad + t:get("other")
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "wrk-votes: accepted=%d other=%d errors=%d seconds=%.3f ok_rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    ok, bad, e.connect + e.read + e.write + e.timeout, seconds, ok / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
