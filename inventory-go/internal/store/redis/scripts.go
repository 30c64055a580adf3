// This file owns the Lua scripts of the Redis store. Every stock change is ONE script
// so it is atomic: the product hash, the hold, the expiry sorted set, the warehouse
// totals and the inventory.events entry change together or not at all.
//
// One clock: every script reads Redis's own TIME. The replicas' clocks never enter a
// decision (hold expiry, the sweeper's cutoff, the demand window, retention,
// last_updated), so replicas with skewed clocks still expire each hold once, at the
// same instant, and the key lifetimes set with PEXPIREAT agree with the clock Redis
// expires keys by.
//
// Keys (all under polyshop:inventory:, plus the shared stream inventory.events):
//
//	product:<id>   hash  available reserved sold demand warehouse updated_ms
//	demand:<id>    zset  "<qty>:<reservation id>" scored by reserve time (ms), window only
//	res:<rid>      hash  pid qty state exp before dbefore fp idem (kept `retention` after it settles)
//	idem:<key>     string reservation id of an idempotency key (same lifetime as its hold)
//	expiry         zset  held reservation ids scored by expiry (ms)
//	warehouses     hash  "<wh>:available" "<wh>:reserved" "<wh>:products"
//	seeded         string set after a complete seed (absent: seed again)
//	shard          string the shard id whose data this database holds (absent: unsharded)
//
// Keys are derived inside the scripts, which is fine on a single Redis or with
// Sentinel; Redis Cluster would need hash tags and is out of scope (docs/ARCHITECTURE.md).
package redis

import goredis "github.com/redis/go-redis/v9"

const prelude = `
local P = 'polyshop:inventory:'
local STREAM = 'inventory.events'
local WH = P .. 'warehouses'
local EXP = P .. 'expiry'

-- Redis's clock in milliseconds: the only clock any decision uses.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function event(id, typ, pid, qty, now)
  redis.call('XADD', STREAM, 'MAXLEN', '~', 100000, '*',
    'event_id', id, 'type', typ, 'product_id', pid, 'quantity', qty, 'ts_ms', now)
end

-- drops reserved events that left the demand window and answers the units left in it;
-- the running sum lives in the product hash so reads stay O(1).
local function prune(pid, pkey, now, window)
  local dkey = P .. 'demand:' .. pid
  local cutoff = now - window
  local d = tonumber(redis.call('HGET', pkey, 'demand') or '0')
  local old = redis.call('ZRANGEBYSCORE', dkey, '-inf', cutoff)
  if #old > 0 then
    for i = 1, #old do d = d - tonumber(string.match(old[i], '^(%d+):')) end
    redis.call('ZREMRANGEBYSCORE', dkey, '-inf', cutoff)
    redis.call('HSET', pkey, 'demand', d)
  end
  return d
end

local function item_reply(pid, now, window)
  local pkey = P .. 'product:' .. pid
  if redis.call('EXISTS', pkey) == 0 then return {tonumber(pid)} end
  local d = prune(pid, pkey, now, window)
  local r = redis.call('HMGET', pkey, 'available', 'reserved', 'sold', 'warehouse', 'updated_ms')
  return {tonumber(pid), tonumber(r[1]), tonumber(r[2]), tonumber(r[3]), r[4], tonumber(r[5]), d}
end

local function hold_reply(code, rid)
  local r = redis.call('HMGET', P .. 'res:' .. rid, 'pid', 'qty', 'exp', 'before', 'dbefore', 'state')
  return {code, rid, tonumber(r[1]), tonumber(r[2]), tonumber(r[3]), tonumber(r[4]), tonumber(r[5]), r[6]}
end

-- moves a held hold to its final state exactly once: units go back to free stock
-- unless it was committed (sold). The hold and its idempotency key then live for
-- retention more, on Redis's clock.
local function settle(rid, pid, qty, state, now, retention)
  local pkey = P .. 'product:' .. pid
  local wh = redis.call('HGET', pkey, 'warehouse')
  redis.call('HINCRBY', pkey, 'reserved', -qty)
  redis.call('HINCRBY', WH, wh .. ':reserved', -qty)
  if state == 'committed' then
    redis.call('HINCRBY', pkey, 'sold', qty)
  else
    redis.call('HINCRBY', pkey, 'available', qty)
    redis.call('HINCRBY', WH, wh .. ':available', qty)
  end
  redis.call('HSET', pkey, 'updated_ms', now)
  local rkey = P .. 'res:' .. rid
  redis.call('HSET', rkey, 'state', state)
  redis.call('PEXPIREAT', rkey, now + retention)
  local idem = redis.call('HGET', rkey, 'idem')
  if idem and idem ~= '' then redis.call('PEXPIREAT', P .. 'idem:' .. idem, now + retention) end
  redis.call('ZREM', EXP, rid)
  event(rid .. ':' .. state, state, pid, qty, now)
end

-- expires a held hold whose TTL has passed (the sweeper may not have got to it yet)
-- and says whether it did.
local function expire_if_due(rid, now, retention)
  local r = redis.call('HMGET', P .. 'res:' .. rid, 'state', 'pid', 'qty', 'exp')
  if r[1] == 'held' and now >= tonumber(r[4]) then
    settle(rid, r[2], tonumber(r[3]), 'expired', now, retention)
    return true
  end
  return false
end
`

// claimScript: KEYS seeded marker, shard key; ARGV this shard's id (empty: unsharded).
// Answers {'ok', seeded (0/1)}, or {'other', shard} / {'unsharded'} when the database
// holds another inventory's data. A shard writes its id before its first seed, so a
// second shard started on the same database is refused even mid-seed.
var claimScript = goredis.NewScript(`
local owner = redis.call('GET', KEYS[2])
local seeded = redis.call('EXISTS', KEYS[1])
if owner and owner ~= ARGV[1] then return {'other', owner} end
if ARGV[1] ~= '' and not owner then
  if seeded == 1 then return {'unsharded'} end
  redis.call('SET', KEYS[2], ARGV[1])
end
return {'ok', seeded}
`)

// seedScript: ARGV (product id, stock, warehouse) triples. Creates only missing
// products, so a restart never resets stock and replicas may seed together.
var seedScript = goredis.NewScript(prelude + `
local now = clock()
local created = 0
for i = 1, #ARGV, 3 do
  local pid, stock, wh = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local pkey = P .. 'product:' .. pid
  if redis.call('EXISTS', pkey) == 0 then
    redis.call('HSET', pkey, 'available', stock, 'reserved', 0, 'sold', 0, 'demand', 0,
      'warehouse', wh, 'updated_ms', now)
    redis.call('HINCRBY', WH, wh .. ':available', stock)
    redis.call('HINCRBY', WH, wh .. ':reserved', 0)
    redis.call('HINCRBY', WH, wh .. ':products', 1)
    created = created + 1
  end
end
return created
`)

// getScript: ARGV demand window ms, then product ids. Writes only to prune the window.
var getScript = goredis.NewScript(prelude + `
local now, window = clock(), tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do out[#out + 1] = item_reply(ARGV[i], now, window) end
return out
`)

// reserveScript: ARGV product id, qty, ttl ms, new reservation id, idempotency key
// (empty: none), fingerprint, retention ms, demand window ms. A key whose hold is held or
// committed answers that hold (a replay); once it is released or expired it can sell
// nothing more, so the same key and body make a new hold (the caller's retry of a
// failed attempt) and the key moves to it. Never two live holds for one key.
var reserveScript = goredis.NewScript(prelude + `
local pid, qty, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local rid, idem, fp = ARGV[4], ARGV[5], ARGV[6]
local retention, window = tonumber(ARGV[7]), tonumber(ARGV[8])
local now = clock()
local ikey = P .. 'idem:' .. idem
if idem ~= '' then
  local prev = redis.call('GET', ikey)
  if prev then
    local f = redis.call('HGET', P .. 'res:' .. prev, 'fp')
    if f and f ~= fp then return {'idempotency_conflict'} end
    if f then
      expire_if_due(prev, now, retention)
      local st = redis.call('HGET', P .. 'res:' .. prev, 'state')
      if st == 'held' or st == 'committed' then return hold_reply('replayed', prev) end
    end
  end
end
local pkey = P .. 'product:' .. pid
local avail = redis.call('HGET', pkey, 'available')
if not avail then return {'product_not_found'} end
avail = tonumber(avail)
local demand = prune(pid, pkey, now, window)
if avail < qty then return {'insufficient_stock', avail} end
local rkey = P .. 'res:' .. rid
if redis.call('EXISTS', rkey) == 1 then return {'id_collision'} end
local exp = now + ttl
redis.call('HINCRBY', pkey, 'available', -qty)
redis.call('HINCRBY', pkey, 'reserved', qty)
redis.call('HSET', pkey, 'demand', demand + qty, 'updated_ms', now)
redis.call('ZADD', P .. 'demand:' .. pid, now, qty .. ':' .. rid)
redis.call('HSET', rkey, 'pid', pid, 'qty', qty, 'state', 'held', 'exp', exp,
  'before', avail, 'dbefore', demand, 'fp', fp, 'idem', idem)
redis.call('PEXPIREAT', rkey, exp + retention)
if idem ~= '' then redis.call('SET', ikey, rid, 'PXAT', exp + retention) end
redis.call('ZADD', EXP, exp, rid)
local wh = redis.call('HGET', pkey, 'warehouse')
redis.call('HINCRBY', WH, wh .. ':available', -qty)
redis.call('HINCRBY', WH, wh .. ':reserved', qty)
event(rid .. ':reserved', 'reserved', pid, qty, now)
return hold_reply('reserved', rid)
`)

// transitionScript: ARGV reservation id, target state ('committed', 'released', or ”
// to only look), retention ms. It expires a hold past its TTL first, then moves a held
// hold to target. The reply's code says what this call did: 'moved', 'expired_now'
// or 'found' (nothing changed); its state field is the hold's state now.
var transitionScript = goredis.NewScript(prelude + `
local rid, target, retention = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = clock()
local rkey = P .. 'res:' .. rid
if redis.call('EXISTS', rkey) == 0 then return {'reservation_not_found'} end
local code = 'found'
if expire_if_due(rid, now, retention) then code = 'expired_now' end
local r = redis.call('HMGET', rkey, 'state', 'pid', 'qty')
if r[1] == 'held' and target ~= '' then
  settle(rid, r[2], tonumber(r[3]), target, now, retention)
  code = 'moved'
end
return hold_reply(code, rid)
`)

// restockScript: ARGV product id, new free stock, demand window ms.
var restockScript = goredis.NewScript(prelude + `
local pid, avail, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock()
local pkey = P .. 'product:' .. pid
local old = redis.call('HGET', pkey, 'available')
if not old then return {tonumber(pid)} end
local wh = redis.call('HGET', pkey, 'warehouse')
redis.call('HSET', pkey, 'available', avail, 'updated_ms', now)
redis.call('HINCRBY', WH, wh .. ':available', avail - tonumber(old))
event('restock:' .. pid .. ':' .. now, 'restocked', pid, avail, now)
return item_reply(pid, now, window)
`)

// sweepScript: ARGV limit, retention ms. The whole batch runs atomically on Redis's
// clock, so two sweepers (replicas) can never expire the same hold twice, whatever
// their own clocks say.
var sweepScript = goredis.NewScript(prelude + `
local limit, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock()
local ids = redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', 0, limit)
local n = 0
for _, rid in ipairs(ids) do
  local r = redis.call('HMGET', P .. 'res:' .. rid, 'state', 'pid', 'qty')
  if r[1] == 'held' then
    settle(rid, r[2], tonumber(r[3]), 'expired', now, retention)
    n = n + 1
  else
    redis.call('ZREM', EXP, rid)
  end
end
return n
`)
