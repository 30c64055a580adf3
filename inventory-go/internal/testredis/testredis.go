// Package testredis starts a real redis-server on a free port for tests. A missing
// redis-server skips the test with a reason, except under CI=true where it fails
// loudly: CI must never go green by skipping the Redis half of the suite.
package testredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Start runs redis-server for the test and answers client options for it; the
// server is killed when the test ends.
func Start(t testing.TB) *goredis.Options {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found on PATH and CI=true: install it (make deps) — Redis tests must run in CI")
		}
		t.Skip("redis-server not found on PATH: skipping the Redis half (install redis-server to run it)")
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", t.TempDir())
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		opt := &goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
		if lastErr = waitReady(opt, done); lastErr == nil {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
			})
			return opt
		}
		_ = cmd.Process.Kill()
		<-done
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady pings until the server answers, it exits (port taken), or 10 s pass.
func waitReady(opt *goredis.Options, exited <-chan struct{}) error {
	c := goredis.NewClient(opt)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Clock reads Redis's own clock (TIME), the one the Redis store decides by. A test
// cannot move it, so AdvanceTo waits for it; nothing here reads the machine's clock.
type Clock struct{ rdb *goredis.Client }

// NewClock answers the clock of the server opt points at; the client closes with t.
func NewClock(t testing.TB, opt *goredis.Options) *Clock {
	c := &Clock{rdb: goredis.NewClient(opt)}
	t.Cleanup(func() { _ = c.rdb.Close() })
	return c
}

// Now answers Redis's TIME, truncated to the millisecond as the store's scripts do.
func (c *Clock) Now() time.Time {
	ts, err := c.rdb.Time(context.Background()).Result()
	if err != nil {
		panic(fmt.Sprintf("redis TIME: %v", err)) // the server is gone: the test cannot go on
	}
	return time.UnixMilli(ts.UnixMilli()).UTC()
}

// AdvanceTo returns once Redis's clock has reached t.
func (c *Clock) AdvanceTo(t time.Time) {
	for {
		left := t.Sub(c.Now())
		if left <= 0 {
			return
		}
		time.Sleep(min(left, 50*time.Millisecond))
	}
}
