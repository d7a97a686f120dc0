-- wrk script for the floor: the same server answering GET /healthz (no auth, no store).
function done(summary, latency, requests)
  io.write(string.format("RESULT accepted=%d other=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n", summary.requests,
                         summary.errors.status, summary.duration / 1e6, latency:percentile(50) / 1e3,
                         latency:percentile(99) / 1e3))
end
