// Package rebalance moves inventory products between shards while they serve
// (services/contracts/ring.md, Rebalance): it opens a journal, moves every product
// whose owner the new ring changes (fence at the old owner, copy to the new one,
// finish at the old one), then writes the new ring record. Every step is idempotent and
// chosen from the data, so running the same rebalance again after a crash ends where
// an uninterrupted run would have. It works on Redis stores only; it has no HTTP.
package rebalance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/store/redis"
)

// ErrUsage: the command line cannot do this rebalance (a shard without a --store, two
// shards on one database); nothing was written.
var ErrUsage = errors.New("bad usage")

// ErrInconsistent: the data is not what any point of the protocol leaves (a product
// held by two shards, fenced for a shard the new ring does not give it to); the
// rebalance stops rather than guess.
var ErrInconsistent = errors.New("inconsistent shard data")

// Config is one rebalance.
type Config struct {
	// Registry is the Redis of the ring record and the journal (REGISTRY_URL).
	Registry *goredis.Options
	// Stores maps every shard of the old and the new ring to its database.
	Stores map[string]*goredis.Options
	// To are the new ring's members.
	To []string
	// StepDelay pauses after each step of a move. Test-only: it widens the windows a
	// crash test kills the process in.
	StepDelay time.Duration
	// Log receives the progress; nil discards it.
	Log *slog.Logger
}

// Result is what a run did.
type Result struct {
	FromEpoch int64
	Epoch     int64 // the ring record's epoch at the end
	From, To  []string
	Resumed   bool // it finished a rebalance an earlier run had started
	Nothing   bool // the record already named the members: nothing to do
	Moved     int  // products this run moved (finished at their old owner)
	Holds     int  // holds this run copied with them
	Held      map[string]int
}

// Run performs (or resumes) the rebalance to cfg.To.
func Run(ctx context.Context, cfg Config) (Result, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	to := ring.New(cfg.To).Names()
	if len(to) == 0 {
		return Result{}, fmt.Errorf("%w: --to names no shard", ErrUsage)
	}
	reg := client(cfg.Registry)
	defer reg.Close()

	p, err := begin(ctx, reg, to, false)
	if err != nil {
		return Result{}, err
	}
	res := Result{FromEpoch: p.fromEpoch, Epoch: p.fromEpoch, From: p.from, To: to, Resumed: p.resume, Nothing: p.nothing}
	if p.nothing {
		log.Info("rebalance: nothing to do", "epoch", p.fromEpoch, "members", strings.Join(to, ","))
		return res, nil
	}
	shards, err := openShards(cfg.Stores, p.from, to)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, m := range shards {
			_ = m.Close()
		}
	}()
	for _, m := range shards {
		if err := m.Prepare(ctx, slices.Contains(p.from, m.ID())); err != nil {
			return res, err
		}
	}
	started, err := begin(ctx, reg, to, true)
	if err != nil {
		return res, err
	}
	if started.fromEpoch != p.fromEpoch || !slices.Equal(started.from, p.from) {
		return res, fmt.Errorf("%w: it was epoch %d %v when planned, epoch %d %v now", ErrRecordChanged,
			p.fromEpoch, p.from, started.fromEpoch, started.from)
	}
	log.Info("rebalance: start", "from_epoch", p.fromEpoch, "from", strings.Join(p.from, ","),
		"to", strings.Join(to, ","), "resumed", p.resume)

	r := &mover{shards: shards, ring: ring.New(to), delay: cfg.StepDelay, log: log}
	for _, m := range shards {
		if err := r.drain(ctx, m, &res); err != nil {
			return res, err
		}
	}
	if res.Held, err = r.verify(ctx); err != nil {
		return res, err
	}
	if res.Epoch, err = complete(ctx, reg, to); err != nil {
		return res, err
	}
	log.Info("rebalance: done", "epoch", res.Epoch, "members", strings.Join(to, ","),
		"moved", res.Moved, "holds", res.Holds, "held", res.Held)
	return res, nil
}

func client(opt *goredis.Options) *goredis.Client {
	o := *opt
	o.DialTimeout = time.Second
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	return goredis.NewClient(&o)
}

// openShards answers a mover for every shard of from and to, sorted by id.
func openShards(stores map[string]*goredis.Options, from, to []string) ([]*redis.Mover, error) {
	ids := ring.New(slices.Concat(from, to)).Names()
	where := map[string]string{}
	var out []*redis.Mover
	for _, id := range ids {
		opt, ok := stores[id]
		if !ok {
			return nil, fmt.Errorf("%w: no --store for shard %s (every shard of the old ring %s and the new ring %s needs one)",
				ErrUsage, id, strings.Join(from, ","), strings.Join(to, ","))
		}
		db := opt.Addr + "/" + strconv.Itoa(opt.DB)
		if other, dup := where[db]; dup {
			return nil, fmt.Errorf("%w: shards %s and %s have the same database %s", ErrUsage, other, id, db)
		}
		where[db] = id
		out = append(out, redis.NewMover(opt, id))
	}
	return out, nil
}

type mover struct {
	shards []*redis.Mover
	ring   *ring.Ring
	delay  time.Duration
	log    *slog.Logger
}

func (r *mover) shard(id string) *redis.Mover {
	for _, m := range r.shards {
		if m.ID() == id {
			return m
		}
	}
	return nil
}

// pause is the test-only step delay.
func (r *mover) pause(ctx context.Context) error {
	if r.delay <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(r.delay):
		return nil
	}
}

// drain moves every product shard a holds that the new ring gives to another shard.
// Every shard is drained, not only the old ring's members: a product is moved from
// where it is held, whatever the old ring says.
func (r *mover) drain(ctx context.Context, a *redis.Mover, res *Result) error {
	indexed, err := a.IndexHolds(ctx)
	if err != nil {
		return err
	}
	held, err := a.Products(ctx)
	if err != nil {
		return err
	}
	slices.SortFunc(held, func(x, y redis.Held) int { return cmp.Compare(x.ProductID, y.ProductID) })
	moved := 0
	for _, h := range held {
		owner := r.ring.Owner(uint64(h.ProductID))
		if h.Moving != "" && h.Moving != owner {
			return fmt.Errorf("%w: product %d at %s is fenced for %s, the new ring gives it to %s",
				ErrInconsistent, h.ProductID, a.ID(), h.Moving, owner)
		}
		if owner == a.ID() {
			continue
		}
		holds, err := r.move(ctx, a, r.shard(owner), h.ProductID)
		if err != nil {
			return err
		}
		moved++
		res.Moved++
		res.Holds += holds
	}
	r.log.Info("rebalance: shard drained", "shard", a.ID(), "held_before", len(held), "moved", moved,
		"holds_indexed", indexed)
	return nil
}

// move takes product id from a to b, or finishes a move an earlier run started. The
// state decides the step: fenced at a and absent at b -> copy; present at b -> finish.
func (r *mover) move(ctx context.Context, a, b *redis.Mover, id int64) (int, error) {
	if err := a.Fence(ctx, id, b.ID()); err != nil {
		return 0, err
	}
	r.log.Debug("rebalance: fenced", "product_id", id, "from", a.ID(), "to", b.ID())
	if err := r.pause(ctx); err != nil {
		return 0, err
	}
	there, err := b.Has(ctx, id)
	if err != nil {
		return 0, err
	}
	holds := 0
	if !there {
		parcel, err := a.Export(ctx, id)
		if err != nil {
			return 0, err
		}
		if _, err := b.Import(ctx, parcel); err != nil {
			return 0, err
		}
		holds = parcel.Holds
		r.log.Debug("rebalance: copied", "product_id", id, "from", a.ID(), "to", b.ID(), "holds", holds)
		if err := r.pause(ctx); err != nil {
			return 0, err
		}
	}
	if _, err := a.Finish(ctx, id, b.ID()); err != nil {
		return 0, err
	}
	r.log.Debug("rebalance: moved", "product_id", id, "from", a.ID(), "to", b.ID(), "holds", holds, "copied", !there)
	return holds, r.pause(ctx)
}

// verify checks the end state before the record names the new ring: every product held
// by exactly one shard, the one the new ring names, and none fenced.
func (r *mover) verify(ctx context.Context) (map[string]int, error) {
	holder := map[int64]string{}
	counts := map[string]int{}
	for _, m := range r.shards {
		held, err := m.Products(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range held {
			if other, dup := holder[h.ProductID]; dup {
				return nil, fmt.Errorf("%w: product %d is held by %s and %s", ErrInconsistent, h.ProductID, other, m.ID())
			}
			if owner := r.ring.Owner(uint64(h.ProductID)); owner != m.ID() || h.Moving != "" {
				return nil, fmt.Errorf("%w: product %d is held by %s (fenced for %q) after the moves, the new ring gives it to %s",
					ErrInconsistent, h.ProductID, m.ID(), h.Moving, owner)
			}
			holder[h.ProductID] = m.ID()
		}
		counts[m.ID()] = len(held)
	}
	return counts, nil
}
