// Shards started through run()'s own wiring: two shards on one Redis (a database each for
// their data, one for the ring record) create ONE record and hold disjoint halves of the
// catalog; a restarted shard follows the record and re-seeds nothing it gave away; a
// shard without Redis takes its members from INVENTORY_SHARDS.
package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/storetest"
	"polyshop/inventory-go/internal/testredis"
)

// startShard runs one shard and answers its base URL; stop ends it and waits.
func startShard(t *testing.T, vars map[string]string, logs io.Writer) (base string, stop func()) {
	t.Helper()
	base, _, stopRun := startRun(t, vars, time.Now, logs)
	return base, func() { _ = stopRun() } // an error fails the test at cleanup
}

func shardVars(opt *goredis.Options, id string, db int) map[string]string {
	return map[string]string{
		"INVENTORY_SHARD_ID": id, "INVENTORY_SHARDS": "inv-1, inv-0", "LOG_LEVEL": "warn",
		"REDIS_URL":    "redis://" + opt.Addr + "/" + strconv.Itoa(db),
		"REGISTRY_URL": "redis://" + opt.Addr + "/0",
	}
}

func dbClient(t *testing.T, opt *goredis.Options, db int) *goredis.Client {
	o := *opt
	o.DB = db
	c := goredis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// heldIDs lists the product records of one shard's database.
func heldIDs(t *testing.T, c *goredis.Client) map[int64]bool {
	t.Helper()
	const prefix = "polyshop:inventory:product:"
	keys, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]bool{}
	for _, k := range keys {
		id, err := strconv.ParseInt(strings.TrimPrefix(k, prefix), 10, 64)
		if err != nil {
			t.Fatalf("key %s", k)
		}
		out[id] = true
	}
	return out
}

func catalogIDs(t *testing.T) (inventory.Catalog, []int64) {
	t.Helper()
	c := storetest.RealCatalog(t)
	var ids []int64
	for _, p := range c.Products {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	return c, ids
}

func owned(r *ring.Ring, id string, ids []int64) map[int64]bool {
	out := map[int64]bool{}
	for _, p := range ids {
		if r.Owner(uint64(p)) == id {
			out[p] = true
		}
	}
	return out
}

func TestTwoShardsOneRegistry(t *testing.T) {
	opt := testredis.Start(t)
	_, ids := catalogIDs(t)
	bases := make([]string, 2)
	var wg sync.WaitGroup
	for i := range 2 { // started together: the record is still created once
		wg.Go(func() { bases[i], _ = startShard(t, shardVars(opt, "inv-"+strconv.Itoa(i), i+1), io.Discard) })
	}
	wg.Wait()

	registry := dbClient(t, opt, 0)
	ctx := context.Background()
	// The registry database holds the ring record and the registry, never stock.
	keys, err := registry.Keys(ctx, "*").Result()
	slices.Sort(keys)
	if want := []string{"polyshop:registry", "polyshop:registry:expiry", "polyshop:ring:inventory"}; err != nil || !slices.Equal(keys, want) {
		t.Fatalf("registry database holds %v %v, want %v", keys, err, want)
	}
	rec, _ := registry.HGetAll(ctx, "polyshop:ring:inventory").Result()
	if !maps.Equal(rec, map[string]string{"epoch": "1", "members": "inv-0,inv-1"}) {
		t.Fatalf("ring record %v", rec)
	}

	r := ring.New([]string{"inv-0", "inv-1"})
	union := map[int64]bool{}
	for i := range 2 {
		id := "inv-" + strconv.Itoa(i)
		held := heldIDs(t, dbClient(t, opt, i+1))
		if want := owned(r, id, ids); !maps.Equal(held, want) {
			t.Fatalf("%s holds %d products, the ring gives it %d", id, len(held), len(want))
		}
		for p := range held {
			if union[p] {
				t.Fatalf("product %d held by both shards", p)
			}
			union[p] = true
		}
		ready := call(t, "GET", bases[i]+"/ready", "")
		if ready.body["shard"] != id || ready.body["products_held"] != float64(len(held)) {
			t.Fatalf("%s /ready: %v", id, ready.body)
		}
		t.Logf("%s holds %d of %d products", id, len(held), len(ids))
	}
	if len(union) != len(ids) {
		t.Fatalf("the shards hold %d products together, the catalog has %d", len(union), len(ids))
	}

	// Each shard sends the other's products to it.
	for p := int64(1); p <= 20; p++ {
		owner := r.Owner(uint64(p))
		for i, base := range bases {
			a := call(t, "GET", base+"/api/inventory/"+strconv.FormatInt(p, 10), "")
			switch {
			case owner == "inv-"+strconv.Itoa(i) && a.status != 200:
				t.Fatalf("shard %d, its own product %d: %d %v", i, p, a.status, a.body)
			case owner != "inv-"+strconv.Itoa(i) && (a.status != 421 || a.owner != owner):
				t.Fatalf("shard %d, product %d of %s: %d X-Shard-Owner %q", i, p, owner, a.status, a.owner)
			}
		}
	}
}

// TestShardRestartFollowsTheRecord: after a rebalance added inv-2 and moved some of
// inv-0's products to it, a restarted inv-0 (with the old INVENTORY_SHARDS) takes the
// ring from the record, does not seed the moved products again, and sends them to inv-2.
func TestShardRestartFollowsTheRecord(t *testing.T) {
	opt := testredis.Start(t)
	_, ids := catalogIDs(t)
	_, stop := startShard(t, shardVars(opt, "inv-0", 1), io.Discard)
	stop()

	ctx := context.Background()
	data := dbClient(t, opt, 1)
	before := heldIDs(t, data)
	grown := ring.New([]string{"inv-0", "inv-1", "inv-2"})
	var moved []int64
	for p := range before {
		if grown.Owner(uint64(p)) == "inv-2" {
			moved = append(moved, p)
		}
	}
	if len(moved) == 0 {
		t.Fatal("the rebalance moves nothing: the test proves nothing")
	}
	// What a rebalance does at the old owner: delete the record, keep the counts true.
	for _, p := range moved {
		storetest.MoveAway(t, data, p)
	}
	registry := dbClient(t, opt, 0)
	if err := registry.HSet(ctx, "polyshop:ring:inventory", "epoch", 2, "members", "inv-0,inv-1,inv-2").Err(); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	base, _ := startShard(t, shardVars(opt, "inv-0", 1), logs)
	after := heldIDs(t, data)
	if want := owned(grown, "inv-0", ids); !maps.Equal(after, want) || len(after) != len(before)-len(moved) {
		t.Fatalf("after the restart inv-0 holds %d products, want the %d the grown ring gives it (%d before, %d moved)",
			len(after), len(want), len(before), len(moved))
	}
	a := call(t, "GET", base+"/api/inventory/"+strconv.FormatInt(moved[0], 10), "")
	if a.status != 421 || a.owner != "inv-2" {
		t.Fatalf("a moved product after the restart: %d X-Shard-Owner %q, want 421 inv-2", a.status, a.owner)
	}
	if ready := call(t, "GET", base+"/ready", ""); ready.body["products_held"] != float64(len(after)) {
		t.Fatalf("/ready %v, want %d held", ready.body, len(after))
	}
	if !strings.Contains(logs.String(), `"msg":"ring record differs from INVENTORY_SHARDS: the record decides"`) {
		t.Fatalf("no warning that the record overrides INVENTORY_SHARDS: %s", logs.String())
	}
}

// TestMemoryShard: no Redis, no record: the members are INVENTORY_SHARDS.
func TestMemoryShard(t *testing.T) {
	_, ids := catalogIDs(t)
	base, _ := startShard(t, map[string]string{"INVENTORY_SHARD_ID": "inv-1", "INVENTORY_SHARDS": "inv-0,inv-1,inv-2", "LOG_LEVEL": "warn"}, io.Discard)
	r := ring.New([]string{"inv-0", "inv-1", "inv-2"})
	ready := call(t, "GET", base+"/ready", "")
	if ready.body["shard"] != "inv-1" || ready.body["products_held"] != float64(len(owned(r, "inv-1", ids))) {
		t.Fatalf("/ready %v, want inv-1 holding %d", ready.body, len(owned(r, "inv-1", ids)))
	}
	held := fmt.Sprintf("\npolyshop_inventory_products_held{shard=\"inv-1\"} %d\n", len(owned(r, "inv-1", ids)))
	if m := get(t, base+"/metrics"); !strings.Contains(m, held) {
		t.Fatalf("/metrics lacks %q", held)
	}
	for p := int64(1); p <= 10; p++ {
		a := call(t, "GET", base+"/api/inventory/"+strconv.FormatInt(p, 10), "")
		if owner := r.Owner(uint64(p)); (owner == "inv-1") != (a.status == 200) || (owner != "inv-1" && a.owner != owner) {
			t.Fatalf("product %d of %s: %d X-Shard-Owner %q", p, owner, a.status, a.owner)
		}
	}
}

// TestShardRestartMidRebalance: a rebalance that hands products over before it changes
// the record leaves products the ring still gives inv-0 but that inv-0 no longer holds.
// A restart then must not seed them again from the catalog: their stock lives at the
// shard they went to, and a second copy would be sold twice.
func TestShardRestartMidRebalance(t *testing.T) {
	opt := testredis.Start(t)
	_, stop := startShard(t, shardVars(opt, "inv-0", 1), io.Discard)
	stop()
	data := dbClient(t, opt, 1)
	before := heldIDs(t, data)
	gone := slices.Sorted(maps.Keys(before))[:3]
	for _, p := range gone {
		storetest.MoveAway(t, data, p)
	}
	startShard(t, shardVars(opt, "inv-0", 1), io.Discard)
	after := heldIDs(t, data)
	for _, p := range gone {
		if after[p] {
			t.Fatalf("product %d, handed over, was seeded again by the restart", p)
		}
	}
	if len(after) != len(before)-len(gone) {
		t.Fatalf("inv-0 holds %d after the restart, want %d", len(after), len(before)-len(gone))
	}
}
