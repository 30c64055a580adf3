// Rebalances 3 -> 4 shards over real shard stores while a router reserves, commits and
// releases through them, then checks every product: units whole, one holder, the new
// ring's owner; every hold the traffic made still answers the state it left it in.
package rebalance_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/rebalance"
	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/storetest"
	"polyshop/inventory-go/internal/testredis"
)

func productIDs(c inventory.Catalog) []int64 {
	out := make([]int64, len(c.Products))
	for i, p := range c.Products {
		out[i] = p.ID
	}
	slices.Sort(out)
	return out
}

func TestRebalanceUnderTraffic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		catalog func(testing.TB) inventory.Catalog
		delay   time.Duration
	}{
		{"ShardCatalog60", func(testing.TB) inventory.Catalog { return storetest.ShardCatalog() }, 3 * time.Millisecond},
		{"Catalog1000", storetest.RealCatalog, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.catalog(t)
			cl := newCluster(t, testredis.Start(t), c, ids(3), ids(4), true)
			all := productIDs(c)
			moved, traffic := rebalanceUnderTraffic(t, cl, all, tc.delay)
			n := cl.checkEnd(all)
			frac := float64(n) / float64(len(all))
			t.Logf("moved %d of %d products (%.1f %%), %d holds with them; traffic: %s", n, len(all), 100*frac, moved.Holds, traffic)
			if moved.Moved != n {
				t.Fatalf("the run reports %d moved, the data %d", moved.Moved, n)
			}
			if frac < 0.20 || frac > 0.30 {
				t.Fatalf("moved %.1f %% of the products, want 20-30 %% (about 1/4)", 100*frac)
			}
			// Once done, a second run has nothing to do.
			again, err := rebalance.Run(bg, cl.config())
			if err != nil || !again.Nothing || again.Epoch != 2 {
				t.Fatalf("second run: %+v %v, want nothing to do at epoch 2", again, err)
			}
			// A moved product at its old shard names the new one, through its handoff
			// record (the old shard's own ring still names itself).
			oldRing, newRing := ring.New(cl.from), ring.New(cl.to)
			for _, p := range all {
				if prev := oldRing.Owner(uint64(p)); prev != newRing.Owner(uint64(p)) {
					_, err := cl.served[prev].Get(bg, p)
					var m *inventory.MisdirectedError
					if !errors.As(err, &m) || m.Owner != newRing.Owner(uint64(p)) {
						t.Fatalf("product %d at its old shard %s: %v", p, prev, err)
					}
				}
			}
		})
	}
}

type trafficStats struct {
	reserved, committed, released, kept, expired, refused atomic.Int64
	follows, moving, twice                                int64
}

func (s *trafficStats) String() string {
	return "reserved " + strconv.FormatInt(s.reserved.Load(), 10) +
		", committed " + strconv.FormatInt(s.committed.Load(), 10) +
		", released " + strconv.FormatInt(s.released.Load(), 10) +
		", left held " + strconv.FormatInt(s.kept.Load(), 10) +
		", left to expire " + strconv.FormatInt(s.expired.Load(), 10) +
		", refused (no stock) " + strconv.FormatInt(s.refused.Load(), 10) +
		"; 421s followed " + strconv.FormatInt(s.follows, 10) +
		", product_moving retried " + strconv.FormatInt(s.moving, 10) +
		", stale 421 twice " + strconv.FormatInt(s.twice, 10)
}

// rebalanceUnderTraffic runs the rebalance while four workers and the shards' sweepers
// run; traffic starts before it and stops after it. Every hold made is then looked up
// through the router and must be in the state the traffic left it in.
func rebalanceUnderTraffic(t *testing.T, cl *cluster, all []int64, delay time.Duration) (rebalance.Result, *trafficStats) {
	t.Helper()
	r := newRouter(cl)
	stats := &trafficStats{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	want := map[string]string{} // hold id -> the state the traffic left it in
	for _, s := range cl.served {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := inventory.Sweep(bg, s); err != nil {
					t.Errorf("sweep: %v", err)
				}
			}
		})
	}
	duringMove := atomic.Bool{}
	opsDuring := atomic.Int64{}
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := all[rng.IntN(len(all))]
				ttl := time.Minute
				fate := rng.IntN(10)
				if fate == 9 {
					ttl = 30 * time.Millisecond // expired by a sweeper or a lookup
				}
				res, err := call(r, p, func(s inventory.Store) (inventory.Reservation, error) {
					res, _, err := s.Reserve(bg, inventory.ReserveRequest{ProductID: p, Quantity: 1, TTL: ttl,
						IdempotencyKey: "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i), Fingerprint: "fp"})
					return res, err
				})
				if duringMove.Load() {
					opsDuring.Add(1)
				}
				if errors.Is(err, inventory.ErrInsufficientStock) {
					stats.refused.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("reserve %d: %v", p, err)
					return
				}
				stats.reserved.Add(1)
				state := inventory.StateHeld
				switch {
				case fate < 5:
					state = inventory.StateCommitted
					_, err = call(r, p, func(s inventory.Store) (inventory.Settlement, error) { return s.Commit(bg, res.ID) })
					stats.committed.Add(1)
				case fate < 8:
					state = inventory.StateReleased
					_, err = call(r, p, func(s inventory.Store) (inventory.Settlement, error) { return s.Release(bg, res.ID) })
					stats.released.Add(1)
				case fate == 8:
					stats.kept.Add(1)
				default:
					state = inventory.StateExpired
					stats.expired.Add(1)
				}
				if err != nil {
					t.Errorf("%s of %s (product %d): %v; %s", state, res.ID, p, err, cl.whereHold(res.ID))
					return
				}
				mu.Lock()
				want[res.ID] = state
				mu.Unlock()
				if duringMove.Load() {
					opsDuring.Add(1)
				}
			}
		})
	}

	time.Sleep(50 * time.Millisecond) // traffic before the move
	cfg := cl.config()
	cfg.StepDelay = delay
	duringMove.Store(true)
	res, err := rebalance.Run(bg, cfg)
	duringMove.Store(false)
	if err == nil {
		time.Sleep(50 * time.Millisecond) // and after it
	}
	close(stop)
	wg.Wait()
	r.close()
	stats.follows, stats.moving, stats.twice = r.follows.Load(), r.moving.Load(), r.twice.Load()
	if err != nil {
		t.Fatalf("rebalance: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	if opsDuring.Load() == 0 {
		t.Fatal("no traffic while the products moved: the test proves nothing")
	}
	time.Sleep(40 * time.Millisecond) // the short holds are all past their TTL

	// Every hold answers, through the router, the state the traffic left it in (a short
	// one is expired now by the lookup if no sweeper got to it).
	r = newRouter(cl)
	defer r.close()
	for rid, state := range want {
		st, err := lookupAnywhere(r, cl, rid)
		if err != nil || st.Reservation.State != state {
			t.Fatalf("hold %s: %+v %v, want %s", rid, st.Reservation, err, state)
		}
	}
	t.Logf("%d calls while the products moved", opsDuring.Load())
	return res, stats
}

// lookupAnywhere looks a hold up through the router by its product, which the
// traffic does not remember: the hold record of any shard names it, and the router
// then goes to that product's owner.
func lookupAnywhere(r *router, cl *cluster, rid string) (inventory.Settlement, error) {
	for _, db := range cl.dbs {
		pid, err := db.HGet(bg, "polyshop:inventory:res:"+rid, "pid").Int64()
		if err == nil {
			return call(r, pid, func(s inventory.Store) (inventory.Settlement, error) { return s.Lookup(bg, rid) })
		}
	}
	return inventory.Settlement{}, inventory.ErrReservationNotFound
}
