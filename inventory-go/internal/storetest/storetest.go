// Package storetest is the ONE store test suite: every inventory.Store implementation
// (memory, Redis) runs it, so both keep exactly the same semantics.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"polyshop/inventory-go/internal/inventory"
)

// Clock is a fake clock the tests move by hand (no sleeping, no timing assertions).
type Clock struct{ ms atomic.Int64 }

// NewClock starts at a fixed instant.
func NewClock() *Clock {
	c := &Clock{}
	c.ms.Store(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).UnixMilli())
	return c
}

// Now is an inventory.Clock.
func (c *Clock) Now() time.Time { return time.UnixMilli(c.ms.Load()).UTC() }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// Catalog is the suite's seed: product 1 has 100 units, 2 has 5, 3 has none.
func Catalog() inventory.Catalog {
	return inventory.Catalog{
		Warehouses: []inventory.Warehouse{{ID: "WH-1", Name: "One"}, {ID: "WH-2", Name: "Two"}},
		Products: []inventory.Product{
			{ID: 1, Stock: 100, Warehouse: "WH-1"},
			{ID: 2, Stock: 5, Warehouse: "WH-2"},
			{ID: 3, Stock: 0, Warehouse: "WH-1"},
		},
	}
}

// Factory builds a fresh, empty store seeded with c and driven by clock.
type Factory func(t *testing.T, c inventory.Catalog, clock inventory.Clock) inventory.Store

// Run runs the whole suite against the stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s inventory.Store, clock *Clock)
	}{
		{"SeedAndGet", testSeedAndGet},
		{"GetMany", testGetMany},
		{"Warehouses", testWarehouses},
		{"Reserve", testReserve},
		{"Idempotency", testIdempotency},
		{"Commit", testCommit},
		{"Release", testRelease},
		{"CommitAfterExpiry", testCommitAfterExpiry},
		{"ReleaseAfterExpiry", testReleaseAfterExpiry},
		{"SweepTwoSweepers", testSweepTwoSweepers},
		{"RecentDemandWindow", testRecentDemandWindow},
		{"Restock", testRestock},
		{"UnknownReservation", testUnknownReservation},
		{"CancelledContext", testCancelledContext},
		{"ConcurrentReserveNeverOversells", testConcurrentReserve},
		{"StormKeepsUnitsConserved", testStorm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock()
			s := newStore(t, Catalog(), clock.Now)
			tc.fn(t, s, clock)
		})
	}
}

var bg = context.Background()

func get(t *testing.T, s inventory.Store, id int64) inventory.Item {
	t.Helper()
	it, err := s.Get(bg, id)
	if err != nil {
		t.Fatalf("Get(%d): %v", id, err)
	}
	return it
}

func reserve(t *testing.T, s inventory.Store, pid, qty int64, ttl time.Duration, key string) inventory.Reservation {
	t.Helper()
	res, replayed, err := s.Reserve(bg, req(pid, qty, ttl, key))
	if err != nil {
		t.Fatalf("Reserve(%d, %d): %v", pid, qty, err)
	}
	if replayed {
		t.Fatalf("Reserve(%d, %d): unexpected replay", pid, qty)
	}
	return res
}

func req(pid, qty int64, ttl time.Duration, key string) inventory.ReserveRequest {
	return inventory.ReserveRequest{ProductID: pid, Quantity: qty, TTL: ttl, IdempotencyKey: key,
		Fingerprint: fmt.Sprintf("%d|%d|%d", pid, qty, ttl/time.Second)}
}

func wantItem(t *testing.T, s inventory.Store, id, available, reserved, sold int64) {
	t.Helper()
	it := get(t, s, id)
	if it.Available != available || it.Reserved != reserved || it.Sold != sold {
		t.Fatalf("product %d: available/reserved/sold = %d/%d/%d, want %d/%d/%d",
			id, it.Available, it.Reserved, it.Sold, available, reserved, sold)
	}
}

func testSeedAndGet(t *testing.T, s inventory.Store, clock *Clock) {
	it := get(t, s, 1)
	if it.ProductID != 1 || it.Available != 100 || it.Reserved != 0 || it.Warehouse != "WH-1" || it.RecentDemand != 0 {
		t.Fatalf("seeded item = %+v", it)
	}
	if !it.LastUpdated.Equal(clock.Now()) {
		t.Fatalf("LastUpdated = %v, want the seed time %v", it.LastUpdated, clock.Now())
	}
	if _, err := s.Get(bg, 999); !errors.Is(err, inventory.ErrProductNotFound) {
		t.Fatalf("Get(999) error = %v, want ErrProductNotFound", err)
	}
}

func testGetMany(t *testing.T, s inventory.Store, _ *Clock) {
	items, missing, err := s.GetMany(bg, []int64{2, 999, 1, 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].ProductID != 2 || items[1].ProductID != 1 || items[0].Available != 5 {
		t.Fatalf("items = %+v, want products 2 then 1", items)
	}
	if len(missing) != 2 || missing[0] != 999 || missing[1] != 1000 {
		t.Fatalf("missing = %v, want [999 1000]", missing)
	}
}

func testWarehouses(t *testing.T, s inventory.Store, _ *Clock) {
	reserve(t, s, 1, 10, time.Minute, "")
	ws, err := s.Warehouses(bg)
	if err != nil {
		t.Fatal(err)
	}
	want := []inventory.WarehouseStock{
		{ID: "WH-1", Products: 2, Available: 90, Reserved: 10},
		{ID: "WH-2", Products: 1, Available: 5, Reserved: 0},
	}
	if fmt.Sprint(ws) != fmt.Sprint(want) {
		t.Fatalf("warehouses = %+v, want %+v", ws, want)
	}
	if _, err := s.Restock(bg, 2, 50); err != nil {
		t.Fatal(err)
	}
	ws, _ = s.Warehouses(bg)
	if ws[1].Available != 50 {
		t.Fatalf("WH-2 available after restock = %d, want 50", ws[1].Available)
	}
}

func testReserve(t *testing.T, s inventory.Store, clock *Clock) {
	res := reserve(t, s, 1, 7, 5*time.Minute, "")
	if !inventory.ValidReservationID(res.ID) {
		t.Fatalf("reservation id %q is not RES-<24 hex>", res.ID)
	}
	if res.ProductID != 1 || res.Quantity != 7 || res.AvailableBefore != 100 || res.RecentDemandBefore != 0 ||
		res.Status != inventory.StatusPending {
		t.Fatalf("reservation = %+v", res)
	}
	if want := clock.Now().Add(5 * time.Minute); !res.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt = %v, want %v", res.ExpiresAt, want)
	}
	wantItem(t, s, 1, 93, 7, 0)
	if it := get(t, s, 1); it.RecentDemand != 7 {
		t.Fatalf("recent demand = %d, want 7", it.RecentDemand)
	}
	second := reserve(t, s, 1, 3, time.Minute, "")
	if second.ID == res.ID || second.AvailableBefore != 93 || second.RecentDemandBefore != 7 {
		t.Fatalf("second reservation = %+v", second)
	}
	_, _, err := s.Reserve(bg, req(2, 6, time.Minute, ""))
	var short *inventory.InsufficientStockError
	if !errors.As(err, &short) || short.Available != 5 || !errors.Is(err, inventory.ErrInsufficientStock) {
		t.Fatalf("Reserve 6 of 5: error = %v, want InsufficientStockError{Available: 5}", err)
	}
	reserve(t, s, 2, 5, time.Minute, "") // exactly all of it
	wantItem(t, s, 2, 0, 5, 0)
	if _, _, err := s.Reserve(bg, req(3, 1, time.Minute, "")); !errors.Is(err, inventory.ErrInsufficientStock) {
		t.Fatalf("Reserve of an empty product: %v", err)
	}
	if _, _, err := s.Reserve(bg, req(999, 1, time.Minute, "")); !errors.Is(err, inventory.ErrProductNotFound) {
		t.Fatalf("Reserve of an unknown product: %v", err)
	}
}

func testIdempotency(t *testing.T, s inventory.Store, clock *Clock) {
	first := reserve(t, s, 1, 4, time.Minute, "order-42")
	clock.Advance(time.Second)
	again, replayed, err := s.Reserve(bg, req(1, 4, time.Minute, "order-42"))
	if err != nil || !replayed {
		t.Fatalf("replay: replayed=%v err=%v", replayed, err)
	}
	if again != first {
		t.Fatalf("replay answered %+v, want the first hold %+v", again, first)
	}
	wantItem(t, s, 1, 96, 4, 0) // one hold, not two
	if _, _, err := s.Reserve(bg, req(1, 5, time.Minute, "order-42")); !errors.Is(err, inventory.ErrIdempotencyConflict) {
		t.Fatalf("same key, other body: %v, want ErrIdempotencyConflict", err)
	}
	if _, _, err := s.Reserve(bg, req(2, 4, time.Minute, "order-42")); !errors.Is(err, inventory.ErrIdempotencyConflict) {
		t.Fatalf("same key, other product: %v, want ErrIdempotencyConflict", err)
	}
	// A replay after commit still answers the original hold (same body as the 201).
	if _, _, err := s.Commit(bg, first.ID); err != nil {
		t.Fatal(err)
	}
	again, replayed, err = s.Reserve(bg, req(1, 4, time.Minute, "order-42"))
	if err != nil || !replayed || again.ID != first.ID || again.AvailableBefore != 100 {
		t.Fatalf("replay after commit: %+v replayed=%v err=%v", again, replayed, err)
	}
	wantItem(t, s, 1, 96, 0, 4)
	// A failed attempt binds nothing: the key works once stock allows it.
	if _, _, err := s.Reserve(bg, req(2, 9, time.Minute, "k2")); !errors.Is(err, inventory.ErrInsufficientStock) {
		t.Fatal(err)
	}
	if _, err := s.Restock(bg, 2, 9); err != nil {
		t.Fatal(err)
	}
	reserve(t, s, 2, 9, time.Minute, "k2")
}

func testCommit(t *testing.T, s inventory.Store, _ *Clock) {
	res := reserve(t, s, 1, 10, time.Minute, "")
	got, expired, err := s.Commit(bg, res.ID)
	if err != nil || expired {
		t.Fatalf("Commit: expired=%v err=%v", expired, err)
	}
	if got.Status != inventory.StatusCommitted || got.ID != res.ID || got.Quantity != 10 {
		t.Fatalf("committed = %+v", got)
	}
	wantItem(t, s, 1, 90, 0, 10)
	if _, _, err := s.Commit(bg, res.ID); !errors.Is(err, inventory.ErrReservationNotPending) {
		t.Fatalf("second commit: %v, want ErrReservationNotPending", err)
	}
	if _, _, err := s.Release(bg, res.ID); !errors.Is(err, inventory.ErrReservationNotPending) {
		t.Fatalf("release of a committed hold: %v, want ErrReservationNotPending", err)
	}
	wantItem(t, s, 1, 90, 0, 10) // sold units never come back
}

func testRelease(t *testing.T, s inventory.Store, _ *Clock) {
	res := reserve(t, s, 1, 10, time.Minute, "")
	rel, expired, err := s.Release(bg, res.ID)
	if err != nil || expired || rel.Repeated || rel.Reservation.Status != inventory.StatusReleased {
		t.Fatalf("Release: %+v expired=%v err=%v", rel, expired, err)
	}
	wantItem(t, s, 1, 100, 0, 0)
	rel, _, err = s.Release(bg, res.ID)
	if err != nil || !rel.Repeated || rel.Reservation.Status != inventory.StatusReleased {
		t.Fatalf("second Release: %+v err=%v, want an idempotent repeat", rel, err)
	}
	wantItem(t, s, 1, 100, 0, 0) // units returned once
	if _, _, err := s.Commit(bg, res.ID); !errors.Is(err, inventory.ErrReservationNotPending) {
		t.Fatalf("commit of a released hold: %v", err)
	}
}

func testCommitAfterExpiry(t *testing.T, s inventory.Store, clock *Clock) {
	res := reserve(t, s, 1, 10, time.Second, "")
	clock.Advance(time.Second) // expiry is inclusive: at ExpiresAt the hold is gone
	got, expired, err := s.Commit(bg, res.ID)
	if !errors.Is(err, inventory.ErrReservationExpired) || !expired || got.Status != inventory.StatusExpired {
		t.Fatalf("late commit: %+v expired=%v err=%v, want ErrReservationExpired", got, expired, err)
	}
	wantItem(t, s, 1, 100, 0, 0)
	if n, err := inventory.Sweep(bg, s); err != nil || n != 0 {
		t.Fatalf("sweep after a late commit expired %d (err %v), want 0", n, err)
	}
	wantItem(t, s, 1, 100, 0, 0)
	if _, _, err := s.Commit(bg, res.ID); !errors.Is(err, inventory.ErrReservationNotPending) {
		t.Fatalf("commit of an expired hold: %v", err)
	}
}

func testReleaseAfterExpiry(t *testing.T, s inventory.Store, clock *Clock) {
	res := reserve(t, s, 1, 10, time.Second, "")
	clock.Advance(2 * time.Second)
	_, expired, err := s.Release(bg, res.ID)
	if !errors.Is(err, inventory.ErrReservationNotPending) || !expired {
		t.Fatalf("late release: expired=%v err=%v", expired, err)
	}
	wantItem(t, s, 1, 100, 0, 0)
	if n, _ := inventory.Sweep(bg, s); n != 0 {
		t.Fatalf("sweep expired %d, want 0", n)
	}
	wantItem(t, s, 1, 100, 0, 0)
}

func testSweepTwoSweepers(t *testing.T, s inventory.Store, clock *Clock) {
	const holds = 450 // more than one sweep batch
	for i := 0; i < holds; i++ {
		qty := int64(1)
		if i%3 == 0 {
			qty = 2 // mixed sizes catch a sweeper returning the wrong count
		}
		pid := int64(1)
		if i%2 == 0 {
			pid = 2
			if _, err := s.Restock(bg, 2, get(t, s, 2).Available+qty); err != nil {
				t.Fatal(err)
			}
		}
		reserve(t, s, pid, qty, time.Second, "")
		if pid == 1 && get(t, s, 1).Available < 3 {
			if _, err := s.Restock(bg, 1, 100); err != nil {
				t.Fatal(err)
			}
		}
	}
	longLived := reserve(t, s, 1, 1, time.Hour, "")
	before1, before2 := get(t, s, 1), get(t, s, 2)
	if n, _ := inventory.Sweep(bg, s); n != 0 {
		t.Fatalf("sweep before the TTL expired %d holds", n)
	}
	clock.Advance(time.Second)
	var total atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 { // each sweeper keeps going: a double expiry would show
				n, err := inventory.Sweep(bg, s)
				if err != nil {
					t.Error(err)
					return
				}
				total.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	if total.Load() != holds {
		t.Fatalf("sweepers expired %d holds, want exactly %d", total.Load(), holds)
	}
	after1, after2 := get(t, s, 1), get(t, s, 2)
	if after1.Available+after1.Reserved != before1.Available+before1.Reserved || after1.Reserved != 1 {
		t.Fatalf("product 1 before %+v after %+v: units not returned exactly once", before1, after1)
	}
	if after2.Reserved != 0 || after2.Available != before2.Available+before2.Reserved {
		t.Fatalf("product 2 before %+v after %+v: units not returned exactly once", before2, after2)
	}
	if _, _, err := s.Commit(bg, longLived.ID); err != nil {
		t.Fatalf("the one-hour hold must survive the sweep: %v", err)
	}
}

func testRecentDemandWindow(t *testing.T, s inventory.Store, clock *Clock) {
	r1 := reserve(t, s, 1, 3, time.Minute, "")
	if _, _, err := s.Release(bg, r1.ID); err != nil { // released holds still count: they were demand
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	r2 := reserve(t, s, 1, 2, 2*time.Hour, "")
	if r2.RecentDemandBefore != 3 {
		t.Fatalf("RecentDemandBefore = %d, want 3", r2.RecentDemandBefore)
	}
	if d := get(t, s, 1).RecentDemand; d != 5 {
		t.Fatalf("demand after 30 min = %d, want 5", d)
	}
	clock.Advance(30*time.Minute - time.Millisecond)
	if d := get(t, s, 1).RecentDemand; d != 5 {
		t.Fatalf("demand just inside the hour = %d, want 5", d)
	}
	clock.Advance(time.Millisecond) // the first event is now exactly an hour old: out
	if d := get(t, s, 1).RecentDemand; d != 2 {
		t.Fatalf("demand after the first event left the window = %d, want 2", d)
	}
	items, _, _ := s.GetMany(bg, []int64{1})
	if items[0].RecentDemand != 2 {
		t.Fatalf("GetMany demand = %d, want 2", items[0].RecentDemand)
	}
	clock.Advance(31 * time.Minute)
	r3 := reserve(t, s, 1, 1, time.Minute, "")
	if r3.RecentDemandBefore != 0 || get(t, s, 1).RecentDemand != 1 {
		t.Fatalf("demand after the window emptied: before=%d now=%d, want 0 and 1",
			r3.RecentDemandBefore, get(t, s, 1).RecentDemand)
	}
}

func testRestock(t *testing.T, s inventory.Store, clock *Clock) {
	reserve(t, s, 1, 10, time.Minute, "")
	clock.Advance(time.Minute / 2)
	it, err := s.Restock(bg, 1, 500)
	if err != nil {
		t.Fatal(err)
	}
	if it.Available != 500 || it.Reserved != 10 || !it.LastUpdated.Equal(clock.Now()) || it.RecentDemand != 10 {
		t.Fatalf("restocked item = %+v", it)
	}
	wantItem(t, s, 1, 500, 10, 0)
	if _, err := s.Restock(bg, 999, 5); !errors.Is(err, inventory.ErrProductNotFound) {
		t.Fatalf("restock of an unknown product: %v", err)
	}
	if _, err := s.Restock(bg, 1, 0); err != nil {
		t.Fatal(err)
	}
	wantItem(t, s, 1, 0, 10, 0)
}

func testUnknownReservation(t *testing.T, s inventory.Store, _ *Clock) {
	id := inventory.NewReservationID()
	if _, _, err := s.Commit(bg, id); !errors.Is(err, inventory.ErrReservationNotFound) {
		t.Fatalf("Commit unknown: %v", err)
	}
	if _, _, err := s.Release(bg, id); !errors.Is(err, inventory.ErrReservationNotFound) {
		t.Fatalf("Release unknown: %v", err)
	}
}

func testCancelledContext(t *testing.T, s inventory.Store, _ *Clock) {
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, _, err := s.Reserve(ctx, req(1, 1, time.Minute, "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Reserve with a cancelled context: %v, want context.Canceled", err)
	}
	wantItem(t, s, 1, 100, 0, 0) // no work done past the deadline
}

func testConcurrentReserve(t *testing.T, s inventory.Store, _ *Clock) {
	const workers = 1000
	var ok, short atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, err := s.Reserve(bg, req(1, 1, time.Minute, ""))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, inventory.ErrInsufficientStock):
				short.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 100 || short.Load() != workers-100 {
		t.Fatalf("%d reserved, %d insufficient; want exactly 100 and %d", ok.Load(), short.Load(), workers-100)
	}
	wantItem(t, s, 1, 0, 100, 0)
}

// testStorm runs reserve/commit/release/expire concurrently while a watcher checks that
// every snapshot keeps available + held + sold == the initial 100.
func testStorm(t *testing.T, s inventory.Store, clock *Clock) {
	const workers, rounds = 16, 60
	stop := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			it, err := s.Get(bg, 1)
			if err != nil {
				t.Error(err)
				return
			}
			if it.Available+it.Reserved+it.Sold != 100 || it.Available < 0 || it.Reserved < 0 {
				t.Errorf("snapshot breaks conservation: %+v", it)
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				res, _, err := s.Reserve(bg, req(1, int64(1+(w+i)%3), time.Duration(1+i%3)*time.Second, ""))
				if errors.Is(err, inventory.ErrInsufficientStock) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				switch (w + i) % 4 {
				case 0:
					_, _, err = s.Commit(bg, res.ID)
				case 1:
					_, _, err = s.Release(bg, res.ID)
				case 2:
					_, err = inventory.Sweep(bg, s)
				default:
					clock.Advance(700 * time.Millisecond) // let some holds run out
					_, _, err = s.Commit(bg, res.ID)
				}
				if err != nil && !errors.Is(err, inventory.ErrReservationExpired) &&
					!errors.Is(err, inventory.ErrReservationNotPending) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-watcherDone
	clock.Advance(time.Hour)
	if _, err := inventory.Sweep(bg, s); err != nil {
		t.Fatal(err)
	}
	it := get(t, s, 1)
	if it.Reserved != 0 || it.Available+it.Sold != 100 || it.Sold == 0 {
		t.Fatalf("after the storm and a final sweep: %+v (want nothing held, available+sold == 100, some sold)", it)
	}
}
