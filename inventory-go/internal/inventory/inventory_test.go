// Tests of the domain helpers: catalog lookup and checks, reservation ids, the sweeper loop.
package inventory_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/store/memory"
	"polyshop/inventory-go/internal/storetest"
)

func TestFindAndLoadTheRealCatalog(t *testing.T) {
	path, err := inventory.FindCatalog(".") // from inventory-go/internal/inventory, two levels below the root
	if err != nil {
		t.Fatal(err)
	}
	c, err := inventory.LoadCatalog(path)
	if err != nil {
		t.Fatal(err)
	}
	var p123 inventory.Product
	for _, p := range c.Products {
		if p.ID == 123 {
			p123 = p
		}
	}
	if len(c.Products) < 100 || len(c.Warehouses) == 0 || p123.Stock != 223 || p123.Warehouse != "WH-4" {
		t.Fatalf("catalog: %d products, product 123 = %+v", len(c.Products), p123)
	}
}

func TestFindCatalogMissing(t *testing.T) {
	if _, err := inventory.FindCatalog(t.TempDir()); err == nil {
		t.Fatal("FindCatalog in an empty tree must fail")
	}
}

func TestLoadCatalogRejectsBadData(t *testing.T) {
	for name, body := range map[string]string{
		"not json":          `{`,
		"unknown warehouse": `{"warehouses":[{"id":"WH-1"}],"products":[{"id":1,"stock":1,"warehouse":"WH-9"}]}`,
		"negative stock":    `{"warehouses":[{"id":"WH-1"}],"products":[{"id":1,"stock":-1,"warehouse":"WH-1"}]}`,
		"id zero":           `{"warehouses":[{"id":"WH-1"}],"products":[{"id":0,"stock":1,"warehouse":"WH-1"}]}`,
		"duplicate id":      `{"warehouses":[{"id":"WH-1"}],"products":[{"id":1,"stock":1,"warehouse":"WH-1"},{"id":1,"stock":2,"warehouse":"WH-1"}]}`,
	} {
		p := filepath.Join(t.TempDir(), "products.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := inventory.LoadCatalog(p); err == nil {
			t.Errorf("%s: LoadCatalog accepted it", name)
		}
	}
}

func TestReservationIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := inventory.NewReservationID()
		if !inventory.ValidReservationID(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "RES-", "RES-0123456789ABCDEF01234567", "XYZ-0123456789abcdef01234567",
		"RES-0123456789abcdef0123456", "RES-0123456789abcdef012345678", "RES-0123456789abcdef0123456g"} {
		if inventory.ValidReservationID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestReservationIDsNameTheirProduct(t *testing.T) {
	for _, pid := range []int64{1, 7, 123, 65_536, inventory.MaxProductID} {
		id := inventory.NewReservationIDFor(pid)
		got, ok := inventory.ReservationProduct(id)
		if !inventory.ValidReservationID(id) || !ok || got != pid {
			t.Fatalf("id %q for product %d: valid %v, names %d %v", id, pid, inventory.ValidReservationID(id), got, ok)
		}
		// One changed digit anywhere fails the check (or the bounds).
		for i := len(inventory.ReservationTag); i < len(id); i++ {
			b := []byte(id)
			b[i] = "0123456789abcdef"[(strings.IndexByte("0123456789abcdef", b[i])+1)%16]
			if p, ok := inventory.ReservationProduct(string(b)); ok && p == pid {
				t.Fatalf("%q (digit %d changed) still names product %d", b, i, pid)
			}
		}
	}
	for _, other := range []string{"RES-5f0c2e9a1b7d4c3e8a6f0b12", "RES-000000000000000000000000", "RES-garbage"} {
		if p, ok := inventory.ReservationProduct(other); ok {
			t.Fatalf("%q names product %d", other, p)
		}
	}
}

// TestRunSweeperReturnsUnits drives the real loop (short interval) with a fake clock;
// it waits for the effect, bounded, and asserts no timing.
func TestRunSweeperReturnsUnits(t *testing.T) {
	clock := storetest.NewClock()
	s := memory.New(storetest.Catalog(), clock.Now, inventory.DefaultTiming)
	for range 3 {
		if _, _, err := s.Reserve(context.Background(), inventory.ReserveRequest{ProductID: 1, Quantity: 2, TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	var expired atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		inventory.RunSweeper(ctx, s, 5*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)),
			func(n int) { expired.Add(int64(n)) })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for expired.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	it, _ := s.Get(context.Background(), 1)
	if expired.Load() != 3 || it.Available != 100 || it.Reserved != 0 {
		t.Fatalf("sweeper expired %d holds, product %+v", expired.Load(), it)
	}
	if !strings.HasPrefix(inventory.NewReservationID(), inventory.ReservationTag) {
		t.Fatal("tag")
	}
}
