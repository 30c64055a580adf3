-- The service registry of ring.md ("Registry (Redis)"): the one script every service runs.
-- Rust embeds this file (include_str!); Go and Python keep copies that tests hold
-- byte-equal to it. Every time decision uses Redis TIME, never an instance's clock.
--
-- KEYS[1] polyshop:registry         hash  {name}/{instance_id} -> the instance's JSON
-- KEYS[2] polyshop:registry:expiry  zset  the same field, scored by its expiry (Unix ms)
--
-- ARGV[1] = 'beat', ARGV[2] = field, ARGV[3] = JSON: register or refresh (the same write,
--   so an instance whose entry was pruned while Redis was away comes back by beating),
--   expiry = now + 6000 ms; prunes up to 100 expired fields. Answers the expiry.
-- ARGV[1] = 'drop', ARGV[2] = field: deregister. Answers 1 if the field was there.
-- ARGV[1] = 'list': the live entries (expiry > now): {now, json, json, ...}.
local TTL_MS = 6000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]

if op == 'beat' then
  local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)
  if #dead > 0 then
    redis.call('HDEL', KEYS[1], unpack(dead))
    redis.call('ZREM', KEYS[2], unpack(dead))
  end
  local expiry = now + TTL_MS
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[2], expiry, ARGV[2])
  return expiry
elseif op == 'drop' then
  local gone = redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return gone
elseif op == 'list' then
  local out = {now}
  local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
  if #live > 0 then
    local values = redis.call('HMGET', KEYS[1], unpack(live))
    for i = 1, #values do
      if values[i] then
        out[#out + 1] = values[i]
      end
    end
  end
  return out
end
return redis.error_reply('registry.lua: unknown op ' .. tostring(op))
