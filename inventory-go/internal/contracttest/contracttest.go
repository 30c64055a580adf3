// Package contracttest finds and reads the shared files of services/contracts for the
// tests that hold this service to them (env and header vectors, errors.md, OpenAPI).
package contracttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Path is services/contracts/<name>, found from the test's working directory upwards
// (go test runs in the package directory, which may sit at any depth).
func Path(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "services", "contracts", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("services/contracts/%s not found above the test directory", name)
		}
		dir = parent
	}
}

// ReadJSON decodes services/contracts/<name> into v.
func ReadJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// RawBytes turns a vector's raw string, where each character U+0000..U+00FF stands
// for one byte on the wire, into a Go string of those bytes.
func RawBytes(t testing.TB, s string) string {
	t.Helper()
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			t.Fatalf("raw value %q has a character above U+00FF", s)
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// HeaderCase is one case of header-vectors.json: the raw value (nil: the header is
// absent) and what a service must make of it.
type HeaderCase struct {
	Raw     *string         `json:"raw"`
	Expect  json.RawMessage `json:"expect"`
	TraceID string          `json:"trace_id"`
	Note    string          `json:"note"`
}

// Wire is the case's value as bytes on the wire, and whether the header is sent at all.
func (c HeaderCase) Wire(t testing.TB) (raw string, present bool) {
	t.Helper()
	if c.Raw == nil {
		return "", false
	}
	return RawBytes(t, *c.Raw), true
}

// HeaderVectors is header-vectors.json: the cases per header name.
type HeaderVectors struct {
	AdminToken string `json:"admin_token"`
	Headers    map[string]struct {
		Cases []HeaderCase `json:"cases"`
	} `json:"headers"`
}

// LoadHeaderVectors decodes services/contracts/header-vectors.json.
func LoadHeaderVectors(t testing.TB) HeaderVectors {
	t.Helper()
	var v HeaderVectors
	ReadJSON(t, "header-vectors.json", &v)
	return v
}
