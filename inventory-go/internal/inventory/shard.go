// This file owns "shards own their data" (ring.md, Ownership at a shard): which
// products a shard seeds, and the answer for a product of the catalog it does not hold.
// A product is held iff its stock record exists in this shard's store, so a rebalance
// moves a product by creating its record at the new owner and deleting it at the old
// one; nothing else has to change.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"polyshop/inventory-go/internal/ring"
)

// ErrMisdirected is a product of the catalog that this shard does not hold.
var ErrMisdirected = errors.New("product held by another shard")

// MisdirectedError names the shard that owns the product (the first such product of
// a batch; More counts the others).
type MisdirectedError struct {
	ProductID int64
	Owner     string
	More      int
}

func (e *MisdirectedError) Error() string {
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

// Serve wraps st so that it serves only what it holds: a product it does not hold
// answers a MisdirectedError naming the owner. Holds (commit, release, lookup by id)
// are untouched: a reservation lives where it was made.
func (s *Shard) Serve(st Store) Store { return &shardStore{Store: st, shard: s} }

type shardStore struct {
	Store
	shard *Shard
}

func (s *shardStore) Get(ctx context.Context, id int64) (Item, error) {
	it, err := s.Store.Get(ctx, id)
	if errors.Is(err, ErrProductNotFound) {
		return Item{}, s.shard.notHeld(id)
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
	var first *MisdirectedError
	for _, id := range missing {
		var m *MisdirectedError
		if errors.As(s.shard.notHeld(id), &m) {
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
		return Reservation{}, false, s.shard.notHeld(req.ProductID)
	}
	return res, replayed, err
}

func (s *shardStore) Restock(ctx context.Context, id, available int64) (Item, error) {
	it, err := s.Store.Restock(ctx, id, available)
	if errors.Is(err, ErrProductNotFound) {
		return Item{}, s.shard.notHeld(id)
	}
	return it, err
}
