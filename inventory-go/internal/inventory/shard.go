// This file owns "shards own their data" (ring.md, Ownership at a shard): which
// products a shard seeds, and the answer for a product of the catalog it does not hold.
// A product is held iff its stock record exists in this shard's store, so a rebalance
// moves a product by creating its record at the new owner and deleting it at the old
// one (ring.md, Rebalance); the old owner keeps a handoff record naming where it went.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"polyshop/inventory-go/internal/ring"
)

// ErrMisdirected is a product of the catalog (or a hold) that this shard does not hold.
var ErrMisdirected = errors.New("product held by another shard")

// ErrProductMoving: a rebalance has fenced the product to move it to another shard.
// Reads are still served; a write now could land after the copy was taken and be
// lost, so it is refused until the move is finished, moments later (503 + Retry-After).
var ErrProductMoving = errors.New("product is being moved to another shard")

// MisdirectedError names the shard that owns the product (the first such product of
// a batch; More counts the others), or, when ReservationID is set, the shard a hold
// was handed to by a rebalance (ProductID is then 0).
type MisdirectedError struct {
	ProductID     int64
	ReservationID string
	Owner         string
	More          int
}

func (e *MisdirectedError) Error() string {
	if e.ReservationID != "" {
		return fmt.Sprintf("reservation %s is held by shard %s", e.ReservationID, e.Owner)
	}
	return fmt.Sprintf("product %d is held by shard %s", e.ProductID, e.Owner)
}

// Unwrap lets callers test with errors.Is(err, ErrMisdirected).
func (e *MisdirectedError) Unwrap() error { return ErrMisdirected }

// Shard is this inventory's place in the ring.
type Shard struct {
	id      string
	ring    *ring.Ring
	catalog []int64 // the catalog's product ids, sorted: a 404 and a 421 differ by it
}

// NewShard places shard id in ring r over catalog c.
func NewShard(id string, r *ring.Ring, c Catalog) *Shard {
	ids := make([]int64, len(c.Products))
	for i, p := range c.Products {
		ids[i] = p.ID
	}
	slices.Sort(ids)
	return &Shard{id: id, ring: r, catalog: ids}
}

// ID is the shard's name in the ring.
func (s *Shard) ID() string { return s.id }

// Ring is the ring the shard was placed in.
func (s *Shard) Ring() *ring.Ring { return s.ring }

// Owns reports whether the ring gives product id to this shard.
func (s *Shard) Owns(id int64) bool { return s.ring.Owner(uint64(id)) == s.id }

// Owned is the part of c this shard owns: what it seeds when its store is created.
func (s *Shard) Owned(c Catalog) Catalog {
	out := Catalog{Warehouses: c.Warehouses, Products: make([]Product, 0, len(c.Products)/max(s.ring.Len(), 1)+1)}
	for _, p := range c.Products {
		if s.Owns(p.ID) {
			out.Products = append(out.Products, p)
		}
	}
	return out
}

// notHeld is the answer for a product the store does not hold: 404 outside the catalog,
// else the ring's owner. When the ring names this shard itself (its record was lost, or
// a later catalog product was never seeded here) there is no other shard to send the
// caller to, so it stays a 404 rather than a 421 that would point back here.
func (s *Shard) notHeld(id int64) error {
	if _, inCatalog := slices.BinarySearch(s.catalog, id); !inCatalog {
		return ErrProductNotFound
	}
	owner := s.ring.Owner(uint64(id))
	if owner == "" || owner == s.id {
		return ErrProductNotFound
	}
	return &MisdirectedError{ProductID: id, Owner: owner}
}

// Handoffs is implemented by a store a rebalance can move products out of (Redis). It
// remembers where each product and hold it handed over went: until the ring record
// changes, the ring still names this shard as their owner, so without it a request
// that arrives here would answer 404 instead of being sent after them.
type Handoffs interface {
	// ProductHandoffs answers, for the ids among ids that were handed over, the shard
	// each went to.
	ProductHandoffs(ctx context.Context, ids []int64) (map[int64]string, error)
	// HoldHandoff answers the shard hold id was handed to, "" when it was not.
	HoldHandoff(ctx context.Context, id string) (string, error)
}

// Serve wraps st so that it serves only what it holds: a product it does not hold
// answers a MisdirectedError naming the shard it was handed to, else the ring's owner.
// A hold lives where its product is: one a rebalance handed over, or one this shard
// never had whose id names a product held elsewhere, answers a MisdirectedError
// naming that shard.
func (s *Shard) Serve(st Store) Store {
	h, _ := st.(Handoffs)
	return &shardStore{Store: st, shard: s, handoffs: h}
}

type shardStore struct {
	Store
	shard    *Shard
	handoffs Handoffs // nil: the store cannot hand products over (memory)
}

// notHeld is Shard.notHeld after the handoff records: a handoff back to this shard is
// ignored (the product came back; its record is normally deleted then anyway).
func (s *shardStore) notHeld(ctx context.Context, ids []int64) (map[int64]error, error) {
	var to map[int64]string
	if s.handoffs != nil {
		var err error
		if to, err = s.handoffs.ProductHandoffs(ctx, ids); err != nil {
			return nil, err
		}
	}
	out := make(map[int64]error, len(ids))
	for _, id := range ids {
		if owner := to[id]; owner != "" && owner != s.shard.id {
			out[id] = &MisdirectedError{ProductID: id, Owner: owner}
		} else {
			out[id] = s.shard.notHeld(id)
		}
	}
	return out, nil
}

func (s *shardStore) notHeldOne(ctx context.Context, id int64) error {
	errs, err := s.notHeld(ctx, []int64{id})
	if err != nil {
		return err
	}
	return errs[id]
}

func (s *shardStore) Get(ctx context.Context, id int64) (Item, error) {
	it, err := s.Store.Get(ctx, id)
	if errors.Is(err, ErrProductNotFound) {
		return Item{}, s.notHeldOne(ctx, id)
	}
	return it, err
}

// GetMany keeps not_found for ids outside the catalog; one id held elsewhere makes the
// whole batch misdirected, so a router with a stale ring never shows a product as
// missing: it refreshes the ring and splits the batch again.
func (s *shardStore) GetMany(ctx context.Context, ids []int64) ([]Item, []int64, error) {
	items, missing, err := s.Store.GetMany(ctx, ids)
	if err != nil || len(missing) == 0 {
		return items, missing, err
	}
	why, err := s.notHeld(ctx, missing)
	if err != nil {
		return nil, nil, err
	}
	var first *MisdirectedError
	for _, id := range missing {
		var m *MisdirectedError
		if errors.As(why[id], &m) {
			if first == nil {
				first = m
			} else {
				first.More++
			}
		}
	}
	if first != nil {
		return nil, nil, first
	}
	return items, missing, nil
}

func (s *shardStore) Reserve(ctx context.Context, req ReserveRequest) (Reservation, bool, error) {
	res, replayed, err := s.Store.Reserve(ctx, req)
	if errors.Is(err, ErrProductNotFound) {
		return Reservation{}, false, s.notHeldOne(ctx, req.ProductID)
	}
	return res, replayed, err
}

func (s *shardStore) Restock(ctx context.Context, id, available int64) (Item, error) {
	it, err := s.Store.Restock(ctx, id, available)
	if errors.Is(err, ErrProductNotFound) {
		return Item{}, s.notHeldOne(ctx, id)
	}
	return it, err
}

func (s *shardStore) Commit(ctx context.Context, id string) (Settlement, error) {
	return s.settle(ctx, id, s.Store.Commit)
}

func (s *shardStore) Release(ctx context.Context, id string) (Settlement, error) {
	return s.settle(ctx, id, s.Store.Release)
}

func (s *shardStore) Lookup(ctx context.Context, id string) (Settlement, error) {
	return s.settle(ctx, id, s.Store.Lookup)
}

func (s *shardStore) settle(ctx context.Context, id string, op func(context.Context, string) (Settlement, error)) (Settlement, error) {
	st, err := op(ctx, id)
	if !errors.Is(err, ErrReservationNotFound) {
		return st, err
	}
	if s.handoffs != nil {
		to, herr := s.handoffs.HoldHandoff(ctx, id)
		if herr != nil {
			return Settlement{}, herr
		}
		if to != "" && to != s.shard.id {
			return Settlement{}, &MisdirectedError{ReservationID: id, Owner: to}
		}
	}
	// A hold this shard never had, of a product it does not hold: made where the product
	// is (after a rebalance moved it there, say), and its id names the product.
	pid, named := ReservationProduct(id)
	if !named {
		return st, err
	}
	if _, gerr := s.Store.Get(ctx, pid); !errors.Is(gerr, ErrProductNotFound) {
		if gerr != nil {
			return Settlement{}, gerr
		}
		return st, err // the product is here, so the hold does not exist
	}
	var m *MisdirectedError
	if errors.As(s.notHeldOne(ctx, pid), &m) {
		m.ReservationID = id
		return Settlement{}, m
	}
	return st, err
}
