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
//	product:<id>   hash  available reserved sold demand warehouse updated_ms [moving]
//	demand:<id>    zset  "<qty>:<reservation id>" scored by reserve time (ms), window only
//	holds:<id>     zset  the product's reservation ids scored by when their res key expires (ms)
//	res:<rid>      hash  pid qty state exp before dbefore fp idem (kept `retention` after it settles)
//	idem:<key>     string reservation id of an idempotency key (same lifetime as its hold)
//	expiry         zset  held reservation ids scored by expiry (ms)
//	warehouses     hash  "<wh>:available" "<wh>:reserved" "<wh>:products"
//	seeded         string set after a complete seed (absent: seed again)
//	shard          string the shard id whose data this database holds (absent: unsharded)
//	handoff:<id>   string the shard a rebalance handed product <id> to
//	handoff:res:<rid> string the shard a rebalance handed hold <rid> to (lives as long as the hold did)
//
// A rebalance (ring.md, Rebalance) fences a product by setting its `moving` field to the
// shard it goes to: from then on nothing changes the product or its holds here (writes
// answer product_moving, the sweeper passes them by), so the copy it takes stays true
// until the product and its holds are deleted here.
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

-- a fenced product is being moved by a rebalance: it must not change here any more.
local function fenced(pid)
  return redis.call('HEXISTS', P .. 'product:' .. pid, 'moving') == 1
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
  redis.call('ZADD', P .. 'holds:' .. pid, now + retention, rid)
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
-- Before the idempotency replay too: a replay may expire the hold it finds.
if fenced(pid) then return {'product_moving'} end
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
-- The product's holds, so a rebalance can move them with it; keys that have expired
-- are dropped from it here.
local hkey = P .. 'holds:' .. pid
redis.call('ZREMRANGEBYSCORE', hkey, '-inf', now)
redis.call('ZADD', hkey, exp + retention, rid)
local wh = redis.call('HGET', pkey, 'warehouse')
redis.call('HINCRBY', WH, wh .. ':available', -qty)
redis.call('HINCRBY', WH, wh .. ':reserved', qty)
event(rid .. ':reserved', 'reserved', pid, qty, now)
return hold_reply('reserved', rid)
`)

// transitionScript: ARGV reservation id, target state ('committed', 'released', or ”
// to only look), retention ms. It expires a hold past its TTL first, then moves a held
// hold to target. The reply's code says what this call did: 'moved', 'expired_now'
// or 'found' (nothing changed); its state field is the hold's state now. A hold whose
// product is fenced answers 'product_moving' to anything but a plain read.
var transitionScript = goredis.NewScript(prelude + `
local rid, target, retention = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = clock()
local rkey = P .. 'res:' .. rid
if redis.call('EXISTS', rkey) == 0 then return {'reservation_not_found'} end
-- A hold of a fenced product: a commit or release is a write, so is a lookup that
-- would expire it; a lookup that only reads is served.
local f = redis.call('HMGET', rkey, 'pid', 'state', 'exp')
if fenced(f[1]) then
  if target ~= '' or (f[2] == 'held' and now >= tonumber(f[3])) then return {'product_moving'} end
  return hold_reply('found', rid)
end
local code = 'found'
if expire_if_due(rid, now, retention) then code = 'expired_now' end
local r = redis.call('HMGET', rkey, 'state', 'pid', 'qty')
if r[1] == 'held' and target ~= '' then
  settle(rid, r[2], tonumber(r[3]), target, now, retention)
  code = 'moved'
end
return hold_reply(code, rid)
`)

// restockScript: ARGV product id, new free stock, demand window ms. Answers the item,
// {pid} when there is no such product, or {'product_moving'}.
var restockScript = goredis.NewScript(prelude + `
local pid, avail, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock()
local pkey = P .. 'product:' .. pid
local old = redis.call('HGET', pkey, 'available')
if not old then return {tonumber(pid)} end
if fenced(pid) then return {'product_moving'} end
local wh = redis.call('HGET', pkey, 'warehouse')
redis.call('HSET', pkey, 'available', avail, 'updated_ms', now)
redis.call('HINCRBY', WH, wh .. ':available', avail - tonumber(old))
event('restock:' .. pid .. ':' .. now, 'restocked', pid, avail, now)
return item_reply(pid, now, window)
`)

// sweepScript: ARGV limit, retention ms. The whole batch runs atomically on Redis's
// clock, so two sweepers (replicas) can never expire the same hold twice, whatever
// their own clocks say. Holds of a fenced product are passed by (they stay due and
// move with their product); they stay first in the expiry set, so the scan steps past
// them, up to 4 x limit entries a call.
var sweepScript = goredis.NewScript(prelude + `
local limit, retention = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock()
local n, skipped, seen = 0, 0, 0
while n < limit and seen < 4 * limit do
  local ids = redis.call('ZRANGEBYSCORE', EXP, '-inf', now, 'LIMIT', skipped, limit - n)
  if #ids == 0 then break end
  for _, rid in ipairs(ids) do
    seen = seen + 1
    local r = redis.call('HMGET', P .. 'res:' .. rid, 'state', 'pid', 'qty')
    if r[1] ~= 'held' then
      redis.call('ZREM', EXP, rid)
    elseif fenced(r[2]) then
      skipped = skipped + 1
    else
      settle(rid, r[2], tonumber(r[3]), 'expired', now, retention)
      n = n + 1
    end
  end
end
return n
`)

// The scripts of a rebalance (ring.md, Rebalance), run by inventoryctl on the shards'
// databases: fence at the old owner A, export there and import at the new owner B,
// finish at A. Each one is idempotent, so a rebalance that died anywhere can be run
// again and decide from the data what is left to do.

// prepareScript: KEYS seeded marker, shard key; ARGV shard id, role ('source': a member
// of the old ring, which must have completed its seed; 'target': a shard that only the
// new ring names, which is claimed and marked seeded so it never seeds what a rebalance
// brings it, nor what the ring gives it but nobody ever held). Answers {'ok'},
// {'other', shard}, {'unsharded'} or {'unseeded'}.
var prepareScript = goredis.NewScript(`
local owner = redis.call('GET', KEYS[2])
local seeded = redis.call('EXISTS', KEYS[1])
if owner and owner ~= ARGV[1] then return {'other', owner} end
if not owner and seeded == 1 then return {'unsharded'} end
if ARGV[2] == 'source' then
  if not owner or seeded == 0 then return {'unseeded'} end
  return {'ok'}
end
if not owner then redis.call('SET', KEYS[2], ARGV[1]) end
if seeded == 0 then redis.call('SET', KEYS[1], 0) end
return {'ok'}
`)

// indexScript: ARGV reservation ids. Adds holds made before holds:<pid> existed to it,
// scored by when their key expires; an indexed hold is left as it is.
var indexScript = goredis.NewScript(prelude + `
local n = 0
for _, rid in ipairs(ARGV) do
  local rkey = P .. 'res:' .. rid
  local pid = redis.call('HGET', rkey, 'pid')
  local expires = redis.call('PEXPIRETIME', rkey)
  if pid and expires > 0 then
    n = n + redis.call('ZADD', P .. 'holds:' .. pid, 'NX', expires, rid)
  end
end
return n
`)

// fenceScript: ARGV product id, the shard it moves to. Answers {'fenced'} (now or
// before, to the same shard), {'fenced_other', shard} or {'absent'}.
var fenceScript = goredis.NewScript(prelude + `
local pkey = P .. 'product:' .. ARGV[1]
if redis.call('EXISTS', pkey) == 0 then return {'absent'} end
local cur = redis.call('HGET', pkey, 'moving')
if cur and cur ~= ARGV[2] then return {'fenced_other', cur} end
redis.call('HSET', pkey, 'moving', ARGV[2])
return {'fenced'}
`)

// exportScript: ARGV product id. Reads a fenced product: its record, its demand window
// and every hold still on record (held or settled: a settled one still answers lookups
// and idempotency replays) with its key's expiry, its expiry-set score and its
// idempotency key. Answers {'parcel', json, holds, to} or {'absent'} / {'not_fenced'}.
// Every value is a string, so no number passes through cjson's 14-digit doubles.
var exportScript = goredis.NewScript(prelude + `
local pid = ARGV[1]
local pkey = P .. 'product:' .. pid
if redis.call('EXISTS', pkey) == 0 then return {'absent'} end
local to = redis.call('HGET', pkey, 'moving')
if not to then return {'not_fenced'} end
local f = redis.call('HMGET', pkey, 'available', 'reserved', 'sold', 'demand', 'warehouse', 'updated_ms')
local parcel = {pid = pid, to = to, available = f[1], reserved = f[2], sold = f[3],
  demand = f[4] or '0', warehouse = f[5], updated_ms = f[6],
  demand_log = redis.call('ZRANGE', P .. 'demand:' .. pid, 0, -1, 'WITHSCORES'), holds = {}}
for _, rid in ipairs(redis.call('ZRANGE', P .. 'holds:' .. pid, 0, -1)) do
  local rkey = P .. 'res:' .. rid
  local expires = redis.call('PEXPIRETIME', rkey)
  if expires > 0 then
    local h = {rid = rid, fields = redis.call('HGETALL', rkey), expires = tostring(expires),
      due = redis.call('ZSCORE', EXP, rid)}
    local idem = redis.call('HGET', rkey, 'idem')
    local ikey = P .. 'idem:' .. (idem or '')
    if idem and idem ~= '' and redis.call('GET', ikey) == rid and redis.call('PEXPIRETIME', ikey) > 0 then
      h.idem = idem
      h.idem_expires = tostring(redis.call('PEXPIRETIME', ikey))
    end
    parcel.holds[#parcel.holds + 1] = h
  end
end
return {'parcel', cjson.encode(parcel), #parcel.holds, to}
`)

// importScript: KEYS shard key; ARGV this shard's id, a parcel of exportScript. Creates
// the product and its holds as they were at the old owner, unfenced, and drops any
// handoff records of them here (the product came back). A product that is here already
// was imported before (the old owner is fenced: its data cannot have changed since) and
// is left alone. Answers {'imported', holds}, {'present'}, {'other', shard} when the
// database or the parcel is not this shard's, or {'bad_parcel', what}.
var importScript = goredis.NewScript(prelude + `
local parcel = cjson.decode(ARGV[2])
local owner = redis.call('GET', KEYS[1])
if owner ~= ARGV[1] then return {'other', owner or ''} end
if parcel.to ~= ARGV[1] then return {'other', parcel.to} end
local pid = parcel.pid
local pkey = P .. 'product:' .. pid
if redis.call('EXISTS', pkey) == 1 then return {'present'} end
-- Everything is checked before the first write: a script that fails halfway keeps what
-- it wrote, and a half-imported product would pass for an imported one.
local function int(v) return type(v) == 'string' and string.match(v, '^%d+$') ~= nil end
if not (int(parcel.available) and int(parcel.reserved) and int(parcel.sold) and int(parcel.demand)
    and int(parcel.updated_ms) and type(parcel.warehouse) == 'string') then
  return {'bad_parcel', 'product'}
end
for i = 2, #parcel.demand_log, 2 do
  if not tonumber(parcel.demand_log[i]) then return {'bad_parcel', 'demand'} end
end
for _, h in ipairs(parcel.holds) do
  if type(h.rid) ~= 'string' or not int(h.expires) or #h.fields < 2 or #h.fields % 2 ~= 0
      or (h.due and not tonumber(h.due)) or (h.idem and not int(h.idem_expires)) then
    return {'bad_parcel', 'hold'}
  end
end
redis.call('HSET', pkey, 'available', parcel.available, 'reserved', parcel.reserved,
  'sold', parcel.sold, 'demand', parcel.demand, 'warehouse', parcel.warehouse,
  'updated_ms', parcel.updated_ms)
local wh = parcel.warehouse
redis.call('HINCRBY', WH, wh .. ':available', parcel.available)
redis.call('HINCRBY', WH, wh .. ':reserved', parcel.reserved)
redis.call('HINCRBY', WH, wh .. ':products', 1)
local dkey = P .. 'demand:' .. pid
redis.call('DEL', dkey)
for i = 1, #parcel.demand_log, 2 do
  redis.call('ZADD', dkey, parcel.demand_log[i + 1], parcel.demand_log[i])
end
local hkey = P .. 'holds:' .. pid
redis.call('DEL', hkey)
for _, h in ipairs(parcel.holds) do
  local rkey = P .. 'res:' .. h.rid
  redis.call('DEL', rkey)
  redis.call('HSET', rkey, unpack(h.fields))
  redis.call('PEXPIREAT', rkey, h.expires)
  redis.call('ZADD', hkey, h.expires, h.rid)
  if h.due then redis.call('ZADD', EXP, h.due, h.rid) end
  if h.idem then redis.call('SET', P .. 'idem:' .. h.idem, h.rid, 'PXAT', h.idem_expires) end
  redis.call('DEL', P .. 'handoff:res:' .. h.rid)
end
redis.call('DEL', P .. 'handoff:' .. pid)
return {'imported', #parcel.holds}
`)

// finishScript: ARGV product id, the shard it moved to. At the old owner, once the new
// one has the product: deletes the product and its holds and leaves handoff records
// naming the new owner, the hold's one living as long as the hold would have here.
// Answers {'finished', holds}, {'done'} (finished before), {'absent'} (never here, or
// handed elsewhere) or {'not_fenced', moving}.
var finishScript = goredis.NewScript(prelude + `
local pid, to = ARGV[1], ARGV[2]
local pkey = P .. 'product:' .. pid
if redis.call('EXISTS', pkey) == 0 then
  if redis.call('GET', P .. 'handoff:' .. pid) == to then return {'done'} end
  return {'absent'}
end
local moving = redis.call('HGET', pkey, 'moving')
if moving ~= to then return {'not_fenced', moving or ''} end
local f = redis.call('HMGET', pkey, 'available', 'reserved', 'warehouse')
-- 0 - x, not -x: -0 would reach Redis as "-0", which HINCRBY refuses, and a script
-- that fails halfway keeps what it wrote.
redis.call('HINCRBY', WH, f[3] .. ':available', 0 - tonumber(f[1]))
redis.call('HINCRBY', WH, f[3] .. ':reserved', 0 - tonumber(f[2]))
redis.call('HINCRBY', WH, f[3] .. ':products', -1)
local hkey = P .. 'holds:' .. pid
local n = 0
for _, rid in ipairs(redis.call('ZRANGE', hkey, 0, -1)) do
  local rkey = P .. 'res:' .. rid
  local expires = redis.call('PEXPIRETIME', rkey)
  if expires > 0 then
    local idem = redis.call('HGET', rkey, 'idem')
    if idem and idem ~= '' and redis.call('GET', P .. 'idem:' .. idem) == rid then
      redis.call('DEL', P .. 'idem:' .. idem)
    end
    redis.call('DEL', rkey)
    redis.call('SET', P .. 'handoff:res:' .. rid, to, 'PXAT', expires)
    n = n + 1
  end
  redis.call('ZREM', EXP, rid)
end
redis.call('DEL', pkey, P .. 'demand:' .. pid, hkey)
redis.call('SET', P .. 'handoff:' .. pid, to)
return {'finished', n}
`)
