// Package redis is the Redis-backed inventory store (REDIS_URL set). Each operation is
// one Lua script from scripts.go run with EVALSHA (go-redis reloads it on NOSCRIPT),
// so replicas share stock safely and every change lands in inventory.events. The store
// has no clock of its own: the scripts read Redis's TIME.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
)

const (
	warehousesKey = "polyshop:inventory:warehouses"
	// seededKey is written after a complete seed; its absence means Redis lost its data
	// (a restart without persistence, a FLUSHALL) and the catalog must be seeded again.
	seededKey = "polyshop:inventory:seeded"
	// shardKey names the shard whose data this database holds (absent: unsharded), so
	// two shards given one database, or a shard and an unsharded inventory, refuse to
	// start instead of serving each other's products.
	shardKey = "polyshop:inventory:shard"
)

// Store is the Redis store.
type Store struct {
	rdb        *goredis.Client
	timing     inventory.Timing
	warehouses []string
	catalog    inventory.Catalog
	shard      string // "" = unsharded
}

// New connects and seeds the products of the catalog that Redis does not have yet;
// zero timing fields take inventory.DefaultTiming.
func New(ctx context.Context, opt *goredis.Options, c inventory.Catalog, timing inventory.Timing) (*Store, error) {
	return open(ctx, opt, c, timing, "")
}

// NewShard connects the store of shard id and seeds owned (the products the ring gives
// it) only when the database is new: a product is held iff its record exists, so after
// a rebalance moved one away a restart must not create it again. Products added to the
// catalog later are not seeded here either; a rebalance (or an operator) brings them.
func NewShard(ctx context.Context, opt *goredis.Options, owned inventory.Catalog, timing inventory.Timing, id string) (*Store, error) {
	if id == "" {
		return nil, fmt.Errorf("redis: NewShard needs a shard id")
	}
	return open(ctx, opt, owned, timing, id)
}

func open(ctx context.Context, opt *goredis.Options, c inventory.Catalog, timing inventory.Timing, shard string) (*Store, error) {
	o := *opt
	// Retries are off: a write script whose reply was lost must not run twice (a
	// second hold would be created); the caller gets a 503 and the gateway decides.
	o.MaxRetries = -1
	o.ContextTimeoutEnabled = true
	o.DialTimeout = time.Second
	s := &Store{rdb: goredis.NewClient(&o), timing: timing.OrDefault(), catalog: c, shard: shard}
	for _, w := range c.Warehouses {
		s.warehouses = append(s.warehouses, w.ID)
	}
	if err := s.start(ctx); err != nil {
		_ = s.rdb.Close()
		return nil, err
	}
	return s, nil
}

// ErrOtherData: the database holds another shard's data, or an unsharded inventory's.
var ErrOtherData = errors.New("the Redis database holds another inventory's data")

// start claims the database for this shard and seeds it. Unsharded, it seeds every
// missing product, as before sharding. A shard seeds only a database it has not
// completed a seed in (no seeded marker): its first start, a start after one that
// failed midway, or after Redis lost its data.
func (s *Store) start(ctx context.Context) error {
	v, err := claimScript.Run(ctx, s.rdb, []string{seededKey, shardKey}, s.shard).Slice()
	if err != nil {
		return s.fail(ctx, fmt.Errorf("claim: %w", err))
	}
	switch code, _ := v[0].(string); code {
	case "ok":
		if seeded, _ := v[1].(int64); s.shard != "" && seeded == 1 {
			return nil
		}
		return s.seed(ctx, s.catalog)
	case "other":
		owner, _ := v[1].(string)
		return fmt.Errorf("%w: it is shard %q's (%s), not %s: give each shard its own database",
			ErrOtherData, owner, shardKey, describe(s.shard))
	case "unsharded":
		return fmt.Errorf("%w: it is an unsharded inventory's (%s is set, %s is not), not shard %q's: give each shard its own database",
			ErrOtherData, seededKey, shardKey, s.shard)
	default:
		return s.fail(ctx, fmt.Errorf("claim: unexpected reply %v", v))
	}
}

func describe(shard string) string {
	if shard == "" {
		return "an unsharded inventory's"
	}
	return fmt.Sprintf("shard %q's", shard)
}

// seedBatchTimeout bounds each batch, not the whole seed: a 10^6-product catalog takes
// about a minute to seed, and a deadline on the total made such a start fail for ever.
const seedBatchTimeout = 5 * time.Second

// seed runs in batches so no single script blocks Redis for long.
func (s *Store) seed(ctx context.Context, c inventory.Catalog) error {
	const batch = 500
	for i := 0; i < len(c.Products); i += batch {
		end := min(i+batch, len(c.Products))
		args := make([]any, 0, 3*(end-i))
		for _, p := range c.Products[i:end] {
			args = append(args, p.ID, p.Stock, p.Warehouse)
		}
		bctx, cancel := context.WithTimeout(ctx, seedBatchTimeout)
		err := seedScript.Run(bctx, s.rdb, nil, args...).Err()
		cancel()
		if err != nil {
			return s.fail(ctx, fmt.Errorf("seed: %w", err))
		}
	}
	if err := s.rdb.Set(ctx, seededKey, len(c.Products), 0).Err(); err != nil {
		return s.fail(ctx, fmt.Errorf("seed: %w", err))
	}
	return nil
}

// EnsureSeeded seeds the catalog again when Redis lost its data, and says whether it
// did. Without it every product would answer 404 until the service restarted.
func (s *Store) EnsureSeeded(ctx context.Context) (bool, error) {
	n, err := s.rdb.Exists(ctx, seededKey).Result()
	if err != nil {
		return false, s.fail(ctx, err)
	}
	if n == 1 {
		return false, nil
	}
	return true, s.start(ctx)
}

// fail turns a Redis error into the context error when the caller's deadline or
// cancellation caused it, else into ErrStoreUnavailable (the cause stays wrapped for logs).
func (s *Store) fail(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("%w: %w", inventory.ErrStoreUnavailable, err)
}

func (s *Store) Get(ctx context.Context, productID int64) (inventory.Item, error) {
	items, missing, err := s.GetMany(ctx, []int64{productID})
	if err != nil {
		return inventory.Item{}, err
	}
	if len(missing) > 0 {
		return inventory.Item{}, inventory.ErrProductNotFound
	}
	return items[0], nil
}

func (s *Store) GetMany(ctx context.Context, ids []int64) ([]inventory.Item, []int64, error) {
	args := make([]any, 0, len(ids)+1)
	args = append(args, s.timing.DemandWindow.Milliseconds())
	for _, id := range ids {
		args = append(args, id)
	}
	v, err := getScript.Run(ctx, s.rdb, nil, args...).Slice()
	if err != nil {
		return nil, nil, s.fail(ctx, err)
	}
	items := make([]inventory.Item, 0, len(v))
	missing := []int64{}
	for i, row := range v {
		r, _ := row.([]any)
		if len(r) < 7 {
			missing = append(missing, ids[i])
			continue
		}
		it, err := parseItem(r)
		if err != nil {
			return nil, nil, s.fail(ctx, err)
		}
		items = append(items, it)
	}
	return items, missing, nil
}

func parseItem(r []any) (inventory.Item, error) {
	var it inventory.Item
	var updated int64
	var ok [6]bool
	it.ProductID, ok[0] = r[0].(int64)
	it.Available, ok[1] = r[1].(int64)
	it.Reserved, ok[2] = r[2].(int64)
	it.Sold, ok[3] = r[3].(int64)
	it.Warehouse, ok[4] = r[4].(string)
	updated, ok[5] = r[5].(int64)
	it.RecentDemand, _ = r[6].(int64)
	for _, good := range ok {
		if !good {
			return inventory.Item{}, fmt.Errorf("unexpected item reply %v", r)
		}
	}
	it.LastUpdated = time.UnixMilli(updated).UTC()
	return it, nil
}

// parseHold reads a hold_reply: code, rid, pid, qty, exp, before, dbefore, state.
func parseHold(r []any) (inventory.Reservation, error) {
	if len(r) < 8 {
		return inventory.Reservation{}, fmt.Errorf("unexpected hold reply %v", r)
	}
	var res inventory.Reservation
	var exp int64
	var ok [7]bool
	res.ID, ok[0] = r[1].(string)
	res.ProductID, ok[1] = r[2].(int64)
	res.Quantity, ok[2] = r[3].(int64)
	exp, ok[3] = r[4].(int64)
	res.AvailableBefore, ok[4] = r[5].(int64)
	res.RecentDemandBefore, ok[5] = r[6].(int64)
	res.State, ok[6] = r[7].(string)
	for _, good := range ok {
		if !good {
			return inventory.Reservation{}, fmt.Errorf("unexpected hold reply %v", r)
		}
	}
	res.ExpiresAt = time.UnixMilli(exp).UTC()
	return res, nil
}

func (s *Store) run(ctx context.Context, script *goredis.Script, args ...any) ([]any, string, error) {
	v, err := script.Run(ctx, s.rdb, nil, args...).Slice()
	if err != nil {
		return nil, "", s.fail(ctx, err)
	}
	code, _ := v[0].(string)
	return v, code, nil
}

func (s *Store) Warehouses(ctx context.Context) ([]inventory.WarehouseStock, error) {
	m, err := s.rdb.HGetAll(ctx, warehousesKey).Result()
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := make([]inventory.WarehouseStock, 0, len(s.warehouses))
	for _, id := range s.warehouses {
		w := inventory.WarehouseStock{ID: id}
		w.Products, _ = strconv.ParseInt(m[id+":products"], 10, 64)
		w.Available, _ = strconv.ParseInt(m[id+":available"], 10, 64)
		w.Reserved, _ = strconv.ParseInt(m[id+":reserved"], 10, 64)
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Held sums the warehouses' product counts, which the seed (and any script that creates
// or deletes a product record) keeps equal to the product records.
func (s *Store) Held(ctx context.Context) (int64, error) {
	vals, err := s.rdb.HGetAll(ctx, warehousesKey).Result()
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	var n int64
	for field, v := range vals {
		if strings.HasSuffix(field, ":products") {
			c, _ := strconv.ParseInt(v, 10, 64)
			n += c
		}
	}
	return n, nil
}

func (s *Store) Reserve(ctx context.Context, req inventory.ReserveRequest) (inventory.Reservation, bool, error) {
	for {
		v, code, err := s.run(ctx, reserveScript, req.ProductID, req.Quantity, req.TTL.Milliseconds(),
			inventory.NewReservationIDFor(req.ProductID), req.IdempotencyKey, req.Fingerprint,
			s.timing.Retention.Milliseconds(), s.timing.DemandWindow.Milliseconds())
		if err != nil {
			return inventory.Reservation{}, false, err
		}
		switch code {
		case "reserved", "replayed":
			res, err := parseHold(v)
			if err != nil {
				return inventory.Reservation{}, false, s.fail(ctx, err)
			}
			return res, code == "replayed", nil
		case "idempotency_conflict":
			return inventory.Reservation{}, false, inventory.ErrIdempotencyConflict
		case "product_not_found":
			return inventory.Reservation{}, false, inventory.ErrProductNotFound
		case "product_moving":
			return inventory.Reservation{}, false, inventory.ErrProductMoving
		case "insufficient_stock":
			avail, _ := v[1].(int64)
			return inventory.Reservation{}, false, &inventory.InsufficientStockError{ProductID: req.ProductID, Available: avail}
		case "id_collision":
			continue
		default:
			return inventory.Reservation{}, false, s.fail(ctx, fmt.Errorf("reserve: unexpected reply %v", v))
		}
	}
}

func (s *Store) Commit(ctx context.Context, id string) (inventory.Settlement, error) {
	return s.transition(ctx, id, inventory.StateCommitted)
}

func (s *Store) Release(ctx context.Context, id string) (inventory.Settlement, error) {
	return s.transition(ctx, id, inventory.StateReleased)
}

func (s *Store) Lookup(ctx context.Context, id string) (inventory.Settlement, error) {
	return s.transition(ctx, id, "")
}

func (s *Store) transition(ctx context.Context, id, target string) (inventory.Settlement, error) {
	v, code, err := s.run(ctx, transitionScript, id, target, s.timing.Retention.Milliseconds())
	if err != nil {
		return inventory.Settlement{}, err
	}
	switch code {
	case "reservation_not_found":
		return inventory.Settlement{}, inventory.ErrReservationNotFound
	case "product_moving":
		return inventory.Settlement{}, inventory.ErrProductMoving
	}
	res, err := parseHold(v)
	if err != nil {
		return inventory.Settlement{}, s.fail(ctx, err)
	}
	st := inventory.Settlement{Reservation: res, ExpiredNow: code == "expired_now"}
	switch code {
	case "moved":
		return st, nil
	case "found", "expired_now":
		st.Repeated = target != "" && res.State == target
		return st, inventory.TransitionError(target, res.State)
	}
	return inventory.Settlement{}, s.fail(ctx, fmt.Errorf("%s: unexpected reply %v", target, v))
}

func (s *Store) Restock(ctx context.Context, productID, available int64) (inventory.Item, error) {
	v, err := restockScript.Run(ctx, s.rdb, nil, productID, available, s.timing.DemandWindow.Milliseconds()).Slice()
	if err != nil {
		return inventory.Item{}, s.fail(ctx, err)
	}
	if code, _ := v[0].(string); code == "product_moving" {
		return inventory.Item{}, inventory.ErrProductMoving
	}
	if len(v) < 7 {
		return inventory.Item{}, inventory.ErrProductNotFound
	}
	it, err := parseItem(v)
	if err != nil {
		return inventory.Item{}, s.fail(ctx, err)
	}
	return it, nil
}

func (s *Store) SweepExpired(ctx context.Context, limit int) (int, error) {
	n, err := sweepScript.Run(ctx, s.rdb, nil, limit, s.timing.Retention.Milliseconds()).Int()
	if err != nil {
		return 0, s.fail(ctx, err)
	}
	return n, nil
}

func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return s.fail(ctx, err)
	}
	return nil
}

func (s *Store) Close() error { return s.rdb.Close() }

// RouteClientLogs sends go-redis's own messages (dial failures, pool trouble) to l as
// JSON lines instead of its default plain-text stderr logger. It is process-global.
func RouteClientLogs(l *slog.Logger) { goredis.SetLogger(clientLogger{l}) }

type clientLogger struct{ l *slog.Logger }

func (c clientLogger) Printf(ctx context.Context, format string, v ...any) {
	c.l.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
