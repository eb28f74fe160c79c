-- POST /v1/bookings on offered slots: request index i books provider (i mod #PROVIDERS) for the slot
-- SLOTS[floor(i / #PROVIDERS) + 1] (Unix seconds of a start on the schedule's grid, the same grid for every
-- provider, each slot SLOT_SECONDS long), so no two requests of a run (or of two runs, by the offset) book the same
-- slot of the same provider. TOKENS round robin: with enough of them no user nears the create limit per minute.
function request()
  local i = next_index()
  local start = SLOTS[math.floor(i / #PROVIDERS) + 1]
  local body = string.format(
    '{"providerId": "%s", "startTime": "%s", "endTime": "%s"}',
    PROVIDERS[i % #PROVIDERS + 1], rfc3339(start), rfc3339(start + SLOT_SECONDS))
  local headers = {["Authorization"] = "Bearer " .. TOKENS[i % #TOKENS + 1], ["Content-Type"] = "application/json"}
  return wrk.format("POST", "/v1/bookings", headers, body)
end
