-- GET /v1/bookings/{id}: PATHS[i] is a booking owned by the user of TOKENS[i].
function request()
  local i = next_index() % #PATHS + 1
  return wrk.format("GET", PATHS[i], {["Authorization"] = "Bearer " .. TOKENS[i]})
end
