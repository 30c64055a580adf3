// This file owns the two backends every store test runs against: the memory store on
// a fake clock, and the Redis store on a real redis-server and Redis's own clock.
package storetest

import (
	"context"
	"strconv"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/store/memory"
	"polyshop/inventory-go/internal/store/redis"
	"polyshop/inventory-go/internal/testredis"
)

// Memory is the memory store on a fake clock the tests move.
func Memory() Backend {
	return Backend{
		Clock: func(testing.TB) Clock { return NewClock() },
		New: func(_ testing.TB, c inventory.Catalog, timing inventory.Timing, clock Clock) inventory.Store {
			return memory.New(c, clock.Now, timing)
		},
	}
}

// Redis is the Redis store on the server opt points at; each New flushes it first.
func Redis(opt *goredis.Options) Backend {
	return Backend{
		Clock: func(t testing.TB) Clock { return testredis.NewClock(t, opt) },
		New: func(t testing.TB, c inventory.Catalog, timing inventory.Timing, _ Clock) inventory.Store {
			t.Helper()
			rdb := goredis.NewClient(opt)
			defer rdb.Close()
			if err := rdb.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			s, err := redis.New(context.Background(), opt, c, timing)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

// MoveAway deletes product id from a Redis store's database as a rebalance does at the
// product's old owner: its record goes, and its warehouse's product count stays true.
func MoveAway(t testing.TB, rdb *goredis.Client, id int64) {
	t.Helper()
	ctx := context.Background()
	key := "polyshop:inventory:product:" + strconv.FormatInt(id, 10)
	wh, err := rdb.HGet(ctx, key, "warehouse").Result()
	if err != nil {
		t.Fatalf("move product %d away: %v", id, err)
	}
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HIncrBy(ctx, "polyshop:inventory:warehouses", wh+":products", -1).Err(); err != nil {
		t.Fatal(err)
	}
}

// RealCatalog is services/catalog/products.json, found from the test's directory.
func RealCatalog(t testing.TB) inventory.Catalog {
	t.Helper()
	path, err := inventory.FindCatalog(".")
	if err != nil {
		t.Fatal(err)
	}
	c, err := inventory.LoadCatalog(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
