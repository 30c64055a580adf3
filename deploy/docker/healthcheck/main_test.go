// Tests of the healthcheck against real listeners: a healthy /health, a failing one, a
// closed port and a missing PORT.
package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestCheck(t *testing.T) {
	if err := check(serve(t, http.StatusOK)); err != nil {
		t.Errorf("healthy service: %v", err)
	}
	if err := check(serve(t, http.StatusServiceUnavailable)); err == nil {
		t.Error("503 must fail the check")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closed, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	if err := check(closed); err == nil {
		t.Error("closed port must fail the check")
	}
	if err := check(""); err == nil {
		t.Error("missing PORT must fail the check")
	}
}
