-- Paces each wrk connection: one request every DELAY_MS milliseconds.
-- With C connections the offered load is about C * 1000 / DELAY_MS requests/s.
local delay_ms = tonumber(os.getenv("DELAY_MS") or "10")
function delay()
  return delay_ms
end
