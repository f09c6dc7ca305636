-- wrk script for bench/harness.py: one endpoint per run, a JSON summary on the last line.
--
-- Environment (set by harness.py from a Target):
--   BENCH_METHOD   GET (default) or POST
--   BENCH_BODY     the JSON body of a POST
--   BENCH_API_KEYS API keys sent as X-API-Key, comma-separated: one organization each,
--                  taken in turn request by request
--   BENCH_IDEMPOTENCY_HEADER  when set, every request carries this header with a
--                  fresh value (run, thread, counter), like a bot that retries safely
--   BENCH_BATCH_EVENTS  when set (n > 0), the body is a usage batch of n message events,
--                  each with a fresh idempotency key (run, thread, counter, index)
--   BENCH_PATHS    when set, request paths (comma-separated) taken in turn, each thread
--                  starting at its own offset (a conversation's messages path each)
--   BENCH_BODIES_FILE  when set, a file of JSON bodies, one a line, taken in turn

local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
local idempotency_header = os.getenv("BENCH_IDEMPOTENCY_HEADER") or ""
local batch_events = tonumber(os.getenv("BENCH_BATCH_EVENTS") or "0") or 0
local api_keys = {}
for key in string.gmatch(os.getenv("BENCH_API_KEYS") or "", "[^,]+") do
  table.insert(api_keys, key)
end
local paths = {}
for path in string.gmatch(os.getenv("BENCH_PATHS") or "", "[^,]+") do
  table.insert(paths, path)
end
local bodies = {}
local bodies_file = os.getenv("BENCH_BODIES_FILE") or ""
if bodies_file ~= "" then
  for line in io.lines(bodies_file) do
    if line ~= "" then
      table.insert(bodies, line)
    end
  end
  wrk.headers["Content-Type"] = "application/json"
end

wrk.method = method
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
if #api_keys > 0 then
  wrk.headers["X-API-Key"] = api_keys[1]
end

local thread_counter = 0

function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("thread_id", thread_counter)
end

local sequence = 0
local run_id = tostring(os.time())

local function batch_body(prefix)
  local events = {}
  for i = 1, batch_events do
    events[i] = '{"kind":"message","idempotency_key":"' .. prefix .. "-" .. i .. '"}'
  end
  return '{"events":[' .. table.concat(events, ",") .. "]}"
end

if batch_events > 0 then
  wrk.headers["Content-Type"] = "application/json"
end

if idempotency_header ~= "" or #api_keys > 1 or batch_events > 0 or #paths > 0
    or #bodies > 0 then
  request = function()
    sequence = sequence + 1
    -- threads start far apart (golden-ratio offsets), so they rarely take the same path
    -- at the same moment
    local turn = sequence + math.floor((thread_id or 0) * 0.618 * math.max(#paths, 1))
    local unique = run_id .. "-" .. tostring(thread_id) .. "-" .. tostring(sequence)
    local headers = {}
    for name, value in pairs(wrk.headers) do
      headers[name] = value
    end
    if #api_keys > 1 then
      headers["X-API-Key"] = api_keys[sequence % #api_keys + 1]
    end
    if idempotency_header ~= "" then
      headers[idempotency_header] = unique
    end
    local path = nil
    if #paths > 0 then
      path = paths[turn % #paths + 1]
    end
    if batch_events > 0 then
      return wrk.format(nil, path, headers, batch_body(unique))
    end
    if #bodies > 0 then
      return wrk.format(nil, path, headers, bodies[turn % #bodies + 1])
    end
    return wrk.format(nil, path, headers, nil)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"non_2xx":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
