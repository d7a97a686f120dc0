-- wrk script: every request is a new submission (device d, task t, round 1), so each one is accepted
-- (201) rather than answered as a duplicate. Devices and tasks come from bench/server/devices.txt and
-- the BENCH_TASKS count; thread k uses its own slice of the devices.
local devices = {}
for line in io.lines(os.getenv("BENCH_DEVICES")) do devices[#devices + 1] = line end
local tasks = tonumber(os.getenv("BENCH_TASKS"))
local tau = tonumber(os.getenv("BENCH_TAU"))
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  per_thread = math.floor(#devices / next_id_count())
  first = id * per_thread
  i = 0
  accepted, other = 0, 0
  local c = {}
  for k = 1, tau do c[k] = string.format("%.6f", 0.001 * k) end
  body = '{"coeffs":[' .. table.concat(c, ",") .. '],"examples":4,"base_version":0,"loss":{"mean":0.69}}'
end

function next_id_count() return tonumber(os.getenv("BENCH_THREADS")) end

function request()
  local d = devices[first + (i % per_thread) + 1]
  local t = math.floor(i / per_thread) % tasks
  i = i + 1
  return wrk.format("POST", "/v1/tasks/b" .. t .. "/rounds/1/submissions",
                    {["Authorization"] = "Bearer " .. d, ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 201 then accepted = accepted + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("accepted")
    o = o + t:get("other")
  end
  io.write(string.format("RESULT accepted=%d other=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n", a, o,
                         summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3))
end
