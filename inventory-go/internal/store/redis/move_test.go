// Tests of the rebalance scripts on a real redis-server: fence, export/import and
// finish each keep the units of a product and its holds, each is idempotent, and a
// fenced product is read-only at its old owner while its copy is taken.
package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/store/redis"
	"polyshop/inventory-go/internal/testredis"
)

// moveTiming keeps settled holds for the whole test (the suite's 2 s would let them go).
var moveTiming = inventory.Timing{DemandWindow: time.Hour, Retention: time.Hour}

func moveCatalog() inventory.Catalog {
	return inventory.Catalog{
		Warehouses: []inventory.Warehouse{{ID: "WH-1", Name: "One"}, {ID: "WH-2", Name: "Two"}},
		Products: []inventory.Product{
			{ID: 1, Stock: 100, Warehouse: "WH-1"},
			{ID: 2, Stock: 50, Warehouse: "WH-2"},
		},
	}
}

type moveEnv struct {
	optA, optB *goredis.Options
	a, b       *redis.Store // shard inv-a holds the catalog, inv-b starts empty
	ma, mb     *redis.Mover
}

func db(opt *goredis.Options, n int) *goredis.Options {
	o := *opt
	o.DB = n
	return &o
}

func newMoveEnv(t *testing.T) *moveEnv {
	t.Helper()
	ctx := context.Background()
	opt := testredis.Start(t)
	e := &moveEnv{optA: db(opt, 1), optB: db(opt, 2)}
	var err error
	if e.a, err = redis.NewShard(ctx, e.optA, moveCatalog(), moveTiming, "inv-a"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.a.Close() })
	e.ma, e.mb = redis.NewMover(e.optA, "inv-a"), redis.NewMover(e.optB, "inv-b")
	t.Cleanup(func() { _ = e.ma.Close(); _ = e.mb.Close() })
	if err := e.ma.Prepare(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := e.mb.Prepare(ctx, false); err != nil {
		t.Fatal(err)
	}
	// inv-b started after its database was prepared: it must seed nothing.
	if e.b, err = redis.NewShard(ctx, e.optB, moveCatalog(), moveTiming, "inv-b"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.b.Close() })
	if n, _ := e.b.Held(ctx); n != 0 {
		t.Fatalf("a prepared target seeded %d products", n)
	}
	return e
}

func mustReserve(t *testing.T, s inventory.Store, pid, qty int64, ttl time.Duration, key string) inventory.Reservation {
	t.Helper()
	res, _, err := s.Reserve(context.Background(), inventory.ReserveRequest{
		ProductID: pid, Quantity: qty, TTL: ttl, IdempotencyKey: key, Fingerprint: "fp-" + key})
	if err != nil {
		t.Fatalf("reserve %d x%d: %v", pid, qty, err)
	}
	return res
}

func mustGet(t *testing.T, s inventory.Store, pid int64) inventory.Item {
	t.Helper()
	it, err := s.Get(context.Background(), pid)
	if err != nil {
		t.Fatalf("get %d: %v", pid, err)
	}
	return it
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

func TestMoveProductWithItsHolds(t *testing.T) {
	ctx := context.Background()
	e := newMoveEnv(t)
	held := mustReserve(t, e.a, 1, 5, time.Minute, "k-held")
	sold := mustReserve(t, e.a, 1, 3, time.Minute, "k-sold")
	if _, err := e.a.Commit(ctx, sold.ID); err != nil {
		t.Fatal(err)
	}
	back := mustReserve(t, e.a, 1, 2, time.Minute, "k-back")
	if _, err := e.a.Release(ctx, back.ID); err != nil {
		t.Fatal(err)
	}
	due := mustReserve(t, e.a, 1, 4, 200*time.Millisecond, "")
	before := mustGet(t, e.a, 1)
	if before.Available+before.Reserved+before.Sold != 100 || before.Reserved != 9 || before.Sold != 3 {
		t.Fatalf("before the move: %+v", before)
	}

	// Fence: idempotent for the same shard, refused for another.
	for range 2 {
		if err := e.ma.Fence(ctx, 1, "inv-b"); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, "fence for another shard", e.ma.Fence(ctx, 1, "inv-c"), redis.ErrFencedOther)
	wantErr(t, "fence of a product not held", e.ma.Fence(ctx, 7, "inv-b"), redis.ErrNotHeld)

	// Fenced: reads are served, every write to the product or its holds is refused.
	if it := mustGet(t, e.a, 1); it.Available != before.Available || it.Reserved != before.Reserved {
		t.Fatalf("read of a fenced product: %+v, want %+v", it, before)
	}
	_, _, err := e.a.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 1, TTL: time.Minute})
	wantErr(t, "reserve", err, inventory.ErrProductMoving)
	_, _, err = e.a.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 5, TTL: time.Minute, IdempotencyKey: "k-held", Fingerprint: "fp-k-held"})
	wantErr(t, "idempotent replay", err, inventory.ErrProductMoving)
	_, err = e.a.Commit(ctx, held.ID)
	wantErr(t, "commit", err, inventory.ErrProductMoving)
	_, err = e.a.Release(ctx, held.ID)
	wantErr(t, "release", err, inventory.ErrProductMoving)
	_, err = e.a.Commit(ctx, sold.ID)
	wantErr(t, "commit of a committed hold", err, inventory.ErrProductMoving)
	_, err = e.a.Restock(ctx, 1, 10)
	wantErr(t, "restock", err, inventory.ErrProductMoving)
	if st, err := e.a.Lookup(ctx, held.ID); err != nil || st.Reservation.State != inventory.StateHeld {
		t.Fatalf("lookup of a fenced product's hold: %+v %v", st, err)
	}
	if _, _, err := e.a.Reserve(ctx, inventory.ReserveRequest{ProductID: 2, Quantity: 1, TTL: time.Minute}); err != nil {
		t.Fatalf("another product is not fenced: %v", err)
	}
	// The sweeper passes a fenced product's due hold by; a lookup that would expire it waits.
	testredis.NewClock(t, e.optA).AdvanceTo(due.ExpiresAt.Add(10 * time.Millisecond))
	if n, err := inventory.Sweep(ctx, e.a); err != nil || n != 0 {
		t.Fatalf("sweep of a fenced product's hold: %d %v", n, err)
	}
	_, err = e.a.Lookup(ctx, due.ID)
	wantErr(t, "lookup that would expire", err, inventory.ErrProductMoving)

	// Export and import, twice: the second import finds the product and changes nothing.
	parcel, err := e.ma.Export(ctx, 1)
	if err != nil || parcel.Holds != 4 || parcel.To != "inv-b" {
		t.Fatalf("export: %+v %v, want 4 holds for inv-b", parcel, err)
	}
	for i, want := range []bool{true, false} {
		if created, err := e.mb.Import(ctx, parcel); err != nil || created != want {
			t.Fatalf("import %d: created %v %v, want %v", i, created, err, want)
		}
	}
	wantErr(t, "import into the old owner", func() error { _, err := e.ma.Import(ctx, parcel); return err }(), redis.ErrWrongParcel)
	got := mustGet(t, e.b, 1)
	if got.Available != before.Available || got.Reserved != before.Reserved || got.Sold != before.Sold ||
		got.Warehouse != before.Warehouse || got.RecentDemand != before.RecentDemand || !got.LastUpdated.Equal(before.LastUpdated) {
		t.Fatalf("at the new owner: %+v, want %+v", got, before)
	}

	// Finish, twice.
	for i, want := range []bool{true, false} {
		if deleted, err := e.ma.Finish(ctx, 1, "inv-b"); err != nil || deleted != want {
			t.Fatalf("finish %d: deleted %v %v, want %v", i, deleted, err, want)
		}
	}
	if _, err := e.a.Get(ctx, 1); !errors.Is(err, inventory.ErrProductNotFound) {
		t.Fatalf("old owner after the move: %v", err)
	}
	if n, _ := e.a.Held(ctx); n != 1 {
		t.Fatalf("old owner holds %d products, want 1", n)
	}
	if n, _ := e.b.Held(ctx); n != 1 {
		t.Fatalf("new owner holds %d products, want 1", n)
	}
	if to, err := e.a.ProductHandoffs(ctx, []int64{1, 2}); err != nil || len(to) != 1 || to[1] != "inv-b" {
		t.Fatalf("product handoffs %v %v", to, err)
	}
	for _, r := range []inventory.Reservation{held, sold, back, due} {
		if to, err := e.a.HoldHandoff(ctx, r.ID); err != nil || to != "inv-b" {
			t.Fatalf("hold handoff of %s: %q %v", r.ID, to, err)
		}
		if _, err := e.a.Lookup(ctx, r.ID); !errors.Is(err, inventory.ErrReservationNotFound) {
			t.Fatalf("hold %s still at the old owner: %v", r.ID, err)
		}
	}
	// The idempotency key went with its hold.
	_, _, err = e.a.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 5, TTL: time.Minute, IdempotencyKey: "k-held", Fingerprint: "fp-k-held"})
	wantErr(t, "replay at the old owner", err, inventory.ErrProductNotFound)

	// At the new owner the holds carry on: same expiry, same states, same idempotency.
	if st, err := e.b.Lookup(ctx, held.ID); err != nil || st.Reservation.State != inventory.StateHeld || !st.Reservation.ExpiresAt.Equal(held.ExpiresAt) {
		t.Fatalf("moved hold: %+v %v, want held until %v", st, err, held.ExpiresAt)
	}
	if st, err := e.b.Lookup(ctx, sold.ID); err != nil || st.Reservation.State != inventory.StateCommitted {
		t.Fatalf("moved committed hold: %+v %v", st, err)
	}
	res, replayed, err := e.b.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 5, TTL: time.Minute, IdempotencyKey: "k-held", Fingerprint: "fp-k-held"})
	if err != nil || !replayed || res.ID != held.ID {
		t.Fatalf("replay at the new owner: %+v %v %v, want hold %s", res, replayed, err, held.ID)
	}
	if n, err := inventory.Sweep(ctx, e.b); err != nil || n != 1 {
		t.Fatalf("the new owner's sweeper expires the due hold: %d %v", n, err)
	}
	if st, err := e.b.Commit(ctx, held.ID); err != nil || st.Reservation.State != inventory.StateCommitted {
		t.Fatalf("commit at the new owner: %+v %v", st, err)
	}
	after := mustGet(t, e.b, 1)
	if after.Available+after.Reserved+after.Sold != 100 || after.Sold != 8 || after.Reserved != 0 {
		t.Fatalf("units after the move, an expiry and a commit: %+v", after)
	}
	ws, _ := e.b.Warehouses(ctx)
	if ws[0].Products != 1 || ws[0].Available != after.Available || ws[0].Reserved != 0 {
		t.Fatalf("new owner's warehouse totals %+v, item %+v", ws, after)
	}
}

func TestMoveStepsRefuseOutOfOrder(t *testing.T) {
	ctx := context.Background()
	e := newMoveEnv(t)
	_, err := e.ma.Export(ctx, 1)
	wantErr(t, "export of an unfenced product", err, redis.ErrNotFenced)
	_, err = e.ma.Finish(ctx, 1, "inv-b")
	wantErr(t, "finish of an unfenced product", err, redis.ErrNotFenced)
	_, err = e.ma.Export(ctx, 9)
	wantErr(t, "export of a product not held", err, redis.ErrNotHeld)
	_, err = e.ma.Finish(ctx, 9, "inv-b")
	wantErr(t, "finish of a product never here", err, redis.ErrNotHeld)
	if err := e.ma.Fence(ctx, 1, "inv-b"); err != nil {
		t.Fatal(err)
	}
	_, err = e.ma.Finish(ctx, 1, "inv-c")
	wantErr(t, "finish for another shard than the fence's", err, redis.ErrNotFenced)
	parcel, err := e.ma.Export(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A database prepared for another shard refuses the parcel.
	other := redis.NewMover(e.optB, "inv-c")
	defer other.Close()
	_, err = other.Import(ctx, parcel)
	wantErr(t, "import into another shard's database", err, redis.ErrWrongParcel)
	wantErr(t, "prepare of another shard's database", other.Prepare(ctx, false), redis.ErrOtherData)
}

func TestPrepare(t *testing.T) {
	ctx := context.Background()
	opt := testredis.Start(t)
	fresh := redis.NewMover(db(opt, 3), "inv-x")
	defer fresh.Close()
	wantErr(t, "a source that never started", fresh.Prepare(ctx, true), redis.ErrUnseeded)
	for range 2 {
		if err := fresh.Prepare(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := fresh.Prepare(ctx, true); err != nil {
		t.Fatalf("a prepared target is a source next time: %v", err)
	}
	unsharded, err := redis.New(ctx, db(opt, 4), moveCatalog(), moveTiming)
	if err != nil {
		t.Fatal(err)
	}
	defer unsharded.Close()
	m := redis.NewMover(db(opt, 4), "inv-y")
	defer m.Close()
	wantErr(t, "an unsharded database", m.Prepare(ctx, false), redis.ErrOtherData)
}

// TestProductComesBack: moved A -> B -> A, the product is served at A again and A's
// handoff records of it are gone.
func TestProductComesBack(t *testing.T) {
	ctx := context.Background()
	e := newMoveEnv(t)
	h := mustReserve(t, e.a, 1, 2, time.Minute, "")
	move := func(from, to *redis.Mover) {
		t.Helper()
		if err := from.Fence(ctx, 1, to.ID()); err != nil {
			t.Fatal(err)
		}
		p, err := from.Export(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := to.Import(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := from.Finish(ctx, 1, to.ID()); err != nil {
			t.Fatal(err)
		}
	}
	move(e.ma, e.mb)
	move(e.mb, e.ma)
	shard := inventory.NewShard("inv-a", ring.New([]string{"inv-a", "inv-b"}), moveCatalog())
	a := shard.Serve(e.a)
	if it := mustGet(t, a, 1); it.Reserved != 2 || it.Available != 98 {
		t.Fatalf("back at A: %+v", it)
	}
	if to, _ := e.a.ProductHandoffs(ctx, []int64{1}); len(to) != 0 {
		t.Fatalf("A still hands product 1 to %v", to)
	}
	if to, _ := e.a.HoldHandoff(ctx, h.ID); to != "" {
		t.Fatalf("A still hands its hold to %q", to)
	}
	if st, err := a.Commit(ctx, h.ID); err != nil || st.Reservation.State != inventory.StateCommitted {
		t.Fatalf("commit back at A: %+v %v", st, err)
	}
	if to, _ := e.b.ProductHandoffs(ctx, []int64{1}); to[1] != "inv-a" {
		t.Fatalf("B hands product 1 to %v, want inv-a", to)
	}
}

// TestShardAnswersFromHandoffs: the shard-wrapped old owner names the new one for the
// product and its hold, though its own ring still names itself.
func TestShardAnswersFromHandoffs(t *testing.T) {
	ctx := context.Background()
	e := newMoveEnv(t)
	h := mustReserve(t, e.a, 1, 2, time.Minute, "")
	shard := inventory.NewShard("inv-a", ring.New([]string{"inv-a"}), moveCatalog())
	a := shard.Serve(e.a)
	if err := e.ma.Fence(ctx, 1, "inv-b"); err != nil {
		t.Fatal(err)
	}
	p, _ := e.ma.Export(ctx, 1)
	if _, err := e.mb.Import(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ma.Finish(ctx, 1, "inv-b"); err != nil {
		t.Fatal(err)
	}
	var m *inventory.MisdirectedError
	_, err := a.Get(ctx, 1)
	if !errors.As(err, &m) || m.Owner != "inv-b" || m.ProductID != 1 {
		t.Fatalf("get of a moved product: %v", err)
	}
	_, _, err = a.GetMany(ctx, []int64{2, 1})
	if !errors.As(err, &m) || m.Owner != "inv-b" {
		t.Fatalf("batch with a moved product: %v", err)
	}
	_, _, err = a.Reserve(ctx, inventory.ReserveRequest{ProductID: 1, Quantity: 1, TTL: time.Minute})
	if !errors.As(err, &m) || m.Owner != "inv-b" {
		t.Fatalf("reserve of a moved product: %v", err)
	}
	for name, op := range map[string]func(context.Context, string) (inventory.Settlement, error){
		"commit": a.Commit, "release": a.Release, "lookup": a.Lookup} {
		_, err := op(ctx, h.ID)
		if !errors.As(err, &m) || m.Owner != "inv-b" || m.ReservationID != h.ID {
			t.Fatalf("%s of a moved hold: %v", name, err)
		}
	}
	if _, err := a.Commit(ctx, "RES-000000000000000000000000"); !errors.Is(err, inventory.ErrReservationNotFound) || errors.As(err, &m) {
		t.Fatalf("commit of an unknown hold: %v", err)
	}
}

func TestIndexHoldsMadeBeforeTheIndex(t *testing.T) {
	ctx := context.Background()
	e := newMoveEnv(t)
	h := mustReserve(t, e.a, 2, 1, time.Minute, "")
	// A hold made by a version without the index.
	raw := goredis.NewClient(e.optA)
	defer raw.Close()
	if err := raw.Del(ctx, "polyshop:inventory:holds:2").Err(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{1, 0} {
		if n, err := e.ma.IndexHolds(ctx); err != nil || n != want {
			t.Fatalf("index %d: %d %v, want %d", i, n, err, want)
		}
	}
	if err := e.ma.Fence(ctx, 2, "inv-b"); err != nil {
		t.Fatal(err)
	}
	if p, err := e.ma.Export(ctx, 2); err != nil || p.Holds != 1 {
		t.Fatalf("export after indexing: %+v %v", p, err)
	}
	_ = h
}

// TestMoveEmptyProduct: no holds, no free units: the totals still come out right.
func TestMoveEmptyProduct(t *testing.T) {
	ctx := context.Background()
	e := newMoveEnv(t)
	if _, err := e.a.Restock(ctx, 2, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.ma.Fence(ctx, 2, "inv-b"); err != nil {
		t.Fatal(err)
	}
	p, err := e.ma.Export(ctx, 2)
	if err != nil || p.Holds != 0 {
		t.Fatalf("export: %+v %v", p, err)
	}
	if _, err := e.mb.Import(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ma.Finish(ctx, 2, "inv-b"); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*redis.Store{"old owner": e.a, "new owner": e.b} {
		ws, err := s.Warehouses(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := int64(0)
		if name == "new owner" {
			want = 1
		}
		if ws[1].ID != "WH-2" || ws[1].Products != want || ws[1].Available != 0 || ws[1].Reserved != 0 {
			t.Fatalf("%s: WH-2 totals %+v, want %d products and no units", name, ws[1], want)
		}
	}
}
