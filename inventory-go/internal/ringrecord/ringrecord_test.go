// Tests of the ring record on a real redis-server: created once (also under a race),
// never overwritten, and a damaged record refused rather than read as an empty ring.
package ringrecord

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/testredis"
)

func client(t *testing.T) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(testredis.Start(t))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestCreatedOnceThenRead(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	rec, err := Ensure(ctx, rdb, []string{"inv-1", " inv-0", "inv-1", ""})
	if err != nil || !rec.Created || rec.Epoch != 1 || !slices.Equal(rec.Members, []string{"inv-0", "inv-1"}) {
		t.Fatalf("first Ensure: %+v %v", rec, err)
	}
	stored, err := rdb.HGetAll(ctx, Key).Result()
	if err != nil || len(stored) != 2 || stored["epoch"] != "1" || stored["members"] != "inv-0,inv-1" {
		t.Fatalf("stored record %v %v, want {epoch: 1, members: inv-0,inv-1}", stored, err)
	}
	// Later starts read it, whatever their own INVENTORY_SHARDS say.
	rec, err = Ensure(ctx, rdb, []string{"inv-0", "inv-1", "inv-2"})
	if err != nil || rec.Created || rec.Epoch != 1 || !slices.Equal(rec.Members, []string{"inv-0", "inv-1"}) {
		t.Fatalf("second Ensure: %+v %v, want the first record read back", rec, err)
	}
	// A rebalance changed it: a start reads the change.
	if err := rdb.HSet(ctx, Key, "epoch", 2, "members", "inv-0,inv-1,inv-2").Err(); err != nil {
		t.Fatal(err)
	}
	rec, err = Ensure(ctx, rdb, []string{"inv-0", "inv-1"})
	if err != nil || rec.Created || rec.Epoch != 2 || !slices.Equal(rec.Members, []string{"inv-0", "inv-1", "inv-2"}) {
		t.Fatalf("after a rebalance: %+v %v", rec, err)
	}
}

func TestConcurrentStartsCreateOneRecord(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	const starts = 16
	recs := make([]Record, starts)
	errs := make([]error, starts)
	var wg sync.WaitGroup
	for i := range starts {
		wg.Go(func() {
			// each start lists different members, so a second writer would show
			recs[i], errs[i] = Ensure(ctx, rdb, []string{"inv-0", string(rune('a' + i))})
		})
	}
	wg.Wait()
	created := 0
	for i := range starts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if recs[i].Created {
			created++
		}
		if !slices.Equal(recs[i].Members, recs[0].Members) || recs[i].Epoch != 1 {
			t.Fatalf("start %d saw %+v, start 0 %+v", i, recs[i], recs[0])
		}
	}
	if created != 1 {
		t.Fatalf("%d starts created the record, want exactly 1", created)
	}
}

func TestBadRecordRefused(t *testing.T) {
	ctx := context.Background()
	rdb := client(t)
	for _, bad := range []map[string]any{
		{"members": "inv-0"},                 // no epoch
		{"epoch": "0", "members": "inv-0"},   // epoch starts at 1
		{"epoch": "x", "members": "inv-0"},   // not an integer
		{"epoch": "3", "members": " , "},     // no members
		{"epoch": "3", "other": "something"}, // no members field
	} {
		rdb.Del(ctx, Key)
		if err := rdb.HSet(ctx, Key, bad).Err(); err != nil {
			t.Fatal(err)
		}
		if rec, err := Ensure(ctx, rdb, []string{"inv-0"}); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("record %v: %+v %v, want a bad-record error", bad, rec, err)
		}
	}
	if _, err := Ensure(ctx, rdb, nil); err == nil {
		t.Fatal("Ensure with no members")
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	if _, err := Ensure(context.Background(), rdb, []string{"inv-0"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Redis down: %v, want ErrUnavailable", err)
	}
}
