-- Shared by every scenario. The runner puts the scenario's constants (NTHREADS, tokens, ids...) above this file
-- and the scenario's request() below it.

local threads = {}

-- Main state: give each thread an id so that request indexes never repeat across threads.
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- Thread state. args[1] is an index offset: every wrk invocation of a scenario gets its own range.
function init(args)
  offset = tonumber(args[1] or "0")
  sent = 0
  non2xx = 0
  statuses = {}
  first_error = nil
end

-- A request index unique across the threads of this invocation (and across invocations, by the offset).
function next_index()
  local i = offset + sent * NTHREADS + tid
  sent = sent + 1
  return i
end

-- A UTC time (Unix seconds) as the API takes it, e.g. 2030-05-01T07:00:00Z.
function rfc3339(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

-- Counts every status outside 2xx (wrk's own "errors.status" counts only >= 400).
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
    if first_error == nil then
      first_error = status .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

-- One machine-readable line for the runner; latencies in microseconds.
function done(summary, latency, requests)
  local total_non2xx = 0
  local codes = {}
  for _, t in ipairs(threads) do
    total_non2xx = total_non2xx + (t:get("non2xx") or 0)
    for code, count in pairs(t:get("statuses") or {}) do
      codes[code] = (codes[code] or 0) + count
    end
    local err = t:get("first_error")
    if err ~= nil then
      io.write("BENCH_ERROR " .. (string.gsub(err, "[\r\n]", " ")) .. "\n")
    end
  end
  local parts = {}
  for code, count in pairs(codes) do
    table.insert(parts, string.format('"%d": %d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "non2xx": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, total_non2xx, e.connect, e.read, e.write,
    e.status, e.timeout, table.concat(parts, ", ")))
end
