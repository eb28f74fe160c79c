-- GET /v1/bookings?type=upcoming&limit=20, round robin over users with a few dozen upcoming bookings each.
function request()
  local i = next_index() % #TOKENS + 1
  return wrk.format("GET", PATH, {["Authorization"] = "Bearer " .. TOKENS[i]})
end
