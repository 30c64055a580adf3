// Package wire is the one parser of the protocol headers every polyshop service
// understands (services/contracts/env.md, header-vectors.json): X-Request-Deadline-Ms,
// traceparent, X-Request-Id, Content-Type and Authorization. The server side of
// inventory uses it; a Go client of another service must use it too, so both sides of
// a hop agree byte for byte. Every function takes the raw header bytes and first trims
// optional whitespace (SP, HTAB) as RFC 9110 does.
package wire

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
)

// Header names.
const (
	HeaderDeadline      = "X-Request-Deadline-Ms"
	HeaderTraceparent   = "Traceparent"
	HeaderRequestID     = "X-Request-Id"
	HeaderContentType   = "Content-Type"
	HeaderAuthorization = "Authorization"
)

// MaxDeadlineMs is where X-Request-Deadline-Ms saturates (2^31-1 ms, about 24.8 days).
const MaxDeadlineMs = 1<<31 - 1

// MaxRequestIDLen bounds a kept X-Request-Id.
const MaxRequestIDLen = 128

// TrimOWS drops optional whitespace (SP, HTAB) at both ends, and nothing else.
func TrimOWS(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

// Get is the raw value of a header and whether it was sent at all: net/http's
// Header.Get cannot tell an empty header from a missing one. Repeated header lines are
// joined with ", " as RFC 9110 allows for lists (so two deadlines are malformed).
func Get(h http.Header, name string) (string, bool) {
	vs := h.Values(name)
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	}
	return strings.Join(vs, ", "), true
}

// DeadlineStatus is the outcome of ParseDeadline.
type DeadlineStatus int

const (
	// DeadlineAbsent: no header; the service uses its own budget.
	DeadlineAbsent DeadlineStatus = iota
	// DeadlineOK: the value is the budget in ms.
	DeadlineOK
	// DeadlineMalformed: 400 malformed_request on /api routes, ignored on probes.
	DeadlineMalformed
)

// ParseDeadline reads X-Request-Deadline-Ms: ASCII decimal digits only (no sign,
// leading zeros allowed), saturating at MaxDeadlineMs. Empty or blank is malformed.
func ParseDeadline(raw string, present bool) (int64, DeadlineStatus) {
	if !present {
		return 0, DeadlineAbsent
	}
	v := TrimOWS(raw)
	if v == "" {
		return 0, DeadlineMalformed
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, DeadlineMalformed
		}
		if n < MaxDeadlineMs {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, MaxDeadlineMs), DeadlineOK
}

// Trace is a parsed traceparent: the trace id is continued, the parent id was the
// caller's span.
type Trace struct {
	TraceID, ParentID, Flags string
}

// ParseTraceparent reads a W3C traceparent. Version 00 is exactly
// "00-<32 hex>-<16 hex>-<2 hex>"; a higher version (not ff) is parsed as 00 and may
// append fields after a dash. Hex is lower case; all-zero ids are invalid. ok=false
// means: start a new trace (never an error).
func ParseTraceparent(raw string) (Trace, bool) {
	v := TrimOWS(raw)
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return Trace{}, false
	}
	version := v[:2]
	if !isLowerHex(version) || version == "ff" {
		return Trace{}, false
	}
	if len(v) > 55 && (version == "00" || v[55] != '-') {
		return Trace{}, false
	}
	t := Trace{TraceID: v[3:35], ParentID: v[36:52], Flags: v[53:55]}
	if !isLowerHex(t.TraceID) || !isLowerHex(t.ParentID) || !isLowerHex(t.Flags) ||
		allZero(t.TraceID) || allZero(t.ParentID) {
		return Trace{}, false
	}
	return t, true
}

// FormatTraceparent is the version-00 header a client sends upstream.
func FormatTraceparent(traceID, spanID, flags string) string {
	return "00-" + traceID + "-" + spanID + "-" + flags
}

// NewTraceID is a random 16-byte trace id in lower-case hex.
func NewTraceID() string { return randomHex(16) }

// NewSpanID is a random 8-byte span id in lower-case hex.
func NewSpanID() string { return randomHex(8) }

// ParseRequestID keeps a sane X-Request-Id: after trimming, 1..128 characters of
// [A-Za-z0-9._-]. ok=false means: replace it with NewRequestID (never an error).
func ParseRequestID(raw string) (string, bool) {
	v := TrimOWS(raw)
	if len(v) < 1 || len(v) > MaxRequestIDLen {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "", false
		}
	}
	return v, true
}

// NewRequestID is a fresh UUID4 in hex (32 characters, no dashes).
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // UUID version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:])
}

// IsJSONContentType accepts the Content-Type of a request with a JSON body: exactly
// the media type application/json (case-insensitive), with at most the parameter
// charset=utf-8 (name and value case-insensitive, the value may be quoted). A missing
// or empty header, "+json" types and any other parameter are refused (415).
func IsJSONContentType(raw string, present bool) bool {
	if !present {
		return false
	}
	parts := strings.Split(TrimOWS(raw), ";")
	if !strings.EqualFold(TrimOWS(parts[0]), "application/json") {
		return false
	}
	charset := false
	for _, p := range parts[1:] {
		p = TrimOWS(p)
		if p == "" { // RFC 9110 allows empty parameters ("a/b;;c=d")
			continue
		}
		name, value, ok := strings.Cut(p, "=")
		if !ok || charset || !strings.EqualFold(name, "charset") {
			return false
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		if !strings.EqualFold(value, "utf-8") {
			return false
		}
		charset = true
	}
	return true
}

// AuthResult is the outcome of CheckBearer on an admin route.
type AuthResult int

const (
	// AuthAllow: the right token.
	AuthAllow AuthResult = iota
	// AuthUnauthorized: no header, another scheme or no token (401 unauthorized).
	AuthUnauthorized
	// AuthForbidden: a bearer token that is not the admin token (403 forbidden).
	AuthForbidden
)

// ParseBearer reads "Bearer <token>": the scheme case-insensitive, then one or more
// spaces, then the token exactly as sent (inner spaces and any byte included).
func ParseBearer(raw string) (string, bool) {
	v := TrimOWS(raw)
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token := strings.TrimLeft(rest, " ")
	return token, token != ""
}

// TokenHash is what CheckBearer compares: hashing both sides makes the constant-time
// compare independent of the token length too.
type TokenHash [32]byte

// HashToken hashes the configured admin token once.
func HashToken(token string) TokenHash { return sha256.Sum256([]byte(token)) }

// CheckBearer decides an admin request against the admin token's hash, in constant time.
func CheckBearer(raw string, present bool, want TokenHash) AuthResult {
	if !present {
		return AuthUnauthorized
	}
	token, ok := ParseBearer(raw)
	if !ok {
		return AuthUnauthorized
	}
	got := HashToken(token)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return AuthForbidden
	}
	return AuthAllow
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
