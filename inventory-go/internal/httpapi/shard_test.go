// Tests of a shard's HTTP surface: a product of the catalog that the shard does not
// hold is 421 misdirected_request naming the owner in X-Shard-Owner, on every
// per-product route and on both stores; /health and /ready say the shard and its count.
package httpapi

import (
	"fmt"
	"testing"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/ring"
)

// newShardEnv is shard inv-0 of inv-0..2 over the seed catalog: its store is seeded
// with what it owns and wrapped as run() wraps it.
func newShardEnv(t *testing.T, b backend) (*env, *ring.Ring, []int64, []int64) {
	t.Helper()
	r := ring.New([]string{"inv-0", "inv-1", "inv-2"})
	c := seedCatalog(t)
	shard := inventory.NewShard("inv-0", r, c)
	cfg := testConfig()
	cfg.ShardID, cfg.Shards = "inv-0", r.Names()
	clock := b.Clock(t)
	store := shard.Serve(b.New(t, shard.Owned(c), inventory.DefaultTiming, clock))
	logs := &syncBuffer{}
	srv := New(Deps{Store: store, Warehouses: c.Warehouses, Config: cfg, Logger: NewLogger(logs, cfg.LogLevel)})
	var mine, theirs []int64
	for _, p := range c.Products {
		if r.Owner(uint64(p.ID)) == "inv-0" {
			mine = append(mine, p.ID)
		} else {
			theirs = append(theirs, p.ID)
		}
	}
	return &env{srv: srv, store: store, clock: clock, logs: logs}, r, mine, theirs
}

func wantMisdirected(t *testing.T, r response, owner string) {
	t.Helper()
	wantError(t, r, 421, "misdirected_request")
	if got := r.header.Get("X-Shard-Owner"); got != owner {
		t.Fatalf("X-Shard-Owner = %q, want %q", got, owner)
	}
	if r.header.Get("Retry-After") != "" {
		t.Fatalf("a 421 is not retried later but elsewhere: Retry-After %q", r.header.Get("Retry-After"))
	}
}

func TestShardRoutes(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e, r, mine, theirs := newShardEnv(t, b)
			own, other, other2 := mine[0], theirs[0], theirs[1]
			owner := r.Owner(uint64(other))
			if owner == "inv-0" || owner == "" {
				t.Fatalf("product %d is owned by %q", other, owner)
			}

			if res := e.do(t, "GET", fmt.Sprintf("/api/inventory/%d", own), ""); res.status != 200 {
				t.Fatalf("GET of its own product: %d %s", res.status, res.raw)
			}
			res := e.do(t, "GET", fmt.Sprintf("/api/inventory/%d", other), "")
			wantMisdirected(t, res, owner)
			msg := res.body["error"].(map[string]any)["message"]
			if want := fmt.Sprintf("product %d is held by shard %s", other, owner); msg != want {
				t.Fatalf("message %q, want %q", msg, want)
			}
			res = e.do(t, "GET", "/api/inventory/5000", "")
			wantError(t, res, 404, "product_not_found")
			if res.header.Get("X-Shard-Owner") != "" {
				t.Fatal("X-Shard-Owner on a product outside the catalog")
			}

			wantMisdirected(t, e.do(t, "POST", "/api/reservations",
				fmt.Sprintf(`{"product_id":%d,"quantity":1}`, other)), owner)
			wantMisdirected(t, e.do(t, "PUT", fmt.Sprintf("/api/inventory/%d", other), `{"available":5}`,
				"Authorization", "Bearer "+adminToken), owner)

			// A batch answers for its own ids and the unknown ones; one id held elsewhere
			// makes it a 421 naming the first such id's owner.
			res = e.do(t, "POST", "/api/inventory/batch", fmt.Sprintf(`{"ids":[%d,5000]}`, own))
			if res.status != 200 || len(res.body["items"].([]any)) != 1 || len(res.body["not_found"].([]any)) != 1 {
				t.Fatalf("batch of its own and an unknown id: %d %s", res.status, res.raw)
			}
			wantMisdirected(t, e.do(t, "POST", "/api/inventory/batch",
				fmt.Sprintf(`{"ids":[%d,%d,5000,%d]}`, own, other, other2)), owner)

			// Holds made here are settled here, by id.
			res = e.do(t, "POST", "/api/reservations", fmt.Sprintf(`{"product_id":%d,"quantity":1}`, own))
			if res.status != 201 {
				t.Fatalf("reserve its own product: %d %s", res.status, res.raw)
			}
			if res := e.do(t, "POST", "/api/reservations/"+res.body["reservation_id"].(string)+"/commit", ""); res.status != 200 {
				t.Fatalf("commit: %d %s", res.status, res.raw)
			}

			health := e.do(t, "GET", "/health", "")
			if health.status != 200 || health.body["shard"] != "inv-0" || health.body["status"] != "ok" {
				t.Fatalf("/health: %s", health.raw)
			}
			ready := e.do(t, "GET", "/ready", "")
			if ready.status != 200 || ready.body["shard"] != "inv-0" || num(t, ready.body["products_held"]) != int64(len(mine)) {
				t.Fatalf("/ready: %s, want shard inv-0 holding %d", ready.raw, len(mine))
			}
		})
	}
}

// TestUnshardedSurface: no shard id, every product, shard null as the registry writes it.
func TestUnshardedSurface(t *testing.T) {
	e := newEnv(t, memoryBackend(t))
	health := e.do(t, "GET", "/health", "")
	if v, has := health.body["shard"]; !has || v != nil {
		t.Fatalf("/health of an unsharded inventory: %s, want shard null", health.raw)
	}
	ready := e.do(t, "GET", "/ready", "")
	if ready.status != 200 || num(t, ready.body["products_held"]) != int64(len(seedCatalog(t).Products)) {
		t.Fatalf("/ready: %s", ready.raw)
	}
}
