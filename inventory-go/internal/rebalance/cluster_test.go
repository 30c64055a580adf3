// The test cluster: shards inv-0..inv-N-1 on databases 1..N of one real redis-server
// and the ring record in database 0, each shard's store seeded and wrapped as run()
// does it; a router that sends calls like the gateway (the ring record's owner, a 421
// followed once, product_moving retried); and readers of the end state.
package rebalance_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/rebalance"
	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/ringrecord"
	"polyshop/inventory-go/internal/store/redis"
)

var bg = context.Background()

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "inv-" + strconv.Itoa(i)
	}
	return out
}

func dbOpt(opt *goredis.Options, n int) *goredis.Options {
	o := *opt
	o.DB = n
	return &o
}

type cluster struct {
	t        *testing.T
	opt      *goredis.Options
	catalog  inventory.Catalog
	from, to []string
	registry *goredis.Client
	raw      map[string]*redis.Store     // each shard's own store
	served   map[string]inventory.Store  // the same, wrapped by its shard as run() wraps it
	dbs      map[string]*goredis.Client  // each shard's database, for the checks
	stores   map[string]*goredis.Options // the --store of each shard
}

// newCluster seeds the old ring's shards (from) and starts the new ones with the old
// record, as an operator does before a rebalance, so they hold nothing; with
// startNew false their databases are left untouched for the rebalance to claim.
func newCluster(t *testing.T, opt *goredis.Options, c inventory.Catalog, from, to []string, startNew bool) *cluster {
	t.Helper()
	cl := &cluster{t: t, opt: opt, catalog: c, from: from, to: to, raw: map[string]*redis.Store{},
		served: map[string]inventory.Store{}, dbs: map[string]*goredis.Client{}, stores: map[string]*goredis.Options{}}
	cl.registry = goredis.NewClient(dbOpt(opt, 0))
	t.Cleanup(func() { _ = cl.registry.Close() })
	if _, err := ringrecord.Ensure(bg, cl.registry, from); err != nil {
		t.Fatal(err)
	}
	old := ring.New(from)
	for _, id := range ring.New(slices.Concat(from, to)).Names() {
		n, _ := strconv.Atoi(strings.TrimPrefix(id, "inv-"))
		cl.stores[id] = dbOpt(opt, n+1)
		cl.dbs[id] = goredis.NewClient(cl.stores[id])
		t.Cleanup(func() { _ = cl.dbs[id].Close() })
		if !slices.Contains(from, id) && !startNew {
			continue
		}
		cl.start(id, old)
	}
	return cl
}

// start opens shard id's store placed in ring r, as a (re)started shard does.
func (cl *cluster) start(id string, r *ring.Ring) {
	cl.t.Helper()
	shard := inventory.NewShard(id, r, cl.catalog)
	s, err := redis.NewShard(bg, cl.stores[id], shard.Owned(cl.catalog), inventory.DefaultTiming, id)
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.t.Cleanup(func() { _ = s.Close() })
	cl.raw[id], cl.served[id] = s, shard.Serve(s)
}

func (cl *cluster) config() rebalance.Config {
	return rebalance.Config{Registry: dbOpt(cl.opt, 0), Stores: cl.stores, To: cl.to}
}

func (cl *cluster) stock(id int64) int64 {
	for _, p := range cl.catalog.Products {
		if p.ID == id {
			return p.Stock
		}
	}
	cl.t.Fatalf("product %d not in the catalog", id)
	return 0
}

// holders answers, for every product record in any shard's database, the shards that
// hold it.
func (cl *cluster) holders() map[int64][]string {
	cl.t.Helper()
	out := map[int64][]string{}
	for _, id := range slices.Sorted(maps.Keys(cl.dbs)) {
		keys, err := cl.dbs[id].Keys(bg, "polyshop:inventory:product:*").Result()
		if err != nil {
			cl.t.Fatal(err)
		}
		for _, k := range keys {
			p, _ := strconv.ParseInt(strings.TrimPrefix(k, "polyshop:inventory:product:"), 10, 64)
			out[p] = append(out[p], id)
		}
	}
	return out
}

// item reads product p from the database of shard id, with the units of its held holds
// summed from the hold records there.
type item struct {
	available, reserved, sold, heldUnits int64
	fenced                               bool
}

func (cl *cluster) item(id string, p int64) item {
	cl.t.Helper()
	db := cl.dbs[id]
	f, err := db.HGetAll(bg, "polyshop:inventory:product:"+strconv.FormatInt(p, 10)).Result()
	if err != nil {
		cl.t.Fatal(err)
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	it := item{available: n("available"), reserved: n("reserved"), sold: n("sold"), fenced: f["moving"] != ""}
	rids, err := db.ZRange(bg, "polyshop:inventory:holds:"+strconv.FormatInt(p, 10), 0, -1).Result()
	if err != nil {
		cl.t.Fatal(err)
	}
	for _, rid := range rids {
		h, _ := db.HGetAll(bg, "polyshop:inventory:res:"+rid).Result()
		if h["state"] == inventory.StateHeld {
			q, _ := strconv.ParseInt(h["qty"], 10, 64)
			it.heldUnits += q
		}
	}
	return it
}

func (cl *cluster) record() map[string]string {
	v, err := cl.registry.HGetAll(bg, ringrecord.Key).Result()
	if err != nil {
		cl.t.Fatal(err)
	}
	return v
}

func (cl *cluster) journal() map[string]string {
	v, err := cl.registry.HGetAll(bg, rebalance.JournalKey).Result()
	if err != nil {
		cl.t.Fatal(err)
	}
	return v
}

// checkEnd checks the state a finished rebalance leaves: every product of seeded held
// by exactly one shard, the new ring's owner, unfenced, its units whole and its held
// holds summing to its reserved units; the record names the new ring at epoch 2 and
// the journal is done. It answers how many products changed shard.
func (cl *cluster) checkEnd(seeded []int64) int {
	cl.t.Helper()
	newRing, oldRing := ring.New(cl.to), ring.New(cl.from)
	holders := cl.holders()
	moved := 0
	for _, p := range seeded {
		hs := holders[p]
		if len(hs) != 1 {
			cl.t.Fatalf("product %d is held by %v, want exactly one shard", p, hs)
		}
		owner := newRing.Owner(uint64(p))
		if hs[0] != owner {
			cl.t.Fatalf("product %d is held by %s, the new ring gives it to %s", p, hs[0], owner)
		}
		if prev := oldRing.Owner(uint64(p)); prev != owner {
			moved++
			if slices.Contains(cl.from, owner) {
				cl.t.Fatalf("product %d moved from %s to %s, a shard that stays", p, prev, owner)
			}
		}
		it := cl.item(owner, p)
		if it.fenced || it.available+it.reserved+it.sold != cl.stock(p) || it.heldUnits != it.reserved {
			cl.t.Fatalf("product %d at %s: %+v, want unfenced, %d units in all, reserved = held holds",
				p, owner, it, cl.stock(p))
		}
	}
	if len(holders) != len(seeded) {
		cl.t.Fatalf("%d products are held, %d were seeded: none may be invented", len(holders), len(seeded))
	}
	if rec := cl.record(); rec["epoch"] != "2" || rec["members"] != strings.Join(ring.New(cl.to).Names(), ",") {
		cl.t.Fatalf("ring record %v, want epoch 2 members %v", rec, cl.to)
	}
	if j := cl.journal(); j["state"] != rebalance.StateDone || j["from_epoch"] != "1" {
		cl.t.Fatalf("journal %v, want done from epoch 1", j)
	}
	return moved
}

// router sends calls like the gateway: to the owner in the ring record (read every
// 20 ms and after every 421), following a 421 once to the shard it names, retrying
// product_moving after a millisecond.
type router struct {
	cl      *cluster
	ring    atomic.Pointer[ring.Ring]
	stop    chan struct{}
	done    sync.WaitGroup
	follows atomic.Int64 // 421s followed
	moving  atomic.Int64 // product_moving answers retried
	twice   atomic.Int64 // 421 from the named owner too (a stale view): sent again from the start
}

func newRouter(cl *cluster) *router {
	r := &router{cl: cl, stop: make(chan struct{})}
	r.refresh()
	r.done.Go(func() {
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(20 * time.Millisecond):
				r.refresh()
			}
		}
	})
	return r
}

func (r *router) close() { close(r.stop); r.done.Wait() }

func (r *router) refresh() {
	rec, err := r.cl.registry.HGet(bg, ringrecord.Key, "members").Result()
	if err == nil {
		r.ring.Store(ring.New(strings.Split(rec, ",")))
	}
}

// call runs op at the owner of product p until it answers something else than a 421
// or product_moving (at most 5 s).
func call[T any](r *router, p int64, op func(inventory.Store) (T, error)) (T, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		owner := r.ring.Load().Owner(uint64(p))
		v, err := op(r.cl.served[owner])
		var m *inventory.MisdirectedError
		if errors.As(err, &m) {
			r.follows.Add(1)
			r.refresh()
			if s, ok := r.cl.served[m.Owner]; ok {
				v, err = op(s)
			}
			if errors.As(err, &m) {
				r.twice.Add(1)
			}
		}
		switch {
		case errors.Is(err, inventory.ErrProductMoving):
			r.moving.Add(1)
		case errors.Is(err, inventory.ErrMisdirected):
		default:
			return v, err
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("product %d: still %w after 5 s", p, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// whereHold describes the shards that have a hold's record or handoff, for a failure.
func (cl *cluster) whereHold(rid string) string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(cl.dbs)) {
		h, _ := cl.dbs[id].HGetAll(bg, "polyshop:inventory:res:"+rid).Result()
		to, _ := cl.dbs[id].Get(bg, "polyshop:inventory:handoff:res:"+rid).Result()
		if len(h) > 0 || to != "" {
			out = append(out, fmt.Sprintf("%s: hold %v, handoff to %q", id, h, to))
		}
	}
	return "hold found at " + fmt.Sprint(out)
}
