// The header vectors through a real HTTP server (net/http over TCP, raw request bytes):
// Content-Type, Authorization, X-Request-Deadline-Ms and X-Request-Id end to end.
package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/contracttest"
)

// rawResponse sends one request as bytes and reads the answer.
func rawResponse(t *testing.T, addr, method, path string, headers []string, body string) (*http.Response, map[string]any) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: %d\r\n", method, path, len(body))
	for i := 0; i+1 < len(headers); i += 2 {
		b.WriteString(headers[i] + ": " + headers[i+1] + "\r\n")
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp, m
}

func errorCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// refusedByNetHTTP: net/http itself answers a plain-text 400 before any handler runs
// when a header value holds a control byte other than HTAB (NUL, CR, LF as the vectors
// allow, but also 0x01..0x1f and DEL).
func refusedByNetHTTP(raw string) bool {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

func TestHeaderVectorsThroughHTTP(t *testing.T) {
	v := contracttest.LoadHeaderVectors(t)
	e := newEnv(t, memoryBackend(t), func(c *config.Config) { c.AdminToken = "s3cret"; c.MaxBodyBytes = 65536 })
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	addr := ts.Listener.Addr().String()

	each := func(header string, fn func(t *testing.T, raw string, present bool, expect any)) {
		for i, c := range v.Headers[header].Cases {
			raw, present := c.Wire(t)
			if refusedByNetHTTP(raw) {
				t.Run(fmt.Sprintf("%s/%d/refused", header, i), func(t *testing.T) {
					if resp, _ := rawResponse(t, addr, "GET", "/api/inventory/1", []string{header, raw}, ""); resp.StatusCode != 400 {
						t.Fatalf("%s %q: %d, want net/http's 400", header, raw, resp.StatusCode)
					}
				})
				continue
			}
			var expect any
			_ = json.Unmarshal(c.Expect, &expect)
			t.Run(fmt.Sprintf("%s/%d", header, i), func(t *testing.T) { fn(t, raw, present, expect) })
		}
	}
	with := func(present bool, name, raw string, more ...string) []string {
		if present {
			return append([]string{name, raw}, more...)
		}
		return more
	}

	each("Content-Type", func(t *testing.T, raw string, present bool, expect any) {
		resp, m := rawResponse(t, addr, "POST", "/api/inventory/batch", with(present, "Content-Type", raw), `{"ids":[1]}`)
		want := map[any]int{"accept": 200, "reject": 415}[expect]
		if resp.StatusCode != want || (want == 415 && errorCode(m) != "unsupported_media_type") {
			t.Fatalf("Content-Type %q (present %v): %d %v, want %d", raw, present, resp.StatusCode, m, want)
		}
	})
	each("Authorization", func(t *testing.T, raw string, present bool, expect any) {
		resp, m := rawResponse(t, addr, "PUT", "/api/inventory/2", with(present, "Authorization", raw, "Content-Type", "application/json"), `{"available":5}`)
		want := map[any]int{"allow": 200, "unauthorized": 401, "forbidden": 403}[expect]
		if resp.StatusCode != want || (want != 200 && errorCode(m) != expect) {
			t.Fatalf("Authorization %q: %d %v, want %d", raw, resp.StatusCode, m, want)
		}
	})
	each("X-Request-Deadline-Ms", func(t *testing.T, raw string, present bool, expect any) {
		resp, m := rawResponse(t, addr, "GET", "/api/inventory/1", with(present, "X-Request-Deadline-Ms", raw), "")
		want := 200
		switch expect {
		case "malformed":
			want = 400
		case float64(0):
			want = 503
		}
		if resp.StatusCode != want || (want == 400 && errorCode(m) != "malformed_request") {
			t.Fatalf("X-Request-Deadline-Ms %q: %d %v, want %d", raw, resp.StatusCode, m, want)
		}
		// probes ignore the header, whatever it holds
		if resp, _ := rawResponse(t, addr, "GET", "/health", with(present, "X-Request-Deadline-Ms", raw), ""); resp.StatusCode != 200 {
			t.Fatalf("/health with X-Request-Deadline-Ms %q: %d", raw, resp.StatusCode)
		}
	})
	each("X-Request-Id", func(t *testing.T, raw string, present bool, expect any) {
		resp, m := rawResponse(t, addr, "GET", "/api/inventory/999999", with(present, "X-Request-Id", raw), "")
		got := resp.Header.Get("X-Request-Id")
		rid, _ := m["error"].(map[string]any)["request_id"].(string)
		switch expect {
		case "keep":
			if got != strings.Trim(raw, " \t") {
				t.Fatalf("X-Request-Id %q answered as %q, want it kept", raw, got)
			}
		case "new":
			if len(got) != 32 || got == raw {
				t.Fatalf("X-Request-Id %q answered as %q, want a new uuid4 hex", raw, got)
			}
		}
		if rid != got {
			t.Fatalf("error request_id %q, header %q", rid, got)
		}
	})
}
