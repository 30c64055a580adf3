// Package storetest is the ONE store test suite: every inventory.Store implementation
// (memory, Redis) runs it, so both keep exactly the same semantics.
//
// Time: each backend brings the clock its stores decide by. The memory store gets a
// fake clock that the suite moves by hand; the Redis store decides by Redis's own
// TIME, which a test cannot move, so its clock reads TIME and Advance waits for it.
// Assertions about time are therefore made against what the clock read before and
// after a call (exact for the fake clock, a short interval on Redis), never against
// the calendar or a second clock.
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

// Clock is the clock a backend's stores decide by, as a test drives it.
type Clock interface {
	// Now reads the store's clock (millisecond precision, like the stores).
	Now() time.Time
	// AdvanceTo returns once Now() has reached t (at once if it already has).
	AdvanceTo(t time.Time)
}

// Advance moves c forward by at least d.
func Advance(c Clock, d time.Duration) { c.AdvanceTo(c.Now().Add(d)) }

// FakeClock is a clock the tests move by hand (no sleeping). It starts at the real
// time of its creation, so nothing depends on a calendar date.
type FakeClock struct{ ms atomic.Int64 }

// NewClock starts a fake clock at the current time.
func NewClock() *FakeClock {
	c := &FakeClock{}
	c.ms.Store(time.Now().UnixMilli())
	return c
}

// Now is an inventory.Clock.
func (c *FakeClock) Now() time.Time { return time.UnixMilli(c.ms.Load()).UTC() }

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// AdvanceTo moves the clock to t unless it is already past it.
func (c *FakeClock) AdvanceTo(t time.Time) {
	for {
		cur := c.ms.Load()
		if cur >= t.UnixMilli() || c.ms.CompareAndSwap(cur, t.UnixMilli()) {
			return
		}
	}
}

// Timing is the suite's timing: short, so the Redis half can wait on Redis's real
// clock, and long enough that nothing below depends on the machine being quick.
var Timing = inventory.Timing{DemandWindow: 1500 * time.Millisecond, Retention: 2 * time.Second}

// Backend makes the stores under test.
type Backend struct {
	// Clock answers the clock the backend's stores decide by.
	Clock func(t testing.TB) Clock
	// New builds a fresh, empty store seeded with c. The memory store takes clock as its
	// clock; the Redis store ignores it (it asks Redis).
	New func(t testing.TB, c inventory.Catalog, timing inventory.Timing, clock Clock) inventory.Store
}

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

type env struct {
	s        inventory.Store
	clock    Clock
	seededLo time.Time // the clock before and after the store was seeded
	seededHi time.Time
}

// Run runs the whole suite against the stores of b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e env)
	}{
		{"SeedAndGet", testSeedAndGet},
		{"GetMany", testGetMany},
		{"Warehouses", testWarehouses},
		{"Reserve", testReserve},
		{"Idempotency", testIdempotency},
		{"ReplayAnswersCurrentState", testReplayState},
		{"Commit", testCommit},
		{"Release", testRelease},
		{"Lookup", testLookup},
		{"CommitAfterExpiry", testCommitAfterExpiry},
		{"ReleaseAfterExpiry", testReleaseAfterExpiry},
		{"Retention", testRetention},
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
			clock := b.Clock(t)
			lo := clock.Now()
			s := b.New(t, Catalog(), Timing, clock)
			tc.fn(t, env{s: s, clock: clock, seededLo: lo, seededHi: clock.Now()})
		})
	}
}

var bg = context.Background()

// within fails unless got lies in [lo, hi].
func within(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo) || got.After(hi) {
		t.Fatalf("%s = %v, want within [%v, %v] of the store's clock", what, got, lo, hi)
	}
}

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

// reservedAt is when the store made res: its expiry minus the TTL it was given.
func reservedAt(res inventory.Reservation, ttl time.Duration) time.Time {
	return res.ExpiresAt.Add(-ttl)
}

func req(pid, qty int64, ttl time.Duration, key string) inventory.ReserveRequest {
	return inventory.ReserveRequest{ProductID: pid, Quantity: qty, TTL: ttl, IdempotencyKey: key,
		Fingerprint: fmt.Sprintf("%d|%d|%d", pid, qty, ttl/time.Millisecond)}
}

func wantItem(t *testing.T, s inventory.Store, id, available, reserved, sold int64) {
	t.Helper()
	it := get(t, s, id)
	if it.Available != available || it.Reserved != reserved || it.Sold != sold {
		t.Fatalf("product %d: available/reserved/sold = %d/%d/%d, want %d/%d/%d",
			id, it.Available, it.Reserved, it.Sold, available, reserved, sold)
	}
}

// wantSettled checks a commit/release/lookup answer: its error, the state found, and
// the two flags.
func wantSettled(t *testing.T, what string, st inventory.Settlement, err, wantErr error, state string, repeated, expiredNow bool) {
	t.Helper()
	if !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
		t.Fatalf("%s: error %v, want %v", what, err, wantErr)
	}
	if st.Reservation.State != state || st.Repeated != repeated || st.ExpiredNow != expiredNow {
		t.Fatalf("%s: state %q repeated=%v expiredNow=%v, want %q %v %v",
			what, st.Reservation.State, st.Repeated, st.ExpiredNow, state, repeated, expiredNow)
	}
}

func testSeedAndGet(t *testing.T, e env) {
	it := get(t, e.s, 1)
	if it.ProductID != 1 || it.Available != 100 || it.Reserved != 0 || it.Warehouse != "WH-1" || it.RecentDemand != 0 {
		t.Fatalf("seeded item = %+v", it)
	}
	within(t, "LastUpdated of a seeded product", it.LastUpdated, e.seededLo, e.seededHi)
	if n, err := e.s.Held(bg); err != nil || n != 3 {
		t.Fatalf("Held = %d %v, want the 3 seeded products", n, err)
	}
	if _, err := e.s.Get(bg, 999); !errors.Is(err, inventory.ErrProductNotFound) {
		t.Fatalf("Get(999) error = %v, want ErrProductNotFound", err)
	}
}

func testGetMany(t *testing.T, e env) {
	items, missing, err := e.s.GetMany(bg, []int64{2, 999, 1, 1000})
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

func testWarehouses(t *testing.T, e env) {
	reserve(t, e.s, 1, 10, time.Minute, "")
	ws, err := e.s.Warehouses(bg)
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
	if _, err := e.s.Restock(bg, 2, 50); err != nil {
		t.Fatal(err)
	}
	ws, _ = e.s.Warehouses(bg)
	if ws[1].Available != 50 {
		t.Fatalf("WH-2 available after restock = %d, want 50", ws[1].Available)
	}
}

func testReserve(t *testing.T, e env) {
	s := e.s
	lo := e.clock.Now()
	res := reserve(t, s, 1, 7, 5*time.Minute, "")
	hi := e.clock.Now()
	if !inventory.ValidReservationID(res.ID) {
		t.Fatalf("reservation id %q is not RES-<24 hex>", res.ID)
	}
	if res.ProductID != 1 || res.Quantity != 7 || res.AvailableBefore != 100 || res.RecentDemandBefore != 0 ||
		res.State != inventory.StateHeld {
		t.Fatalf("reservation = %+v", res)
	}
	within(t, "ExpiresAt - TTL", reservedAt(res, 5*time.Minute), lo, hi)
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

func testIdempotency(t *testing.T, e env) {
	s := e.s
	first := reserve(t, s, 1, 4, time.Minute, "order-42")
	Advance(e.clock, 10*time.Millisecond)
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
	// A failed attempt binds nothing: the key works once stock allows it.
	if _, _, err := s.Reserve(bg, req(2, 9, time.Minute, "k2")); !errors.Is(err, inventory.ErrInsufficientStock) {
		t.Fatal(err)
	}
	if _, err := s.Restock(bg, 2, 9); err != nil {
		t.Fatal(err)
	}
	reserve(t, s, 2, 9, time.Minute, "k2")
}

// testReplayState: a replay of a key answers the first hold as it is now while it can
// still sell (held or committed), so a caller whose reserve answer was lost learns what
// became of its hold. Once the hold is released or expired, the same key makes a new
// hold: a retry of a failed attempt, never a second live hold.
func testReplayState(t *testing.T, e env) {
	s := e.s
	first := reserve(t, s, 1, 4, time.Minute, "buy-1")
	if _, err := s.Commit(bg, first.ID); err != nil {
		t.Fatal(err)
	}
	again, replayed, err := s.Reserve(bg, req(1, 4, time.Minute, "buy-1"))
	if err != nil || !replayed || again.ID != first.ID || again.AvailableBefore != 100 || again.State != inventory.StateCommitted {
		t.Fatalf("replay after commit: %+v replayed=%v err=%v", again, replayed, err)
	}
	wantItem(t, s, 1, 96, 0, 4) // sold once

	const ttl = 100 * time.Millisecond
	short := reserve(t, s, 1, 2, ttl, "buy-2")
	e.clock.AdvanceTo(short.ExpiresAt)
	next, replayed, err := s.Reserve(bg, req(1, 2, ttl, "buy-2"))
	if err != nil || replayed || next.ID == short.ID || next.State != inventory.StateHeld || next.AvailableBefore != 96 {
		t.Fatalf("same key after its hold expired: %+v replayed=%v err=%v, want a new hold", next, replayed, err)
	}
	if st, _ := s.Lookup(bg, short.ID); st.Reservation.State != inventory.StateExpired {
		t.Fatalf("the first hold: %+v, want expired", st.Reservation)
	}
	wantItem(t, s, 1, 94, 2, 4) // the expired hold's units came back; one live hold

	released := reserve(t, s, 2, 3, time.Minute, "buy-3")
	if _, err := s.Release(bg, released.ID); err != nil {
		t.Fatal(err)
	}
	renewed, replayed, err := s.Reserve(bg, req(2, 3, time.Minute, "buy-3"))
	if err != nil || replayed || renewed.ID == released.ID {
		t.Fatalf("same key after its hold was released: %+v replayed=%v err=%v", renewed, replayed, err)
	}
	again, replayed, err = s.Reserve(bg, req(2, 3, time.Minute, "buy-3"))
	if err != nil || !replayed || again.ID != renewed.ID {
		t.Fatalf("the key now answers its new hold: %+v replayed=%v err=%v", again, replayed, err)
	}
	wantItem(t, s, 2, 2, 3, 0)
}

func testCommit(t *testing.T, e env) {
	s := e.s
	res := reserve(t, s, 1, 10, time.Minute, "")
	st, err := s.Commit(bg, res.ID)
	wantSettled(t, "Commit", st, err, nil, inventory.StateCommitted, false, false)
	if st.Reservation.ID != res.ID || st.Reservation.Quantity != 10 || st.Reservation.ProductID != 1 {
		t.Fatalf("committed = %+v", st.Reservation)
	}
	wantItem(t, s, 1, 90, 0, 10)
	st, err = s.Commit(bg, res.ID) // a retry whose first answer was lost
	wantSettled(t, "second Commit", st, err, nil, inventory.StateCommitted, true, false)
	st, err = s.Release(bg, res.ID)
	wantSettled(t, "Release of a committed hold", st, err, inventory.ErrReservationCommitted, inventory.StateCommitted, false, false)
	wantItem(t, s, 1, 90, 0, 10) // sold units never come back
}

func testRelease(t *testing.T, e env) {
	s := e.s
	res := reserve(t, s, 1, 10, time.Minute, "")
	st, err := s.Release(bg, res.ID)
	wantSettled(t, "Release", st, err, nil, inventory.StateReleased, false, false)
	wantItem(t, s, 1, 100, 0, 0)
	st, err = s.Release(bg, res.ID)
	wantSettled(t, "second Release", st, err, nil, inventory.StateReleased, true, false)
	wantItem(t, s, 1, 100, 0, 0) // units returned once
	st, err = s.Commit(bg, res.ID)
	wantSettled(t, "Commit of a released hold", st, err, inventory.ErrReservationReleased, inventory.StateReleased, false, false)
	wantItem(t, s, 1, 100, 0, 0)
}

func testLookup(t *testing.T, e env) {
	s := e.s
	res := reserve(t, s, 1, 10, time.Minute, "")
	st, err := s.Lookup(bg, res.ID)
	wantSettled(t, "Lookup of a held hold", st, err, nil, inventory.StateHeld, false, false)
	if st.Reservation.ExpiresAt != res.ExpiresAt || st.Reservation.Quantity != 10 {
		t.Fatalf("lookup = %+v, want %+v", st.Reservation, res)
	}
	if _, err := s.Commit(bg, res.ID); err != nil {
		t.Fatal(err)
	}
	st, err = s.Lookup(bg, res.ID)
	wantSettled(t, "Lookup of a committed hold", st, err, nil, inventory.StateCommitted, false, false)
	const ttl = 100 * time.Millisecond
	short := reserve(t, s, 1, 5, ttl, "")
	e.clock.AdvanceTo(short.ExpiresAt)
	st, err = s.Lookup(bg, short.ID)
	wantSettled(t, "Lookup of an overdue hold", st, err, nil, inventory.StateExpired, false, true)
	wantItem(t, s, 1, 90, 0, 10) // the lookup returned its units
	if n, err := inventory.Sweep(bg, s); err != nil || n != 0 {
		t.Fatalf("sweep after the lookup expired %d (err %v), want 0", n, err)
	}
}

func testCommitAfterExpiry(t *testing.T, e env) {
	s := e.s
	res := reserve(t, s, 1, 10, 100*time.Millisecond, "")
	e.clock.AdvanceTo(res.ExpiresAt) // expiry is inclusive: at ExpiresAt the hold is gone
	st, err := s.Commit(bg, res.ID)
	wantSettled(t, "late Commit", st, err, inventory.ErrReservationExpired, inventory.StateExpired, false, true)
	wantItem(t, s, 1, 100, 0, 0)
	if n, err := inventory.Sweep(bg, s); err != nil || n != 0 {
		t.Fatalf("sweep after a late commit expired %d (err %v), want 0", n, err)
	}
	wantItem(t, s, 1, 100, 0, 0)
	st, err = s.Commit(bg, res.ID)
	wantSettled(t, "Commit of an expired hold", st, err, inventory.ErrReservationExpired, inventory.StateExpired, false, false)
	st, err = s.Release(bg, res.ID)
	wantSettled(t, "Release of an expired hold", st, err, nil, inventory.StateExpired, false, false)
	wantItem(t, s, 1, 100, 0, 0)
}

func testReleaseAfterExpiry(t *testing.T, e env) {
	s := e.s
	res := reserve(t, s, 1, 10, 100*time.Millisecond, "")
	Advance(e.clock, 200*time.Millisecond)
	st, err := s.Release(bg, res.ID)
	wantSettled(t, "late Release", st, err, nil, inventory.StateExpired, false, true)
	wantItem(t, s, 1, 100, 0, 0)
	if n, _ := inventory.Sweep(bg, s); n != 0 {
		t.Fatalf("sweep expired %d, want 0", n)
	}
	wantItem(t, s, 1, 100, 0, 0)
}

// testRetention: a settled hold and its idempotency key are forgotten Retention after
// the hold settled, on the store's clock (Redis expires the keys itself).
func testRetention(t *testing.T, e env) {
	s := e.s
	res := reserve(t, s, 1, 3, time.Minute, "ret-1")
	if _, err := s.Commit(bg, res.ID); err != nil {
		t.Fatal(err)
	}
	settledBy := e.clock.Now()
	Advance(e.clock, Timing.Retention/2)
	if st, err := s.Lookup(bg, res.ID); err != nil || st.Reservation.State != inventory.StateCommitted {
		t.Fatalf("lookup inside retention: %+v %v", st, err)
	}
	e.clock.AdvanceTo(settledBy.Add(Timing.Retention + time.Millisecond))
	if _, err := s.Lookup(bg, res.ID); !errors.Is(err, inventory.ErrReservationNotFound) {
		t.Fatalf("lookup after retention: %v, want ErrReservationNotFound", err)
	}
	// The key is free again: the same key makes a new hold, not a replay.
	again := reserve(t, s, 1, 3, time.Minute, "ret-1")
	if again.ID == res.ID {
		t.Fatalf("key still bound to %s after retention", res.ID)
	}
	wantItem(t, s, 1, 94, 3, 3)
}

func testSweepTwoSweepers(t *testing.T, e env) {
	s := e.s
	const holds = 450 // more than one sweep batch
	const ttl = 1500 * time.Millisecond
	var first, last time.Time
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
		res := reserve(t, s, pid, qty, ttl, "")
		if first.IsZero() {
			first = res.ExpiresAt
		}
		last = res.ExpiresAt
		if pid == 1 && get(t, s, 1).Available < 3 {
			if _, err := s.Restock(bg, 1, 100); err != nil {
				t.Fatal(err)
			}
		}
	}
	longLived := reserve(t, s, 1, 1, time.Hour, "")
	before1, before2 := get(t, s, 1), get(t, s, 2)
	n, err := inventory.Sweep(bg, s)
	if err != nil {
		t.Fatal(err)
	}
	if sweptBy := e.clock.Now(); sweptBy.Before(first) && n != 0 {
		t.Fatalf("a sweep before any TTL ran out expired %d holds", n)
	}
	e.clock.AdvanceTo(last)
	total := atomic.Int64{}
	total.Store(int64(n))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 5 { // each sweeper keeps going: a double expiry would show
				n, err := inventory.Sweep(bg, s)
				if err != nil {
					t.Error(err)
					return
				}
				total.Add(int64(n))
			}
		})
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
	if _, err := s.Commit(bg, longLived.ID); err != nil {
		t.Fatalf("the one-hour hold must survive the sweep: %v", err)
	}
}

// wantDemand reads product 1's recent demand and checks it against want(now): exactly,
// when want agrees at the clock readings before and after the read, else one of the two.
func wantDemand(t *testing.T, e env, what string, want func(now time.Time) int64) {
	t.Helper()
	lo := e.clock.Now()
	d := get(t, e.s, 1).RecentDemand
	items, _, err := e.s.GetMany(bg, []int64{1})
	hi := e.clock.Now()
	if err != nil {
		t.Fatal(err)
	}
	a, b := want(lo), want(hi)
	for _, got := range []int64{d, items[0].RecentDemand} {
		if got != a && got != b {
			t.Fatalf("%s: demand %d, want %d (or %d if the window moved during the read)", what, got, a, b)
		}
	}
}

// units answers n when an event is inside the window, else 0.
func units(inside bool, n int64) int64 {
	if inside {
		return n
	}
	return 0
}

func testRecentDemandWindow(t *testing.T, e env) {
	s := e.s
	w := Timing.DemandWindow
	const ttl = time.Minute
	r1 := reserve(t, s, 1, 3, ttl, "")
	t1 := reservedAt(r1, ttl)
	if _, err := s.Release(bg, r1.ID); err != nil { // released holds still count: they were demand
		t.Fatal(err)
	}
	// An event counts while now < its time + the window.
	in := func(now, at time.Time) bool { return now.Before(at.Add(w)) }
	e.clock.AdvanceTo(t1.Add(w / 2))
	r2 := reserve(t, s, 1, 2, ttl, "")
	t2 := reservedAt(r2, ttl)
	if want := units(in(t2, t1), 3); r2.RecentDemandBefore != want {
		t.Fatalf("RecentDemandBefore = %d, want %d", r2.RecentDemandBefore, want)
	}
	demand := func(now time.Time) int64 { return units(in(now, t1), 3) + units(in(now, t2), 2) }
	wantDemand(t, e, "both events inside the window", demand)
	e.clock.AdvanceTo(t1.Add(w - time.Millisecond))
	wantDemand(t, e, "just inside the window", demand)
	e.clock.AdvanceTo(t1.Add(w)) // the first event is now exactly a window old: out
	wantDemand(t, e, "after the first event left", demand)
	e.clock.AdvanceTo(t2.Add(w))
	r3 := reserve(t, s, 1, 1, ttl, "")
	if r3.RecentDemandBefore != 0 {
		t.Fatalf("demand after the window emptied: before=%d, want 0", r3.RecentDemandBefore)
	}
	t3 := reservedAt(r3, ttl)
	wantDemand(t, e, "one new event", func(now time.Time) int64 {
		return units(in(now, t3), 1)
	})
}

func testRestock(t *testing.T, e env) {
	s := e.s
	reserve(t, s, 1, 10, time.Minute, "")
	Advance(e.clock, 20*time.Millisecond)
	lo := e.clock.Now()
	it, err := s.Restock(bg, 1, 500)
	hi := e.clock.Now()
	if err != nil {
		t.Fatal(err)
	}
	if it.Available != 500 || it.Reserved != 10 {
		t.Fatalf("restocked item = %+v", it)
	}
	within(t, "LastUpdated after restock", it.LastUpdated, lo, hi)
	wantItem(t, s, 1, 500, 10, 0)
	if _, err := s.Restock(bg, 999, 5); !errors.Is(err, inventory.ErrProductNotFound) {
		t.Fatalf("restock of an unknown product: %v", err)
	}
	if _, err := s.Restock(bg, 1, 0); err != nil {
		t.Fatal(err)
	}
	wantItem(t, s, 1, 0, 10, 0)
}

func testUnknownReservation(t *testing.T, e env) {
	id := inventory.NewReservationID()
	if _, err := e.s.Commit(bg, id); !errors.Is(err, inventory.ErrReservationNotFound) {
		t.Fatalf("Commit unknown: %v", err)
	}
	if _, err := e.s.Release(bg, id); !errors.Is(err, inventory.ErrReservationNotFound) {
		t.Fatalf("Release unknown: %v", err)
	}
	if _, err := e.s.Lookup(bg, id); !errors.Is(err, inventory.ErrReservationNotFound) {
		t.Fatalf("Lookup unknown: %v", err)
	}
}

func testCancelledContext(t *testing.T, e env) {
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, _, err := e.s.Reserve(ctx, req(1, 1, time.Minute, "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Reserve with a cancelled context: %v, want context.Canceled", err)
	}
	wantItem(t, e.s, 1, 100, 0, 0) // no work done past the deadline
}

func testConcurrentReserve(t *testing.T, e env) {
	const workers = 1000
	var ok, short atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range workers {
		wg.Go(func() {
			<-start
			_, _, err := e.s.Reserve(bg, req(1, 1, time.Minute, ""))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, inventory.ErrInsufficientStock):
				short.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok.Load() != 100 || short.Load() != workers-100 {
		t.Fatalf("%d reserved, %d insufficient; want exactly 100 and %d", ok.Load(), short.Load(), workers-100)
	}
	wantItem(t, e.s, 1, 0, 100, 0)
}

// testStorm runs reserve/commit/release/expire concurrently while a watcher checks that
// every snapshot keeps available + held + sold == the initial 100. Holds that a worker
// commits or releases live a minute (so the outcome never depends on speed); the others
// live a few milliseconds and run out while the storm goes on.
func testStorm(t *testing.T, e env) {
	s := e.s
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
	var lastExpiry atomic.Int64
	var committed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				mode := (w + i) % 4
				ttl := time.Minute
				if mode >= 2 {
					ttl = time.Duration(10+10*(i%3)) * time.Millisecond
				}
				res, _, err := s.Reserve(bg, req(1, int64(1+(w+i)%3), ttl, ""))
				if errors.Is(err, inventory.ErrInsufficientStock) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if mode >= 2 {
					for cur := lastExpiry.Load(); cur < res.ExpiresAt.UnixMilli() &&
						!lastExpiry.CompareAndSwap(cur, res.ExpiresAt.UnixMilli()); cur = lastExpiry.Load() {
					}
				}
				switch mode {
				case 0:
					_, err = s.Commit(bg, res.ID)
					committed.Add(1)
				case 1:
					_, err = s.Release(bg, res.ID)
				case 2:
					_, err = inventory.Sweep(bg, s)
				default:
					Advance(e.clock, 7*time.Millisecond) // let some holds run out
					_, err = s.Commit(bg, res.ID)
				}
				if err != nil && !errors.Is(err, inventory.ErrReservationExpired) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-watcherDone
	e.clock.AdvanceTo(time.UnixMilli(lastExpiry.Load()))
	if _, err := inventory.Sweep(bg, s); err != nil {
		t.Fatal(err)
	}
	it := get(t, s, 1)
	if it.Reserved != 0 || it.Available+it.Sold != 100 || it.Sold < committed.Load() || committed.Load() == 0 {
		t.Fatalf("after the storm and a final sweep: %+v, %d long holds committed (want nothing held, "+
			"available+sold == 100, at least those sold)", it, committed.Load())
	}
}
