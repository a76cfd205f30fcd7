-- Refresh token rotation under load: every answer carries the next refresh token, which the next request of the
-- next request spends. Env: BENCH_TOKENS (file of one refresh token per line, a few per connection), BENCH_AUTH.
local queue = {}
local auth = os.getenv("BENCH_AUTH")

function init(args)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if line ~= "" then table.insert(queue, line) end
  end
end

function request()
  local token = table.remove(queue, 1) or "exhausted"
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
  }, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then table.insert(queue, token) end
end
