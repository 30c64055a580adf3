// Tests of the service lifetime: run() serves on the configured port, drains an
// in-flight request on shutdown, and reports bad config as config.Error (exit 2).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/inventory"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// startRun runs run()'s body in a goroutine on vars (PORT is picked when unset) and clock,
// and waits until it listens. It answers the base URL, the log (also copied to logs when
// that is not nil) and stop, which ends the run, waits and answers run's error. Cleanup
// stops a run the test left going, and an error then fails the test.
func startRun(t *testing.T, vars map[string]string, clock inventory.Clock, logs io.Writer) (base string, log *lockedBuffer, stop func() error) {
	t.Helper()
	if vars["PORT"] == "" {
		vars["PORT"] = freePort(t)
	}
	log = &lockedBuffer{}
	out := io.Writer(log)
	if logs != nil {
		out = io.MultiWriter(log, logs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runWith(ctx, func(k string) string { return vars[k] }, out, ready, clock) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run ended before it listened: %v\n%s", err, log.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("not listening after 30 s:\n%s", log.String())
	}
	stop = sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("run (PORT %s): %v", vars["PORT"], err)
		}
	})
	return "http://127.0.0.1:" + vars["PORT"], log, stop
}

type answer struct {
	status int
	owner  string
	body   map[string]any
}

// call makes one request (a JSON body when body is not empty) and answers its status, its
// X-Shard-Owner and its JSON body.
func call(t *testing.T, method, url, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, owner: resp.Header.Get("X-Shard-Owner")}
	if err := json.NewDecoder(resp.Body).Decode(&a.body); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return a
}

func TestRunServesAndDrains(t *testing.T) {
	base, logs, stop := startRun(t, map[string]string{"FAULT_DELAY_MS": "500", "ADMIN_TOKEN": "secret-x"}, time.Now, nil)
	resp, err := http.Get(base + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()

	// A slow request (FAULT_DELAY_MS) is in flight when the shutdown starts; it must
	// complete with its real answer.
	type result struct {
		status int
		body   string
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/api/inventory/123")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		inflight <- result{status: resp.StatusCode, body: string(b)}
	}()
	// Wait until the request is inside the handler (metrics are not delayed), then stop.
	for waited := time.Duration(0); !strings.Contains(get(t, base+"/metrics"), "\nhttp_server_active_requests 1\n"); waited += 5 * time.Millisecond {
		if waited > 10*time.Second {
			t.Fatal("the slow request never reached the handler")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	r := <-inflight
	if r.err != nil || r.status != 200 || !strings.Contains(r.body, `"available":223`) {
		t.Fatalf("in-flight request during shutdown: %+v", r)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := http.Get(base + "/health"); err == nil {
		t.Fatal("still serving after shutdown")
	}
	out := logs.String()
	for _, want := range []string{`"msg":"config"`, `"msg":"listening"`, `"msg":"shutdown"`, `"admin_token":"***"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(out, "secret-x") {
		t.Error("ADMIN_TOKEN leaked into the log")
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestRunConfigError(t *testing.T) {
	err := run(context.Background(), func(k string) string {
		return map[string]string{"PORT": "80ms"}[k]
	}, io.Discard)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Var != "PORT" {
		t.Fatalf("run with PORT=80ms: %v, want config.Error for PORT", err)
	}
}

func TestRunRedisUnreachable(t *testing.T) {
	port := freePort(t) // nothing listens there
	// run retries Redis for a while (compose may start it late); a signal meanwhile is
	// a clean stop, and the retries are logged as JSON with the password masked.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	logs := &lockedBuffer{}
	err := run(ctx, func(k string) string {
		return map[string]string{"PORT": freePort(t), "REDIS_URL": "redis://:pw@127.0.0.1:" + port + "/0"}[k]
	}, logs)
	if err != nil {
		t.Fatalf("stop while waiting for Redis: %v, want a clean stop", err)
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"redis not reachable yet"`) || strings.Contains(out, ":pw@") {
		t.Fatalf("retry log missing or password leaked: %s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasPrefix(line, `{"ts":`) {
			t.Fatalf("non-JSON log line: %s", line)
		}
	}
}

// TestMainExitsTwo runs the real entry point (this test binary re-executed as main)
// with one bad value: exit 2 and ONE stderr line naming the variable, no secret echoed.
func TestMainExitsTwo(t *testing.T) {
	if os.Getenv("INVENTORY_TEST_MAIN") == "1" {
		main() // exits
		return
	}
	for _, tc := range []struct{ name, value string }{
		{"MAX_BODY_BYTES", "67108865"},
		{"ADMIN_TOKEN", "two words"},
		{"PORT", "+8002"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMainExitsTwo$")
		cmd.Env = []string{"INVENTORY_TEST_MAIN=1", tc.name + "=" + tc.value}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("%s=%q: %v, want exit 2; stderr %s", tc.name, tc.value, err, stderr.String())
		}
		out := stderr.String()
		if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || !strings.Contains(out, tc.name) {
			t.Fatalf("%s=%q: stderr %q, want one line naming %s", tc.name, tc.value, out, tc.name)
		}
		if tc.name == "ADMIN_TOKEN" && strings.Contains(out, tc.value) {
			t.Fatalf("stderr echoes the token: %q", out)
		}
	}
}
