// Two inventory replicas on one Redis, one clock an hour behind and one an hour ahead:
// every hold decision is taken on Redis's own clock, so the hold expires once, when
// Redis says, and its key lives exactly the retention on Redis's clock.
package main

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/testredis"
)

// startReplica runs one inventory process body (run's own wiring) on REDIS_URL with its
// clock shifted by skew, and answers its base URL.
func startReplica(t *testing.T, opt *goredis.Options, skew time.Duration) string {
	t.Helper()
	skewed := func() time.Time { return time.Now().Add(skew) }
	base, _, _ := startRun(t, map[string]string{"REDIS_URL": "redis://" + opt.Addr + "/0", "LOG_LEVEL": "warn"}, skewed, nil)
	return base
}

func TestSkewedReplicasExpireHoldsOnceOnRedisTime(t *testing.T) {
	opt := testredis.Start(t)
	clock := testredis.NewClock(t, opt)
	behind := startReplica(t, opt, -time.Hour)
	ahead := startReplica(t, opt, time.Hour)
	before := call(t, "GET", ahead+"/api/inventory/123", "").body

	res := call(t, "POST", behind+"/api/reservations", `{"product_id":123,"quantity":2,"ttl_seconds":2}`).body
	id, _ := res["reservation_id"].(string)
	expires, err := time.Parse(time.RFC3339, res["expires_at"].(string))
	if err != nil || id == "" {
		t.Fatalf("reserve: %v %v", res, err)
	}
	// expires_at is on Redis's clock, not on the replica's (an hour behind).
	if now := clock.Now(); expires.Before(now) || expires.After(now.Add(2*time.Second)) {
		t.Fatalf("expires_at %v is not Redis's now (%v) + 2 s", expires, now)
	}
	// The replica an hour ahead, sweeping every second, must still see it held.
	got := call(t, "GET", ahead+"/api/reservations/"+id, "").body
	if clock.Now().Before(expires) && got["state"] != "held" {
		t.Fatalf("replica an hour ahead sees %v before Redis's expiry", got)
	}
	// Once Redis's clock passes the expiry (plus a sweep), both replicas agree it expired,
	// including the one an hour behind.
	clock.AdvanceTo(expires.Add(1500 * time.Millisecond))
	for _, base := range []string{behind, ahead} {
		if got := call(t, "GET", base+"/api/reservations/"+id, "").body; got["state"] != "expired" {
			t.Fatalf("%s after Redis's expiry: %v", base, got)
		}
	}
	if got := call(t, "GET", behind+"/api/inventory/123", "").body; got["available"] != before["available"] {
		t.Fatalf("units not returned exactly once: before %v, now %v", before, got)
	}
	rdb := goredis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	events, err := rdb.XRange(ctx, "inventory.events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	expiredEvents := 0
	for _, ev := range events {
		if ev.Values["event_id"] == id+":expired" {
			expiredEvents++
		}
	}
	if expiredEvents != 1 {
		t.Fatalf("%d expired events for %s, want exactly 1", expiredEvents, id)
	}
	// The settled hold lives the retention on Redis's clock: a replica clock an hour
	// off would have made it 23 h or 25 h.
	ttl, err := rdb.PTTL(ctx, "polyshop:inventory:res:"+id).Result()
	if err != nil || ttl > inventory.DefaultTiming.Retention || ttl < inventory.DefaultTiming.Retention-time.Minute {
		t.Fatalf("settled hold PTTL %v (%v), want about %v", ttl, err, inventory.DefaultTiming.Retention)
	}
}
