-- wrk script for bench/serve/onnx.sh: Open Inference Protocol REST inference, one text per
-- request, cycling through real sentences.
--
--   wrk -t1 -c64 -d5s --latency -s bench/serve/infer.lua http://127.0.0.1:PORT -- TEXTS MODEL
--
-- Each wrk thread reads TEXTS (one sentence a line; blank lines skipped), builds one request per
-- sentence up front and cycles through them, starting at a different offset per thread:
--   POST /v2/models/MODEL/infer  Content-Type: application/json
--   {"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["<sentence>"]}]}
-- Galley and KServe get byte-identical requests.
--
-- done() prints one machine-readable line after wrk's own report (as bench/serve/post.lua):
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
  local path = args[1] or error("usage: -- TEXTS MODEL")
  local model = args[2] or error("usage: -- TEXTS MODEL")
  local target = "/v2/models/" .. model .. "/infer"
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(path) do
    if line:match("%S") then
      local body = '{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":[' ..
                   json_string(line) .. ']}]}'
      requests_[#requests_ + 1] = wrk.format("POST", target, headers, body)
    end
  end
  assert(#requests_ > 0, "no texts in " .. path)
  next_ = ((thread_index or 0) * 101) % #requests_ + 1
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
