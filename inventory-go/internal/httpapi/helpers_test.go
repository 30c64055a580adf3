// Test helpers: a Server on either store (memory, or a real redis-server) with a fake
// clock and a captured log, and assertions on the shared error JSON.
package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/storetest"
	"polyshop/inventory-go/internal/testredis"
)

const adminToken = "s3cret-token"

var (
	catalogOnce sync.Once
	catalog     inventory.Catalog
	catalogErr  error
)

func seedCatalog(t testing.TB) inventory.Catalog {
	t.Helper()
	catalogOnce.Do(func() {
		var path string
		if path, catalogErr = inventory.FindCatalog("."); catalogErr == nil {
			catalog, catalogErr = inventory.LoadCatalog(path)
		}
	})
	if catalogErr != nil {
		t.Fatal(catalogErr)
	}
	return catalog
}

func testConfig() config.Config {
	return config.Config{Port: 0, Env: "dev", LogLevel: "debug", AdminToken: adminToken, MaxBodyBytes: 1024,
		ReservationTTL: 300 * time.Second, InstanceID: "test-1"}
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	srv   *Server
	store inventory.Store
	clock storetest.Clock
	logs  *syncBuffer
	// seeded brackets the store's creation on its clock; before/after bracket the last
	// request sent with do, for checks of the times an answer carries.
	seededLo, seededHi time.Time
	before, after      time.Time
}

// backend is a named storetest backend.
type backend struct {
	name string
	storetest.Backend
}

// backends answers the memory store and, when redis-server is there (always in CI), Redis.
func backends(t testing.TB) []backend {
	return []backend{{"memory", storetest.Memory()}, {"redis", storetest.Redis(testredis.Start(t))}}
}

func newEnv(t testing.TB, b backend, mods ...func(*config.Config)) *env {
	cfg := testConfig()
	for _, m := range mods {
		m(&cfg)
	}
	clock := b.Clock(t)
	lo := clock.Now()
	store := b.New(t, seedCatalog(t), inventory.DefaultTiming, clock)
	logs := &syncBuffer{}
	srv := New(Deps{Store: store, Warehouses: seedCatalog(t).Warehouses, Config: cfg, Logger: NewLogger(logs, cfg.LogLevel)})
	return &env{srv: srv, store: store, clock: clock, logs: logs, seededLo: lo, seededHi: clock.Now()}
}

// within fails unless got lies in [lo, hi] on the store's clock.
func within(t testing.TB, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo) || got.After(hi) {
		t.Fatalf("%s = %v, want within [%v, %v]", what, got, lo, hi)
	}
}

type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request; a non-empty body goes as application/json unless headers say otherwise.
func (e *env) do(t testing.TB, method, path, body string, headers ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.send(t, req)
}

func (e *env) send(t testing.TB, req *http.Request) response {
	t.Helper()
	rec := httptest.NewRecorder()
	if e.clock != nil {
		e.before = e.clock.Now()
	}
	e.srv.ServeHTTP(rec, req)
	if e.clock != nil {
		e.after = e.clock.Now()
	}
	res := response{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(res.raw, &res.body); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v: %s", req.Method, req.URL, err, res.raw)
		}
	}
	return res
}

// wantError checks the shared error JSON: code, status, message, request id echoed,
// details only on 400/422, Retry-After on 503.
func wantError(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.raw)
	}
	if len(r.body) != 1 {
		t.Fatalf("error body must hold only \"error\": %s", r.raw)
	}
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object: %s", r.raw)
	}
	if e["code"] != code {
		t.Fatalf("code = %v, want %s; body %s", e["code"], code, r.raw)
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Fatalf("empty message: %s", r.raw)
	}
	if rid, _ := e["request_id"].(string); rid == "" || rid != r.header.Get("X-Request-Id") {
		t.Fatalf("request_id %q does not echo X-Request-Id %q", rid, r.header.Get("X-Request-Id"))
	}
	if want := codeStatus[Code(code)]; want != status {
		t.Fatalf("code %s has status %d in the table, answered %d", code, want, status)
	}
	if _, has := e["details"]; has && status != 400 && status != 422 {
		t.Fatalf("details on a %d: %s", status, r.raw)
	}
	if status == 400 || status == 422 {
		d, _ := e["details"].([]any)
		if len(d) == 0 {
			t.Fatalf("a %d needs details: %s", status, r.raw)
		}
	}
	if (status == 503 || status == 429) && r.header.Get("Retry-After") != "1" {
		t.Fatalf("a %d needs Retry-After: %v", status, r.header)
	}
}

// detailFields lists details[].field of an error body.
func detailFields(r response) []string {
	e, _ := r.body["error"].(map[string]any)
	d, _ := e["details"].([]any)
	var out []string
	for _, x := range d {
		m, _ := x.(map[string]any)
		f, _ := m["field"].(string)
		out = append(out, f)
	}
	return out
}

func num(t testing.TB, v any) int64 {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%v is not a number", v)
	}
	return int64(f)
}
