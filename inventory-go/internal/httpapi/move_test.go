// A shard's HTTP surface while a rebalance moves one of its products (ring.md,
// Rebalance): fenced, its writes are 503 product_moving with Retry-After and its reads
// are served; moved, the product and its hold are 421 naming the new shard.
package httpapi

import (
	"context"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/store/redis"
	"polyshop/inventory-go/internal/testredis"
)

func TestShardDuringAMove(t *testing.T) {
	ctx := context.Background()
	opt := testredis.Start(t)
	dbOpt := func(n int) *goredis.Options { o := *opt; o.DB = n; return &o }
	c := seedCatalog(t)
	r := ring.New([]string{"inv-0", "inv-1", "inv-2"})
	shard := inventory.NewShard("inv-0", r, c)
	store, err := redis.NewShard(ctx, dbOpt(1), shard.Owned(c), inventory.DefaultTiming, "inv-0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	cfg := testConfig()
	cfg.ShardID, cfg.Shards = "inv-0", r.Names()
	e := &env{srv: New(Deps{Store: shard.Serve(store), Warehouses: c.Warehouses, Config: cfg, Logger: NewLogger(&syncBuffer{}, "warn")})}
	pid := shard.Owned(c).Products[0].ID
	other := shard.Owned(c).Products[1].ID
	item := fmt.Sprintf("/api/inventory/%d", pid)
	reserve := fmt.Sprintf(`{"product_id":%d,"quantity":1}`, pid)
	res := e.do(t, "POST", "/api/reservations", reserve)
	if res.status != 201 {
		t.Fatalf("reserve: %d %s", res.status, res.raw)
	}
	hold := "/api/reservations/" + res.body["reservation_id"].(string)

	from, to := redis.NewMover(dbOpt(1), "inv-0"), redis.NewMover(dbOpt(2), "inv-3")
	t.Cleanup(func() { _ = from.Close(); _ = to.Close() })
	if err := to.Prepare(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := from.Fence(ctx, pid, "inv-3"); err != nil {
		t.Fatal(err)
	}
	moving := func(r response) {
		t.Helper()
		wantError(t, r, 503, "product_moving")
		if r.header.Get("Retry-After") != "1" {
			t.Fatalf("product_moving without Retry-After: 1 (%q)", r.header.Get("Retry-After"))
		}
	}
	moving(e.do(t, "POST", "/api/reservations", reserve))
	moving(e.do(t, "POST", hold+"/commit", ""))
	moving(e.do(t, "DELETE", hold, ""))
	moving(e.do(t, "PUT", item, `{"available":5}`, "Authorization", "Bearer "+adminToken))
	if got := e.do(t, "GET", item, ""); got.status != 200 || num(t, got.body["reserved"]) != 1 {
		t.Fatalf("read of a fenced product: %d %s", got.status, got.raw)
	}
	if got := e.do(t, "GET", hold, ""); got.status != 200 || got.body["state"] != "held" {
		t.Fatalf("lookup of a fenced product's hold: %d %s", got.status, got.raw)
	}
	if got := e.do(t, "POST", "/api/inventory/batch", fmt.Sprintf(`{"ids":[%d,%d]}`, pid, other)); got.status != 200 {
		t.Fatalf("batch with a fenced product: %d %s", got.status, got.raw)
	}
	if got := e.do(t, "POST", "/api/reservations", fmt.Sprintf(`{"product_id":%d,"quantity":1}`, other)); got.status != 201 {
		t.Fatalf("reserve of another product while one is fenced: %d %s", got.status, got.raw)
	}

	parcel, err := from.Export(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := to.Import(ctx, parcel); err != nil {
		t.Fatal(err)
	}
	if _, err := from.Finish(ctx, pid, "inv-3"); err != nil {
		t.Fatal(err)
	}
	// Moved: inv-3 is named although this shard's ring has no inv-3.
	wantMisdirected(t, e.do(t, "GET", item, ""), "inv-3")
	wantMisdirected(t, e.do(t, "POST", "/api/reservations", reserve), "inv-3")
	wantMisdirected(t, e.do(t, "POST", hold+"/commit", ""), "inv-3")
	wantMisdirected(t, e.do(t, "DELETE", hold, ""), "inv-3")
	wantMisdirected(t, e.do(t, "GET", hold, ""), "inv-3")
	wantMisdirected(t, e.do(t, "POST", "/api/inventory/batch", fmt.Sprintf(`{"ids":[%d,%d]}`, other, pid)), "inv-3")
	msg := e.do(t, "POST", hold+"/commit", "").body["error"].(map[string]any)["message"]
	if want := fmt.Sprintf("reservation %s is held by shard inv-3", hold[len("/api/reservations/"):]); msg != want {
		t.Fatalf("message %q, want %q", msg, want)
	}
}
