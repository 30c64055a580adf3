// The registry wired into run(): the instance registers once it listens (in REGISTRY_URL's
// Redis, even with the memory store), deregisters when ctx ends, and a registry Redis
// that is not there never stops it from serving.
package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/registry"
	"polyshop/inventory-go/internal/testredis"
)

func TestRunRegistersAndDeregisters(t *testing.T) {
	opt := testredis.Start(t)
	rdb := goredis.NewClient(opt)
	defer rdb.Close()
	port := freePort(t)
	_, logs, stop := startRun(t, map[string]string{
		"PORT": port, "REGISTRY_URL": "redis://" + opt.Addr + "/0",
		"ADVERTISE_URL": "http://inv-1.local:" + port + "/", "INVENTORY_SHARD_ID": " inv-1 ", "INVENTORY_SHARDS": "inv-1",
	}, time.Now, nil)
	var live []registry.Entry
	for range 500 {
		if _, live, _ = registry.List(context.Background(), rdb); len(live) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(live) != 1 {
		t.Fatalf("live %v, want this instance:\n%s", live, logs.String())
	}
	e := live[0]
	if e.Name != "inventory" || e.Language != "go" || e.URL != "http://inv-1.local:"+port ||
		e.Shard == nil || *e.Shard != "inv-1" || len(e.InstanceID) != 16 || e.Version == "" {
		t.Fatalf("entry %+v", e)
	}
	if ts, err := time.Parse(time.RFC3339, e.StartedAt); err != nil || !strings.HasSuffix(e.StartedAt, "Z") || ts.IsZero() {
		t.Fatalf("started_at %q is not RFC 3339 UTC", e.StartedAt)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := rdb.HLen(context.Background(), registry.HashKey).Val() + rdb.ZCard(context.Background(), registry.ExpiryKey).Val(); n != 0 {
		t.Fatalf("%d registry entries left after shutdown", n)
	}
}

func TestRunServesWithoutItsRegistry(t *testing.T) {
	base, logs, stop := startRun(t, map[string]string{
		"REGISTRY_URL": "redis://127.0.0.1:" + freePort(t) + "/0", // nothing there
	}, time.Now, nil)
	for range 500 {
		if strings.Contains(logs.String(), "registry heartbeat failed") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := http.Get(base + "/api/inventory/1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(logs.String(), "registry heartbeat failed") {
		t.Fatalf("status %d with the registry away, logs:\n%s", res.StatusCode, logs.String())
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
