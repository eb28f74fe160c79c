-- POST /v1/bookings: request index i books provider (i mod #PROVIDERS) for the 30-minute slot number
-- floor(i / #PROVIDERS) after BASE, so no two requests of a run (or of two runs, by the offset) overlap.
function request()
  local i = next_index()
  local start = BASE + math.floor(i / #PROVIDERS) * SLOT_SECONDS
  local body = string.format(
    '{"providerId": "%s", "startTime": "%s", "endTime": "%s"}',
    PROVIDERS[i % #PROVIDERS + 1], rfc3339(start), rfc3339(start + SLOT_SECONDS))
  local headers = {["Authorization"] = "Bearer " .. TOKENS[i % #TOKENS + 1], ["Content-Type"] = "application/json"}
  return wrk.format("POST", "/v1/bookings", headers, body)
end
