-- GET a JSON endpoint that touches no database (the framework's floor).
function request()
  return wrk.format("GET", PATH)
end
