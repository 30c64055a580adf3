// Package memory is the in-process inventory store (no REDIS_URL): one mutex guards
// all state, so every operation is atomic and the invariants of the Redis scripts
// (stock never negative, each hold settled exactly once) hold trivially.
package memory

import (
	"container/heap"
	"context"
	"sort"
	"sync"
	"time"

	"polyshop/inventory-go/internal/inventory"
)

type demandEntry struct {
	atMs int64
	qty  int64
}

type product struct {
	item   inventory.Item
	demand []demandEntry // reserved events inside the window, oldest first
}

type hold struct {
	res         inventory.Reservation
	idemKey     string
	fingerprint string
	finishedAt  time.Time
}

// expiryQueue is a min-heap of pending holds by expiry time.
type expiryQueue []*hold

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].res.ExpiresAt.Before(q[j].res.ExpiresAt) }
func (q expiryQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *expiryQueue) Push(x any)        { *q = append(*q, x.(*hold)) }
func (q *expiryQueue) Pop() any {
	old := *q
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return h
}

// Store is the in-memory store.
type Store struct {
	now    inventory.Clock
	timing inventory.Timing

	mu         sync.Mutex
	products   map[int64]*product
	warehouses []string
	holds      map[string]*hold
	idem       map[string]*hold
	expiry     expiryQueue
	finished   []*hold // settled holds in settle order, dropped after timing.Retention
}

// New seeds a store from the catalog; now is its clock, and zero timing fields take
// inventory.DefaultTiming.
func New(c inventory.Catalog, now inventory.Clock, timing inventory.Timing) *Store {
	s := &Store{
		now:      now,
		timing:   timing.OrDefault(),
		products: make(map[int64]*product, len(c.Products)),
		holds:    make(map[string]*hold),
		idem:     make(map[string]*hold),
	}
	t := now().UTC()
	for _, w := range c.Warehouses {
		s.warehouses = append(s.warehouses, w.ID)
	}
	for _, p := range c.Products {
		s.products[p.ID] = &product{item: inventory.Item{
			ProductID: p.ID, Available: p.Stock, Warehouse: p.Warehouse, LastUpdated: t,
		}}
	}
	return s
}

// pruneDemand drops reserved events that left the window; the caller holds mu.
func (s *Store) pruneDemand(p *product, nowMs int64) {
	cutoff := nowMs - s.timing.DemandWindow.Milliseconds()
	i := 0
	for i < len(p.demand) && p.demand[i].atMs <= cutoff {
		p.item.RecentDemand -= p.demand[i].qty
		i++
	}
	if i > 0 {
		p.demand = append(p.demand[:0], p.demand[i:]...)
	}
}

func (s *Store) Get(ctx context.Context, productID int64) (inventory.Item, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Item{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[productID]
	if !ok {
		return inventory.Item{}, inventory.ErrProductNotFound
	}
	s.pruneDemand(p, s.now().UnixMilli())
	return p.item, nil
}

func (s *Store) GetMany(ctx context.Context, ids []int64) ([]inventory.Item, []int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nowMs := s.now().UnixMilli()
	items := make([]inventory.Item, 0, len(ids))
	missing := []int64{}
	for _, id := range ids {
		p, ok := s.products[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		s.pruneDemand(p, nowMs)
		items = append(items, p.item)
	}
	return items, missing, nil
}

func (s *Store) Warehouses(ctx context.Context) ([]inventory.WarehouseStock, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byID := make(map[string]*inventory.WarehouseStock, len(s.warehouses))
	out := make([]inventory.WarehouseStock, len(s.warehouses))
	for i, id := range s.warehouses {
		out[i].ID = id
		byID[id] = &out[i]
	}
	for _, p := range s.products {
		w := byID[p.item.Warehouse]
		w.Products++
		w.Available += p.item.Available
		w.Reserved += p.item.Reserved
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *Store) Held(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.products)), nil
}

func (s *Store) Reserve(ctx context.Context, req inventory.ReserveRequest) (inventory.Reservation, bool, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Reservation{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	s.dropFinished(now)
	if req.IdempotencyKey != "" {
		if h, ok := s.idem[req.IdempotencyKey]; ok {
			if h.fingerprint != req.Fingerprint {
				return inventory.Reservation{}, false, inventory.ErrIdempotencyConflict
			}
			s.expireIfDue(h, now)
			// A released or expired hold sells nothing more: the key moves to a new hold.
			if h.res.State == inventory.StateHeld || h.res.State == inventory.StateCommitted {
				return h.res, true, nil
			}
		}
	}
	p, ok := s.products[req.ProductID]
	if !ok {
		return inventory.Reservation{}, false, inventory.ErrProductNotFound
	}
	nowMs := now.UnixMilli()
	s.pruneDemand(p, nowMs)
	if p.item.Available < req.Quantity {
		return inventory.Reservation{}, false, &inventory.InsufficientStockError{ProductID: req.ProductID, Available: p.item.Available}
	}
	id := inventory.NewReservationIDFor(req.ProductID)
	for s.holds[id] != nil {
		id = inventory.NewReservationIDFor(req.ProductID)
	}
	h := &hold{
		res: inventory.Reservation{
			ID: id, ProductID: req.ProductID, Quantity: req.Quantity, State: inventory.StateHeld,
			ExpiresAt:       time.UnixMilli(nowMs + req.TTL.Milliseconds()).UTC(),
			AvailableBefore: p.item.Available, RecentDemandBefore: p.item.RecentDemand,
		},
		idemKey: req.IdempotencyKey, fingerprint: req.Fingerprint,
	}
	p.item.Available -= req.Quantity
	p.item.Reserved += req.Quantity
	p.item.RecentDemand += req.Quantity
	p.item.LastUpdated = now
	p.demand = append(p.demand, demandEntry{atMs: nowMs, qty: req.Quantity})
	s.holds[id] = h
	if req.IdempotencyKey != "" {
		s.idem[req.IdempotencyKey] = h
	}
	heap.Push(&s.expiry, h)
	return h.res, false, nil
}

// settle moves a held hold to a final state; the caller holds mu. Units go back to
// free stock unless the hold was committed (sold).
func (s *Store) settle(h *hold, state string, now time.Time) {
	p := s.products[h.res.ProductID]
	p.item.Reserved -= h.res.Quantity
	if state == inventory.StateCommitted {
		p.item.Sold += h.res.Quantity
	} else {
		p.item.Available += h.res.Quantity
	}
	p.item.LastUpdated = now
	h.res.State = state
	h.finishedAt = now
	s.finished = append(s.finished, h)
	// The heap entry stays until it surfaces; SweepExpired skips holds no longer held.
}

// dropFinished forgets holds settled more than Retention ago, so memory stays bounded
// under load; the caller holds mu.
func (s *Store) dropFinished(now time.Time) {
	i := 0
	for i < len(s.finished) && now.Sub(s.finished[i].finishedAt) > s.timing.Retention {
		h := s.finished[i]
		delete(s.holds, h.res.ID)
		if h.idemKey != "" && s.idem[h.idemKey] == h {
			delete(s.idem, h.idemKey)
		}
		s.finished[i] = nil
		i++
	}
	if i > 0 {
		s.finished = append(s.finished[:0], s.finished[i:]...)
	}
}

// findHold answers the hold id names, forgetting first whatever left retention;
// the caller holds mu.
func (s *Store) findHold(id string, now time.Time) (*hold, error) {
	s.dropFinished(now)
	h, ok := s.holds[id]
	if !ok {
		return nil, inventory.ErrReservationNotFound
	}
	return h, nil
}

// expireIfDue settles a held hold whose TTL has passed; the caller holds mu.
func (s *Store) expireIfDue(h *hold, now time.Time) bool {
	if h.res.State != inventory.StateHeld || now.Before(h.res.ExpiresAt) {
		return false
	}
	s.settle(h, inventory.StateExpired, now)
	return true
}

func (s *Store) Commit(ctx context.Context, id string) (inventory.Settlement, error) {
	return s.transition(ctx, id, inventory.StateCommitted)
}

func (s *Store) Release(ctx context.Context, id string) (inventory.Settlement, error) {
	return s.transition(ctx, id, inventory.StateReleased)
}

func (s *Store) Lookup(ctx context.Context, id string) (inventory.Settlement, error) {
	return s.transition(ctx, id, "")
}

// transition moves a held hold to target (committed or released; "" only looks), with
// the same answers as the Redis scripts: see inventory.Store.
func (s *Store) transition(ctx context.Context, id, target string) (inventory.Settlement, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Settlement{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	h, err := s.findHold(id, now)
	if err != nil {
		return inventory.Settlement{}, err
	}
	st := inventory.Settlement{ExpiredNow: s.expireIfDue(h, now)}
	found := h.res.State
	if found == inventory.StateHeld && target != "" {
		s.settle(h, target, now)
	} else {
		st.Repeated = target != "" && found == target
	}
	st.Reservation = h.res
	return st, inventory.TransitionError(target, found)
}

func (s *Store) Restock(ctx context.Context, productID, available int64) (inventory.Item, error) {
	if err := ctx.Err(); err != nil {
		return inventory.Item{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[productID]
	if !ok {
		return inventory.Item{}, inventory.ErrProductNotFound
	}
	now := s.now().UTC()
	s.pruneDemand(p, now.UnixMilli())
	p.item.Available = available
	p.item.LastUpdated = now
	return p.item, nil
}

func (s *Store) SweepExpired(ctx context.Context, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC()
	s.dropFinished(now)
	n := 0
	for n < limit && len(s.expiry) > 0 && !now.Before(s.expiry[0].res.ExpiresAt) {
		h := heap.Pop(&s.expiry).(*hold)
		if h.res.State == inventory.StateHeld {
			s.settle(h, inventory.StateExpired, now)
			n++
		}
	}
	return n, nil
}

func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

func (s *Store) Close() error { return nil }
