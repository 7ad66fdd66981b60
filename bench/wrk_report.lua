-- wrk's script for the benchmark: requests cycle through the paths given after `--` (a path given
-- three times is asked three times as often), and the run ends with one JSON line of totals.
local paths = {}
local sent = 0

function init(args)
  for _, path in ipairs(args) do
    paths[#paths + 1] = path
  end
  if #paths == 0 then
    paths[1] = wrk.path
  end
end

function request()
  sent = sent + 1
  return wrk.format(nil, paths[(sent % #paths) + 1])
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
    errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
