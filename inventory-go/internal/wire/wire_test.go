// The header vectors of services/contracts/header-vectors.json, run against the parser
// functions: every case of every header inventory handles.
package wire

import (
	"encoding/json"
	"strings"
	"testing"

	"polyshop/inventory-go/internal/contracttest"
)

// run calls check for each case of header with the raw bytes; it fails if the
// header has too few cases (the file changed shape).
func run(t *testing.T, v contracttest.HeaderVectors, header string, check func(t *testing.T, raw string, present bool, c contracttest.HeaderCase)) {
	t.Helper()
	cases := v.Headers[header].Cases
	if len(cases) < 5 {
		t.Fatalf("header-vectors.json has %d cases of %s", len(cases), header)
	}
	for i, c := range cases {
		raw, present := c.Wire(t)
		name := raw
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		t.Run(strings.ReplaceAll(name, "/", "|"), func(t *testing.T) {
			t.Logf("case %d (%s)", i, c.Note)
			check(t, raw, present, c)
		})
	}
}

func expectString(t *testing.T, c contracttest.HeaderCase) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(c.Expect, &s); err != nil {
		t.Fatalf("expect %s is not a string", c.Expect)
	}
	return s
}

func TestDeadlineVectors(t *testing.T) {
	run(t, contracttest.LoadHeaderVectors(t), "X-Request-Deadline-Ms", func(t *testing.T, raw string, present bool, c contracttest.HeaderCase) {
		n, st := ParseDeadline(raw, present)
		var want int64
		if err := json.Unmarshal(c.Expect, &want); err == nil {
			if st != DeadlineOK || n != want {
				t.Fatalf("ParseDeadline(%q) = %d, %v; want %d", raw, n, st, want)
			}
			return
		}
		switch e := expectString(t, c); e {
		case "absent":
			if st != DeadlineAbsent {
				t.Fatalf("ParseDeadline(%q, %v) = %v, want absent", raw, present, st)
			}
		case "malformed":
			if st != DeadlineMalformed {
				t.Fatalf("ParseDeadline(%q) = %d, %v, want malformed", raw, n, st)
			}
		default:
			t.Fatalf("unknown expect %q", e)
		}
	})
}

func TestTraceparentVectors(t *testing.T) {
	run(t, contracttest.LoadHeaderVectors(t), "traceparent", func(t *testing.T, raw string, present bool, c contracttest.HeaderCase) {
		tr, ok := ParseTraceparent(raw)
		switch e := expectString(t, c); e {
		case "continue":
			if !ok || tr.TraceID != c.TraceID {
				t.Fatalf("ParseTraceparent(%q) = %+v, %v; want trace %s", raw, tr, ok, c.TraceID)
			}
		case "new":
			if ok {
				t.Fatalf("ParseTraceparent(%q) = %+v, want a new trace", raw, tr)
			}
		default:
			t.Fatalf("unknown expect %q", e)
		}
	})
}

func TestRequestIDVectors(t *testing.T) {
	run(t, contracttest.LoadHeaderVectors(t), "X-Request-Id", func(t *testing.T, raw string, present bool, c contracttest.HeaderCase) {
		id, ok := ParseRequestID(raw)
		switch e := expectString(t, c); e {
		case "keep":
			if !ok || id != TrimOWS(raw) {
				t.Fatalf("ParseRequestID(%q) = %q, %v; want it kept", raw, id, ok)
			}
		case "new":
			if ok {
				t.Fatalf("ParseRequestID(%q) = %q kept, want a new id", raw, id)
			}
		default:
			t.Fatalf("unknown expect %q", e)
		}
	})
}

func TestContentTypeVectors(t *testing.T) {
	run(t, contracttest.LoadHeaderVectors(t), "Content-Type", func(t *testing.T, raw string, present bool, c contracttest.HeaderCase) {
		got := IsJSONContentType(raw, present)
		if want := expectString(t, c) == "accept"; got != want {
			t.Fatalf("IsJSONContentType(%q, %v) = %v, want %v (%s)", raw, present, got, want, c.Expect)
		}
	})
}

func TestAuthorizationVectors(t *testing.T) {
	v := contracttest.LoadHeaderVectors(t)
	if v.AdminToken != "s3cret" {
		t.Fatalf("admin_token = %q", v.AdminToken)
	}
	want := HashToken(v.AdminToken)
	names := map[AuthResult]string{AuthAllow: "allow", AuthUnauthorized: "unauthorized", AuthForbidden: "forbidden"}
	run(t, v, "Authorization", func(t *testing.T, raw string, present bool, c contracttest.HeaderCase) {
		if got := names[CheckBearer(raw, present, want)]; got != expectString(t, c) {
			t.Fatalf("CheckBearer(%q, %v) = %s, want %s", raw, present, got, c.Expect)
		}
	})
}

func TestNewIDs(t *testing.T) {
	id := NewRequestID()
	if len(id) != 32 || id[12] != '4' || !strings.Contains("89ab", id[16:17]) {
		t.Fatalf("NewRequestID = %q, want a uuid4 in hex", id)
	}
	if _, ok := ParseRequestID(id); !ok {
		t.Fatalf("NewRequestID %q does not parse back", id)
	}
	tp := FormatTraceparent(NewTraceID(), NewSpanID(), "01")
	if tr, ok := ParseTraceparent(tp); !ok || tr.Flags != "01" {
		t.Fatalf("FormatTraceparent %q does not parse back", tp)
	}
}
