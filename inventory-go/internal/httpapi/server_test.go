// Tests of the shared request pipeline: request ids, trace context, logs, metrics
// counters, store outages, panics.
package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/store/memory"
	"polyshop/inventory-go/internal/store/redis"
	"polyshop/inventory-go/internal/storetest"
	"polyshop/inventory-go/internal/testredis"
)

func memoryBackend(testing.TB) backend { return backend{"memory", storetest.Memory()} }

func TestRequestIDAndTraceContext(t *testing.T) {
	e := newEnv(t, memoryBackend(t))
	r := e.do(t, "GET", "/api/inventory/1", "", "X-Request-Id", "abc-123.x_y",
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if r.header.Get("X-Request-Id") != "abc-123.x_y" {
		t.Fatalf("a sane X-Request-Id must be kept, got %q", r.header.Get("X-Request-Id"))
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", l)
		}
		if m["msg"] == "request" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no access line in %s", e.logs.String())
	}
	want := map[string]any{"level": "info", "service": "inventory", "request_id": "abc-123.x_y",
		"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "method": "GET", "route": "/api/inventory/{id}", "status": float64(200)}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access line %s = %v, want %v", k, line[k], v)
		}
	}
	if span, _ := line["span_id"].(string); len(span) != 16 || span == "00f067aa0ba902b7" {
		t.Errorf("span_id %q must be a new 16-hex span", span)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", line["ts"].(string)); err != nil {
		t.Errorf("ts %v is not RFC 3339 UTC with milliseconds", line["ts"])
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Errorf("duration_ms missing: %v", line)
	}

	for _, bad := range []string{"", "has space", strings.Repeat("a", 129), "semi;colon"} {
		r := e.do(t, "GET", "/api/inventory/1", "", "X-Request-Id", bad)
		if got := r.header.Get("X-Request-Id"); got == bad || len(got) != 32 {
			t.Errorf("X-Request-Id %q must be replaced by a uuid4 hex, got %q", bad, got)
		}
	}
	e.do(t, "GET", "/api/inventory/1", "", "traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	if strings.Contains(e.logs.String(), `"trace_id":"00000000000000000000000000000000"`) {
		t.Error("an all-zero trace id must start a new trace")
	}
}

func TestHealthAndMetricsAreNotAccessLogged(t *testing.T) {
	e := newEnv(t, memoryBackend(t))
	e.do(t, "GET", "/health", "")
	e.do(t, "GET", "/ready", "")
	e.do(t, "GET", "/metrics", "")
	if strings.Contains(e.logs.String(), `"msg":"request"`) {
		t.Fatalf("health/ready/metrics were access-logged: %s", e.logs.String())
	}
	if got := e.do(t, "GET", "/api/stats", ""); num(t, got.body["requests_processed"]) != 0 {
		t.Fatalf("health/ready/metrics counted as processed requests: %s", got.raw)
	}
}

func TestReservationCounters(t *testing.T) {
	e := newEnv(t, memoryBackend(t))
	id := reserveID(t, e, `{"product_id":1,"quantity":1,"idempotency_key":"a"}`)
	e.do(t, "POST", "/api/reservations", `{"product_id":1,"quantity":1,"idempotency_key":"a"}`)
	e.do(t, "POST", "/api/reservations", `{"product_id":1,"quantity":10000}`)
	e.do(t, "POST", "/api/reservations/"+id+"/commit", "")
	id2 := reserveID(t, e, `{"product_id":1,"quantity":1}`)
	e.do(t, "DELETE", "/api/reservations/"+id2, "")
	e.do(t, "DELETE", "/api/reservations/"+id2, "") // a repeat is not a second release
	id3 := reserveID(t, e, `{"product_id":1,"quantity":1,"ttl_seconds":1}`)
	storetest.Advance(e.clock, 2*time.Second)
	e.do(t, "POST", "/api/reservations/"+id3+"/commit", "")
	reserveID(t, e, `{"product_id":1,"quantity":1,"ttl_seconds":1}`)
	storetest.Advance(e.clock, 2*time.Second)
	n, _ := inventory.Sweep(context.Background(), e.store)
	e.srv.CountExpired(n)
	m := e.do(t, "GET", "/metrics", "")
	for _, want := range []string{
		`polyshop_inventory_reservations_total{result="reserved"} 4`,
		`polyshop_inventory_reservations_total{result="replayed"} 1`,
		`polyshop_inventory_reservations_total{result="insufficient"} 1`,
		`polyshop_inventory_reservations_total{result="committed"} 1`,
		`polyshop_inventory_reservations_total{result="released"} 1`,
		`polyshop_inventory_reservations_total{result="expired"} 2`,
	} {
		if !strings.Contains(string(m.raw), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRedisDownIs503(t *testing.T) {
	opt := testredis.Start(t)
	store, err := redis.New(context.Background(), opt, seedCatalog(t), inventory.DefaultTiming)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	logs := &syncBuffer{}
	e := &env{srv: New(Deps{Store: store, Warehouses: seedCatalog(t).Warehouses, Config: testConfig(),
		Logger: NewLogger(logs, "info")}), store: store, logs: logs}
	if r := e.do(t, "GET", "/ready", ""); r.status != 200 {
		t.Fatalf("ready with Redis up: %d", r.status)
	}
	c := goredis.NewClient(opt)
	_ = c.Shutdown(context.Background()).Err()
	_ = c.Close()
	wantError(t, e.do(t, "GET", "/api/inventory/1", ""), 503, "upstream_unavailable")
	wantError(t, e.do(t, "POST", "/api/reservations", `{"product_id":1,"quantity":1}`), 503, "upstream_unavailable")
	if r := e.do(t, "GET", "/health", ""); r.status != 200 {
		t.Fatalf("health must not touch Redis: %d", r.status)
	}
	r := e.do(t, "GET", "/ready", "")
	if r.status != 503 || r.body["status"] != "unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("ready with Redis down: %d %s", r.status, r.raw)
	}
	if strings.Contains(string(r.raw), "refused") || !strings.Contains(logs.String(), `"msg":"store unavailable"`) {
		t.Fatalf("the cause belongs in the log, not the body: %s", r.raw)
	}
}

// panicStore makes Get panic, standing in for a bug.
type panicStore struct{ inventory.Store }

func (panicStore) Get(context.Context, int64) (inventory.Item, error) { panic("boom") }

func TestPanicIs500(t *testing.T) {
	clock := storetest.NewClock()
	logs := &syncBuffer{}
	srv := New(Deps{Store: panicStore{memory.New(seedCatalog(t), clock.Now, inventory.DefaultTiming)}, Warehouses: seedCatalog(t).Warehouses,
		Config: testConfig(), Logger: NewLogger(logs, "info")})
	e := &env{srv: srv, logs: logs}
	r := e.do(t, "GET", "/api/inventory/1", "")
	wantError(t, r, 500, "internal_error")
	if strings.Contains(string(r.raw), "boom") {
		t.Fatalf("panic text leaked: %s", r.raw)
	}
	if !strings.Contains(logs.String(), `"msg":"panic"`) {
		t.Fatal("the panic must be logged")
	}
}

// TestFastAccessLineEqualsSlog: the hand-written access line carries exactly the
// fields, names and values slog would write.
func TestFastAccessLineEqualsSlog(t *testing.T) {
	lines := map[string]map[string]any{}
	for _, fast := range []bool{false, true} {
		clock := storetest.NewClock()
		out := &syncBuffer{}
		d := Deps{Store: memory.New(seedCatalog(t), clock.Now, inventory.DefaultTiming), Warehouses: seedCatalog(t).Warehouses,
			Config: testConfig(), Logger: NewLogger(out, "info")}
		if fast {
			d.AccessLog = out
		}
		e := &env{srv: New(d), logs: out}
		e.do(t, "GET", "/api/inventory/1", "", "X-Request-Id", "same-id",
			"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		var m map[string]any
		if err := json.Unmarshal([]byte(strings.TrimSpace(out.String())), &m); err != nil {
			t.Fatalf("fast=%v: %v: %s", fast, err, out.String())
		}
		for _, k := range []string{"ts", "span_id", "duration_ms"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("fast=%v: no %s", fast, k)
			}
			delete(m, k)
		}
		lines[strconv.FormatBool(fast)] = m
	}
	if fmt.Sprint(lines["true"]) != fmt.Sprint(lines["false"]) {
		t.Fatalf("fast line %v\nslog line %v", lines["true"], lines["false"])
	}
	if got := string(appendJSONString(nil, "a\"b\\c\n\xff")); got != `"a\"b\\c\u000a\u00ff"` {
		t.Fatalf("appendJSONString = %s", got)
	}
}
