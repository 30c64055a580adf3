// Runs the shared store suite against a real redis-server, plus what only Redis has:
// seeding once across restarts, the inventory.events stream, NOSCRIPT recovery and
// an outage answered as ErrStoreUnavailable.
package redis_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/store/redis"
	"polyshop/inventory-go/internal/storetest"
	"polyshop/inventory-go/internal/testredis"
)

func newStore(t *testing.T, opt *goredis.Options, c inventory.Catalog, timing inventory.Timing) *redis.Store {
	t.Helper()
	s, err := redis.New(context.Background(), opt, c, timing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func flush(t *testing.T, opt *goredis.Options) {
	t.Helper()
	c := goredis.NewClient(opt)
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestStoreSuite(t *testing.T) {
	storetest.Run(t, storetest.Redis(testredis.Start(t)))
}

func TestShardSuite(t *testing.T) {
	storetest.RunShard(t, storetest.Redis(testredis.Start(t)))
}

func TestRestartKeepsStock(t *testing.T) {
	opt := testredis.Start(t)
	ctx := context.Background()
	s := newStore(t, opt, storetest.Catalog(), storetest.Timing)
	if _, _, err := s.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 30, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	// A second replica (or a restart) seeds again: existing products keep their stock,
	// new catalog products appear.
	c := storetest.Catalog()
	c.Products = append(c.Products, inventory.Product{ID: 4, Stock: 8, Warehouse: "WH-2"})
	s2 := newStore(t, opt, c, storetest.Timing)
	it, err := s2.Get(ctx, 1)
	if err != nil || it.Available != 70 || it.Reserved != 30 {
		t.Fatalf("after restart: %+v %v, want 70 available and 30 held", it, err)
	}
	if it, err := s2.Get(ctx, 4); err != nil || it.Available != 8 {
		t.Fatalf("new catalog product: %+v %v", it, err)
	}
	ws, _ := s2.Warehouses(ctx)
	if ws[0].Products != 2 || ws[1].Products != 2 || ws[0].Available != 70 {
		t.Fatalf("warehouse totals counted twice or missed: %+v", ws)
	}
}

func TestEventsStream(t *testing.T) {
	opt := testredis.Start(t)
	clock := testredis.NewClock(t, opt)
	ctx := context.Background()
	s := newStore(t, opt, storetest.Catalog(), storetest.Timing)
	r1, _, _ := s.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 2, TTL: time.Minute})
	r2, _, _ := s.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 3, TTL: time.Minute})
	r3, _, _ := s.Reserve(ctx, inventory.ReserveRequest{ProductID: 2, Quantity: 1, TTL: 50 * time.Millisecond})
	if _, err := s.Commit(ctx, r1.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Release(ctx, r2.ID); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Release(ctx, r2.ID) // a repeated release changes nothing: no event
	clock.AdvanceTo(r3.ExpiresAt)
	if n, err := inventory.Sweep(ctx, s); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	restocked, err := s.Restock(ctx, 3, 12)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewClient(opt)
	defer c.Close()
	msgs, err := c.XRange(ctx, "inventory.events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	restockMs := itoa(restocked.LastUpdated.UnixMilli())
	want := []map[string]any{
		{"event_id": r1.ID + ":reserved", "type": "reserved", "product_id": "1", "quantity": "2"},
		{"event_id": r2.ID + ":reserved", "type": "reserved", "product_id": "1", "quantity": "3"},
		{"event_id": r3.ID + ":reserved", "type": "reserved", "product_id": "2", "quantity": "1",
			"ts_ms": itoa(r3.ExpiresAt.Add(-50 * time.Millisecond).UnixMilli())},
		{"event_id": r1.ID + ":committed", "type": "committed", "product_id": "1", "quantity": "2"},
		{"event_id": r2.ID + ":released", "type": "released", "product_id": "1", "quantity": "3"},
		{"event_id": r3.ID + ":expired", "type": "expired", "product_id": "2", "quantity": "1"},
		{"event_id": "restock:3:" + restockMs, "type": "restocked", "product_id": "3", "quantity": "12", "ts_ms": restockMs},
	}
	if len(msgs) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(msgs), len(want), msgs)
	}
	for i, w := range want {
		for k, v := range w {
			if msgs[i].Values[k] != v {
				t.Errorf("event %d field %s = %v, want %v (event %+v)", i, k, msgs[i].Values[k], v, msgs[i].Values)
			}
		}
		if _, ok := msgs[i].Values["ts_ms"]; !ok {
			t.Errorf("event %d has no ts_ms", i)
		}
	}
	// The expiry happened on Redis's clock, at or after the hold's expiry.
	if ts, _ := strconv.ParseInt(msgs[5].Values["ts_ms"].(string), 10, 64); ts < r3.ExpiresAt.UnixMilli() {
		t.Errorf("expired event at %d, before the hold's expiry %d", ts, r3.ExpiresAt.UnixMilli())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestScriptFlushIsRecovered(t *testing.T) {
	opt := testredis.Start(t)
	ctx := context.Background()
	s := newStore(t, opt, storetest.Catalog(), storetest.Timing)
	c := goredis.NewClient(opt)
	defer c.Close()
	if err := c.ScriptFlush(ctx).Err(); err != nil { // what a Redis restart or failover does
		t.Fatal(err)
	}
	if _, _, err := s.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 1, TTL: time.Minute}); err != nil {
		t.Fatalf("reserve after SCRIPT FLUSH: %v (EVALSHA must fall back on NOSCRIPT)", err)
	}
}

func TestOutageIsStoreUnavailable(t *testing.T) {
	opt := testredis.Start(t)
	s := newStore(t, opt, storetest.Catalog(), storetest.Timing)
	c := goredis.NewClient(opt)
	_ = c.Shutdown(context.Background()).Err() // redis-server exits; the reply is lost with it
	_ = c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.Get(ctx, 1); !errors.Is(err, inventory.ErrStoreUnavailable) {
		t.Fatalf("Get with Redis down: %v, want ErrStoreUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, inventory.ErrStoreUnavailable) {
		t.Fatalf("Ping with Redis down: %v, want ErrStoreUnavailable", err)
	}
}

func TestDataLossIsReseeded(t *testing.T) {
	opt := testredis.Start(t)
	ctx := context.Background()
	s := newStore(t, opt, storetest.Catalog(), storetest.Timing)
	if again, err := s.EnsureSeeded(ctx); err != nil || again {
		t.Fatalf("EnsureSeeded on intact data: %v %v, want false", again, err)
	}
	if _, _, err := s.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 5, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	flush(t, opt) // Redis restarted without persistence
	if _, err := s.Get(ctx, 1); !errors.Is(err, inventory.ErrProductNotFound) {
		t.Fatalf("after data loss: %v", err)
	}
	if again, err := s.EnsureSeeded(ctx); err != nil || !again {
		t.Fatalf("EnsureSeeded after data loss: %v %v, want true", again, err)
	}
	if it, err := s.Get(ctx, 1); err != nil || it.Available != 100 {
		t.Fatalf("after reseed: %+v %v", it, err)
	}
}

func newShardStore(t *testing.T, opt *goredis.Options, owned inventory.Catalog, id string) (*redis.Store, error) {
	t.Helper()
	s, err := redis.NewShard(context.Background(), opt, owned, storetest.Timing, id)
	if err == nil {
		t.Cleanup(func() { _ = s.Close() })
	}
	return s, err
}

// shardWithoutFirst starts shard inv-a of storetest.Catalog() once and then moves its
// first product away, as a rebalance would.
func shardWithoutFirst(t *testing.T, opt *goredis.Options) inventory.Catalog {
	t.Helper()
	c := storetest.Catalog()
	if _, err := newShardStore(t, opt, c, "inv-a"); err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	defer rdb.Close()
	storetest.MoveAway(t, rdb, c.Products[0].ID)
	return c
}

// TestShardRestartDoesNotReseed: a product a rebalance moved away stays away across a
// restart (unsharded, the same restart would seed it again: TestRestartKeepsStock).
func TestShardRestartDoesNotReseed(t *testing.T) {
	opt := testredis.Start(t)
	ctx := context.Background()
	c := shardWithoutFirst(t, opt)
	s, err := newShardStore(t, opt, c, "inv-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, 1); !errors.Is(err, inventory.ErrProductNotFound) {
		t.Fatalf("product 1 after the restart: %v, want it still gone", err)
	}
	if n, err := s.Held(ctx); err != nil || n != 2 {
		t.Fatalf("Held = %d %v, want 2", n, err)
	}
	if again, err := s.EnsureSeeded(ctx); again || err != nil {
		t.Fatalf("EnsureSeeded with the marker present: %v %v", again, err)
	}
}

// TestShardSeedsAgainWhenTheSeedDidNotComplete: without the seeded marker (a start that
// died midway, or Redis lost its data) the shard seeds what it owns again.
func TestShardSeedsAgainWhenTheSeedDidNotComplete(t *testing.T) {
	opt := testredis.Start(t)
	ctx := context.Background()
	c := shardWithoutFirst(t, opt)
	rdb := goredis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Del(ctx, "polyshop:inventory:seeded").Err(); err != nil {
		t.Fatal(err)
	}
	s, err := newShardStore(t, opt, c, "inv-a")
	if err != nil {
		t.Fatal(err)
	}
	if it, err := s.Get(ctx, 1); err != nil || it.Available != 100 {
		t.Fatalf("product 1 after an incomplete seed: %+v %v", it, err)
	}
	flush(t, opt)
	if again, err := s.EnsureSeeded(ctx); !again || err != nil {
		t.Fatalf("EnsureSeeded after FLUSHALL: %v %v", again, err)
	}
	if n, err := s.Held(ctx); err != nil || n != 3 {
		t.Fatalf("Held after re-seed = %d %v", n, err)
	}
	if owner, err := rdb.Get(ctx, "polyshop:inventory:shard").Result(); err != nil || owner != "inv-a" {
		t.Fatalf("shard key after re-seed: %q %v", owner, err)
	}
}

// TestShardClaimsItsDatabase: two inventories on one database refuse to start rather
// than serve each other's products.
func TestShardClaimsItsDatabase(t *testing.T) {
	opt := testredis.Start(t)
	c := storetest.Catalog()
	if _, err := newShardStore(t, opt, c, "inv-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := newShardStore(t, opt, c, "inv-b"); !errors.Is(err, redis.ErrOtherData) {
		t.Fatalf("a second shard on inv-a's database: %v, want ErrOtherData", err)
	}
	if _, err := redis.New(context.Background(), opt, c, storetest.Timing); !errors.Is(err, redis.ErrOtherData) {
		t.Fatalf("an unsharded inventory on inv-a's database: %v, want ErrOtherData", err)
	}
	flush(t, opt)
	newStore(t, opt, c, storetest.Timing)
	if _, err := newShardStore(t, opt, c, "inv-a"); !errors.Is(err, redis.ErrOtherData) {
		t.Fatalf("a shard on an unsharded inventory's database: %v, want ErrOtherData", err)
	}
	if _, err := newShardStore(t, opt, c, ""); err == nil {
		t.Fatal("NewShard with no id")
	}
}
