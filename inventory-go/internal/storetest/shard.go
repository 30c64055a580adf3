// This file owns the ownership half of the suite: a shard's store, seeded with what the
// ring gives it and wrapped by inventory.Shard.Serve, serves exactly the products it
// holds and names the owner of every other catalog product, on both backends.
package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/ring"
)

// ShardCatalog is 60 products (stock = id) over the suite's two warehouses.
func ShardCatalog() inventory.Catalog {
	c := Catalog()
	c.Products = nil
	for id := int64(1); id <= 60; id++ {
		wh := "WH-1"
		if id%2 == 0 {
			wh = "WH-2"
		}
		c.Products = append(c.Products, inventory.Product{ID: id, Stock: id, Warehouse: wh})
	}
	return c
}

// RunShard runs the ownership tests against the stores of b.
func RunShard(t *testing.T, b Backend) {
	r := ring.New([]string{"inv-a", "inv-b", "inv-c"})
	c := ShardCatalog()
	shard := inventory.NewShard("inv-a", r, c)
	owned := shard.Owned(c)
	var mine, theirs []int64
	for _, p := range c.Products {
		if r.Owner(uint64(p.ID)) == "inv-a" {
			mine = append(mine, p.ID)
		} else {
			theirs = append(theirs, p.ID)
		}
	}
	if len(mine) < 2 || len(theirs) < 2 || len(owned.Products) != len(mine) {
		t.Fatalf("the test catalog must split: inv-a owns %v, Owned %d", mine, len(owned.Products))
	}
	newShard := func(t *testing.T, seed inventory.Catalog) inventory.Store {
		clock := b.Clock(t)
		return shard.Serve(b.New(t, seed, Timing, clock))
	}
	wantMisdirected := func(t *testing.T, what string, err error, id int64, more int) {
		t.Helper()
		var m *inventory.MisdirectedError
		if !errors.As(err, &m) || !errors.Is(err, inventory.ErrMisdirected) {
			t.Fatalf("%s: error %v, want a MisdirectedError", what, err)
		}
		if m.ProductID != id || m.Owner != r.Owner(uint64(id)) || m.More != more {
			t.Fatalf("%s: %+v, want product %d owner %s more %d", what, *m, id, r.Owner(uint64(id)), more)
		}
	}

	t.Run("ServesWhatItHolds", func(t *testing.T) {
		s := newShard(t, owned)
		for _, id := range mine {
			if it := get(t, s, id); it.Available != id {
				t.Fatalf("product %d: %+v", id, it)
			}
		}
		for _, id := range theirs {
			_, err := s.Get(bg, id)
			wantMisdirected(t, "Get of another shard's product", err, id, 0)
		}
		if _, err := s.Get(bg, 999); !errors.Is(err, inventory.ErrProductNotFound) {
			t.Fatalf("Get(999), not in the catalog: %v, want ErrProductNotFound", err)
		}
		held, err := s.Held(bg)
		if err != nil || held != int64(len(mine)) {
			t.Fatalf("Held = %d %v, want %d", held, err, len(mine))
		}
		ws, err := s.Warehouses(bg)
		if err != nil || ws[0].Products+ws[1].Products != int64(len(mine)) {
			t.Fatalf("warehouses count %+v %v, want %d products in all", ws, err, len(mine))
		}
	})

	t.Run("Writes", func(t *testing.T) {
		s := newShard(t, owned)
		_, _, err := s.Reserve(bg, req(theirs[0], 1, time.Minute, ""))
		wantMisdirected(t, "Reserve of another shard's product", err, theirs[0], 0)
		_, err = s.Restock(bg, theirs[0], 5)
		wantMisdirected(t, "Restock of another shard's product", err, theirs[0], 0)
		if _, _, err := s.Reserve(bg, req(999, 1, time.Minute, "")); !errors.Is(err, inventory.ErrProductNotFound) {
			t.Fatalf("Reserve(999): %v, want ErrProductNotFound", err)
		}
		// A hold of its own product is made and settled by id as before.
		res := reserve(t, s, mine[0], 1, time.Minute, "k-1")
		if st, err := s.Commit(bg, res.ID); err != nil || st.Reservation.State != inventory.StateCommitted {
			t.Fatalf("commit: %+v %v", st, err)
		}
		if it, err := s.Restock(bg, mine[1], 7); err != nil || it.Available != 7 {
			t.Fatalf("restock of its own product: %+v %v", it, err)
		}
	})

	t.Run("Batch", func(t *testing.T) {
		s := newShard(t, owned)
		items, missing, err := s.GetMany(bg, []int64{mine[0], 999, mine[1]})
		if err != nil || len(items) != 2 || items[0].ProductID != mine[0] || len(missing) != 1 || missing[0] != 999 {
			t.Fatalf("batch of its own and an unknown id: %+v %v %v", items, missing, err)
		}
		_, _, err = s.GetMany(bg, []int64{mine[0], theirs[1], 999, theirs[0]})
		wantMisdirected(t, "batch with two products of other shards", err, theirs[1], 1)
	})

	t.Run("HoldsOfAnotherShardsProduct", func(t *testing.T) {
		// A hold id names its product: one this shard never had, of a product held
		// elsewhere, is sent there; one of its own products is simply unknown.
		s := newShard(t, owned)
		theirs := inventory.NewReservationIDFor(theirs[0])
		for name, op := range map[string]func(context.Context, string) (inventory.Settlement, error){
			"Commit": s.Commit, "Release": s.Release, "Lookup": s.Lookup} {
			_, err := op(bg, theirs)
			var m *inventory.MisdirectedError
			if !errors.As(err, &m) || m.ReservationID != theirs || m.Owner != r.Owner(uint64(m.ProductID)) || m.Owner == "inv-a" {
				t.Fatalf("%s of a hold of another shard's product: %v, want a MisdirectedError naming its owner", name, err)
			}
		}
		if _, err := s.Commit(bg, inventory.NewReservationIDFor(mine[0])); !errors.Is(err, inventory.ErrReservationNotFound) || errors.Is(err, inventory.ErrMisdirected) {
			t.Fatalf("commit of an unknown hold of its own product: %v, want ErrReservationNotFound", err)
		}
		if _, err := s.Commit(bg, "RES-000000000000000000000000"); !errors.Is(err, inventory.ErrReservationNotFound) {
			t.Fatalf("commit of an unknown hold that names no product: %v", err)
		}
	})

	t.Run("OwnedButNotHeldIsNotFound", func(t *testing.T) {
		// The ring names this shard but its store has no record (never seeded here, or
		// lost): there is no other shard to send the caller to.
		seed := owned
		seed.Products = seed.Products[1:]
		s := newShard(t, seed)
		if _, err := s.Get(bg, mine[0]); !errors.Is(err, inventory.ErrProductNotFound) || errors.Is(err, inventory.ErrMisdirected) {
			t.Fatalf("Get of an owned product it does not hold: %v, want ErrProductNotFound", err)
		}
	})
}
