// The registry against a real redis-server: the entry and its expiry (Redis TIME + 6 s,
// read from Redis, never from this machine's clock), the heartbeat, deregistration, the
// skipping and pruning of expired entries, and a Redis outage that heals by itself.
package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/contracttest"
	"polyshop/inventory-go/internal/testredis"
)

func TestScriptIsTheContractsOne(t *testing.T) {
	want, err := os.ReadFile(contracttest.Path(t, "registry.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal([]byte(scriptText), want) {
		t.Fatal("internal/registry/registry.lua differs from services/contracts/registry.lua: copy it again")
	}
}

func redisTimeMs(t *testing.T, rdb *goredis.Client) int64 {
	t.Helper()
	ts, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ts.UnixMilli()
}

func shardEntry(shard string) Entry {
	return Entry{Name: "inventory", InstanceID: NewInstanceID(), URL: "http://127.0.0.1:8002",
		Language: "go", Version: "0.1.0", StartedAt: "2026-12-03T10:00:00Z", Shard: &shard}
}

func newRegistry(t *testing.T, rdb *goredis.Client, e Entry) *Registry {
	t.Helper()
	return New(rdb, e)
}

func TestBeatWritesTheEntryAndItsExpiry(t *testing.T) {
	rdb := goredis.NewClient(testredis.Start(t))
	defer rdb.Close()
	ctx := context.Background()
	e := shardEntry("inv-1")
	r := newRegistry(t, rdb, e)

	before := redisTimeMs(t, rdb)
	expiry, err := r.Beat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := redisTimeMs(t, rdb)
	if expiry < before+6000 || expiry > after+6000 {
		t.Fatalf("expiry %d, want Redis TIME + 6000 in [%d, %d]", expiry, before+6000, after+6000)
	}
	score, err := rdb.ZScore(ctx, ExpiryKey, "inventory/"+e.InstanceID).Result()
	if err != nil || int64(score) != expiry {
		t.Fatalf("zset score %v (%v), want %d", score, err, expiry)
	}
	raw, err := rdb.HGet(ctx, HashKey, "inventory/"+e.InstanceID).Result()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "inventory", "instance_id": e.InstanceID, "url": "http://127.0.0.1:8002",
		"language": "go", "version": "0.1.0", "started_at": "2026-12-03T10:00:00Z", "shard": "inv-1"}
	if len(got) != len(want) {
		t.Fatalf("value %s, want exactly the keys of %v", raw, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v (value %s)", k, got[k], v, raw)
		}
	}

	// An unsharded inventory writes shard null, not a missing key or "".
	e.Shard = nil
	if _, err := newRegistry(t, rdb, e).Beat(ctx); err != nil {
		t.Fatal(err)
	}
	raw = rdb.HGet(ctx, HashKey, e.Field()).Val()
	if !strings.Contains(raw, `"shard":null`) {
		t.Fatalf("unsharded value %s, want shard null", raw)
	}
}

func TestRunRefreshesAndDeregisterRemovesBoth(t *testing.T) {
	rdb := goredis.NewClient(testredis.Start(t))
	defer rdb.Close()
	ctx, stop := context.WithCancel(context.Background())
	r := newRegistry(t, rdb, shardEntry("inv-0"))
	field := r.Entry().Field()
	var done sync.WaitGroup
	done.Go(func() { r.Run(ctx, 20*time.Millisecond, slog.New(slog.DiscardHandler)) })

	first := waitScore(t, rdb, field, 0)
	// The next beat scores later: Redis's clock moved on.
	waitScore(t, rdb, field, first)
	stop()
	done.Wait()
	if err := r.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rdb.HExists(context.Background(), HashKey, field).Val(); n {
		t.Fatal("hash field still there after Deregister")
	}
	if err := rdb.ZScore(context.Background(), ExpiryKey, field).Err(); !errors.Is(err, goredis.Nil) {
		t.Fatalf("zset member still there after Deregister: %v", err)
	}
}

// waitScore polls until field's expiry is above `above` and answers it.
func waitScore(t *testing.T, rdb *goredis.Client, field string, above int64) int64 {
	t.Helper()
	for range 500 {
		if s, err := rdb.ZScore(context.Background(), ExpiryKey, field).Result(); err == nil && int64(s) > above {
			return int64(s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never scored above %d", field, above)
	return 0
}

func TestListSkipsAndBeatPrunesExpiredEntries(t *testing.T) {
	rdb := goredis.NewClient(testredis.Start(t))
	defer rdb.Close()
	ctx := context.Background()
	b := newRegistry(t, rdb, Entry{Name: "pricing", InstanceID: "b", Language: "rust"})
	a := newRegistry(t, rdb, Entry{Name: "pricing", InstanceID: "a", Language: "rust"})
	g := newRegistry(t, rdb, Entry{Name: "gateway", InstanceID: "z", Language: "python"})
	for _, r := range []*Registry{b, a, g} {
		if _, err := r.Beat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// An instance that died without deregistering: its expiry is behind Redis's clock.
	dead := `{"name":"inventory","instance_id":"dead","url":"http://x","language":"go","version":"0","started_at":"2026-01-01T00:00:00Z","shard":null}`
	rdb.HSet(ctx, HashKey, "inventory/dead", dead)
	rdb.ZAdd(ctx, ExpiryKey, goredis.Z{Score: float64(redisTimeMs(t, rdb) - 1), Member: "inventory/dead"})

	now, live, err := List(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range live {
		got = append(got, e.Field())
	}
	if strings.Join(got, ",") != "gateway/z,pricing/a,pricing/b" {
		t.Fatalf("live %v, want gateway/z, pricing/a, pricing/b (sorted, without the expired one)", got)
	}
	if now < redisTimeMs(t, rdb)-60_000 || now > redisTimeMs(t, rdb) {
		t.Fatalf("list clock %d is not Redis's", now)
	}
	if _, err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if rdb.HExists(ctx, HashKey, "inventory/dead").Val() || rdb.ZScore(ctx, ExpiryKey, "inventory/dead").Err() == nil {
		t.Fatal("a beat left the expired entry in place")
	}
}

// TestRunOutlivesARedisOutage: while Redis is unreachable the loop logs once and keeps
// going; when Redis is back (here with its data lost), the next beat registers again.
func TestRunOutlivesARedisOutage(t *testing.T) {
	opt := testredis.Start(t)
	admin := goredis.NewClient(opt)
	defer admin.Close()
	var down atomic.Bool
	var refused atomic.Int64 // dials refused while down: each failed beat makes some
	o := *opt
	o.MaxRetries = -1
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			refused.Add(1)
			return nil, errors.New("test: redis is down")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	rdb := goredis.NewClient(&o)
	defer rdb.Close()
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	r := newRegistry(t, rdb, shardEntry("inv-2"))
	ctx, stop := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() { r.Run(ctx, 20*time.Millisecond, log) })
	defer func() { stop(); done.Wait() }()
	waitScore(t, admin, r.Entry().Field(), 0)

	down.Store(true)
	admin.FlushAll(context.Background())
	admin.ClientKillByFilter(context.Background(), "TYPE", "normal", "SKIPME", "yes")
	waitLog(t, &logs, "registry heartbeat failed")
	// Beats go on failing (a dial or more each): still one line for the outage.
	at := refused.Load()
	for range 1000 {
		if refused.Load() > at+10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "registry heartbeat failed"); n != 1 {
		t.Fatalf("%d failure lines for one outage, want 1:\n%s", n, logs.String())
	}
	down.Store(false)
	waitScore(t, admin, r.Entry().Field(), 0)
	waitLog(t, &logs, "registry heartbeat restored")
}

func waitLog(t *testing.T, logs *syncBuffer, msg string) {
	t.Helper()
	for range 500 {
		if strings.Contains(logs.String(), msg) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q in the log:\n%s", msg, logs.String())
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
