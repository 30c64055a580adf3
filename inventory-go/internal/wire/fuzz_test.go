// Fuzz target of the header parsers (seed corpus in testdata/fuzz/FuzzHeaders; a
// crasher found by `make test-go` lands there and stays as a regression test).
// Properties: never panic; an accepted value is within the contract; parsing what we
// format gives it back.
package wire

import (
	"strings"
	"testing"
)

func FuzzHeaders(f *testing.F) {
	for _, s := range []string{"250", " 0250\t", "2147483648", "+1", "\xb2",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"abc", "a b", "application/json; charset=\"UTF-8\"", "application/json;;charset=utf-8",
		"Bearer  s3cret", "bearer s3cret ", "Bearer\ts3cret", ""} {
		f.Add(s)
	}
	want := HashToken("s3cret")
	f.Fuzz(func(t *testing.T, raw string) {
		v := TrimOWS(raw)
		if n, st := ParseDeadline(raw, true); st == DeadlineOK {
			if n < 0 || n > MaxDeadlineMs || v == "" || strings.Trim(v, "0123456789") != "" {
				t.Fatalf("deadline %q accepted as %d", raw, n)
			}
		} else if st != DeadlineMalformed {
			t.Fatalf("a present deadline %q is %v", raw, st)
		}
		if tr, ok := ParseTraceparent(raw); ok {
			if len(tr.TraceID) != 32 || len(tr.ParentID) != 16 || len(tr.Flags) != 2 || !strings.HasPrefix(v[3:], tr.TraceID) {
				t.Fatalf("traceparent %q accepted as %+v", raw, tr)
			}
			if back, ok := ParseTraceparent(FormatTraceparent(tr.TraceID, tr.ParentID, tr.Flags)); !ok || back != tr {
				t.Fatalf("traceparent %+v does not round-trip", tr)
			}
		}
		if id, ok := ParseRequestID(raw); ok {
			if id != v || len(id) > MaxRequestIDLen {
				t.Fatalf("request id %q kept as %q", raw, id)
			}
			if again, ok := ParseRequestID(id); !ok || again != id {
				t.Fatalf("request id %q is not stable", id)
			}
		}
		if IsJSONContentType(raw, true) && !strings.HasPrefix(strings.ToLower(v), "application/json") {
			t.Fatalf("Content-Type %q accepted", raw)
		}
		if IsJSONContentType(raw, false) {
			t.Fatal("a missing Content-Type accepted")
		}
		token, ok := ParseBearer(raw)
		res := CheckBearer(raw, true, want)
		switch {
		case !ok && res != AuthUnauthorized, ok && token == "":
			t.Fatalf("Authorization %q: token %q ok=%v result %v", raw, token, ok, res)
		case res == AuthAllow && token != "s3cret":
			t.Fatalf("Authorization %q allowed with token %q", raw, token)
		}
	})
}
