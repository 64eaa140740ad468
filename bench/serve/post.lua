-- wrk script for bench/serve/run.sh: POST /inference/analyze with real review sentences.
--
--   wrk -t2 -c64 -d10s --latency -s bench/serve/post.lua http://127.0.0.1:PORT -- bench/serve/texts.txt
--
-- Each wrk thread reads the texts file (one sentence a line; blank lines and lines starting with
-- '#' are skipped), builds one request per sentence up front and cycles through them, starting at
-- a different offset per thread. The same script drives nginx, which ignores the body.
--
-- done() prints one machine-readable line after wrk's own report:
--   RESULT requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N max_us=N errors=N
--          connect=N read=N write=N status=N timeout=N bytes=N
-- `status` is wrk's count of responses with a status >= 400; `errors` is the sum of all five.

local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

local function json_string(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == '\\' then return '\\\\' end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

local requests_ = {}
local next_ = 1

function init(args)
  local path = args[1] or "bench/serve/texts.txt"
  for line in io.lines(path) do
    if line:match("%S") and not line:match("^%s*#") then
      local body = '{"text":' .. json_string(line) .. '}'
      local headers = { ["Content-Type"] = "application/json" }
      requests_[#requests_ + 1] = wrk.format("POST", "/inference/analyze", headers, body)
    end
  end
  assert(#requests_ > 0, "no texts in " .. path)
  -- Spread the threads over the list so that they do not send the same sentence in lockstep.
  next_ = ((thread_index or 0) * 17) % #requests_ + 1
end

function request()
  local r = requests_[next_]
  next_ = next_ % #requests_ + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f " ..
    "errors=%d connect=%d read=%d write=%d status=%d timeout=%d bytes=%d\n",
    summary.requests, summary.duration, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    errors, e.connect, e.read, e.write, e.status, e.timeout, summary.bytes))
end
