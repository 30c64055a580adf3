// Package config owns the inventory service's configuration: the env.md variables it
// reads, their defaults and bounds. Knobs is the single list the README table is
// tested against.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Knob documents one variable; the README env table must list exactly these.
type Knob struct {
	Name, Default, Description string
}

// Knobs are the variables this service reads, in README order.
var Knobs = []Knob{
	{"PORT", "8002", "listen port, 1 .. 65535"},
	{"POLYSHOP_ENV", "dev", "`dev` or `prod`; prod refuses fault knobs and an unset `ADMIN_TOKEN`"},
	{"REDIS_URL", "unset = in-memory store", "`redis://[:password@]host:port/db`; stock, holds and events live there"},
	{"LOG_LEVEL", "info", "`debug`, `info`, `warn`, `error`"},
	{"ADMIN_TOKEN", "unset = admin routes off (404)", "bearer token of `PUT /api/inventory/{id}` (1 .. 256 visible ASCII, no spaces), compared in constant time"},
	{"MAX_BODY_BYTES", "65536", "larger request bodies get 413 `payload_too_large`, 1 .. 67108864 (64 MiB)"},
	{"RESERVATION_TTL_S", "300", "default hold lifetime in seconds, 1 .. 86400"},
	{"FAULT_DELAY_MS", "0", "added latency on every /api/* request, 0 .. 60000; refused in prod"},
	{"FAULT_ERROR_RATE", "0", "0.0 .. 1.0 share of /api/* requests answered 500 `fault_injected`; refused in prod"},
	{"INSTANCE_ID", "hostname-pid", "names this replica in logs and /api/stats; 1 .. 64 of `[A-Za-z0-9._-]`"},
	{"INVENTORY_SHARD_ID", "unset = unsharded (every product)", "this shard's name in the ring (ring.md), 1 .. 64 of `[A-Za-z0-9._-]`; it holds and serves only the products it owns"},
	{"INVENTORY_SHARDS", "unset", "comma list of the ring's shard ids (trimmed, empty and duplicate entries dropped); required with `INVENTORY_SHARD_ID` and must contain it; only seeds the ring record, which decides once it exists"},
	{"ADVERTISE_URL", "http://127.0.0.1:<PORT>", "`http://host[:port][/prefix]` other services reach this instance at, as written in the registry"},
	{"REGISTRY_URL", "REDIS_URL", "`redis://` URL of the ring record `polyshop:ring:inventory` (and the registry); unset and no `REDIS_URL` = no record, the members are `INVENTORY_SHARDS`"},
}

// Config is the effective configuration.
type Config struct {
	Port           int
	Env            string
	RedisURL       string
	Redis          *goredis.Options // nil = in-memory store
	LogLevel       string
	AdminToken     string
	MaxBodyBytes   int64
	ReservationTTL time.Duration
	FaultDelay     time.Duration
	FaultErrorRate float64
	InstanceID     string
	// ShardID is this shard's name in the ring; "" is an unsharded inventory.
	ShardID string
	// Shards are the ring members INVENTORY_SHARDS names, sorted; nil when unsharded.
	Shards []string
	// RegistryURL is REGISTRY_URL as set ("" = unset: the registry and the ring record
	// then live in REDIS_URL's Redis); Registry is that Redis, nil when neither is set.
	RegistryURL string
	Registry    *goredis.Options
	// AdvertiseURL is where other services reach this instance (the registry entry).
	AdvertiseURL string
}

// Error is a bad variable; main prints it as one line and exits 2.
type Error struct {
	Var, Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Var, e.Msg) }

// MaxBodyLimit is the largest MAX_BODY_BYTES (64 MiB).
const MaxBodyLimit = 64 << 20

// Load reads the configuration through getenv (os.Getenv in production, a map in tests).
// The rules are env.md's and services/contracts/env-vectors.json's: every value is
// trimmed of ASCII whitespace and a blank one is unset; integers are ASCII digits only;
// enums are case-insensitive.
func Load(getenv func(string) string) (Config, error) {
	c := Config{Env: "dev", LogLevel: "info"}
	var err error
	get := func(name string) string { return trimASCII(getenv(name)) }

	if c.Port, err = intVar(get, "PORT", 8002, 1, 65535); err != nil {
		return c, err
	}
	if c.Env, err = enumVar(get, "POLYSHOP_ENV", "dev", "dev", "prod"); err != nil {
		return c, err
	}
	if v := get("REDIS_URL"); v != "" {
		canon, opt, msg := parseRedisURL(v)
		if msg != "" {
			// the value is not echoed: it may hold a password
			return c, &Error{"REDIS_URL", "must be redis://[[user]:password@]host[:port][/db] with db 0..15: " + msg}
		}
		c.RedisURL, c.Redis = canon, opt
	}
	if c.LogLevel, err = enumVar(get, "LOG_LEVEL", "info", "debug", "info", "warn", "error"); err != nil {
		return c, err
	}
	if c.AdminToken = get("ADMIN_TOKEN"); c.AdminToken != "" && !validToken(c.AdminToken) {
		// the value is not echoed: it is a secret
		return c, &Error{"ADMIN_TOKEN", "must be 1 .. 256 visible ASCII characters without spaces"}
	}
	maxBody, err := intVar(get, "MAX_BODY_BYTES", 65536, 1, MaxBodyLimit)
	if err != nil {
		return c, err
	}
	c.MaxBodyBytes = int64(maxBody)
	ttl, err := intVar(get, "RESERVATION_TTL_S", 300, 1, 86400)
	if err != nil {
		return c, err
	}
	c.ReservationTTL = time.Duration(ttl) * time.Second
	delay, err := intVar(get, "FAULT_DELAY_MS", 0, 0, 60000)
	if err != nil {
		return c, err
	}
	c.FaultDelay = time.Duration(delay) * time.Millisecond
	if v := get("FAULT_ERROR_RATE"); v != "" {
		f, ok := parseNumber(v)
		if !ok || f > 1 {
			return c, &Error{"FAULT_ERROR_RATE", fmt.Sprintf("must be a number from 0.0 to 1.0, got %s", quote(v))}
		}
		c.FaultErrorRate = f
	}
	if c.InstanceID = get("INSTANCE_ID"); c.InstanceID == "" {
		c.InstanceID = defaultInstanceID()
	} else if !validInstanceID(c.InstanceID) {
		return c, &Error{"INSTANCE_ID", fmt.Sprintf("must be 1 .. 64 characters of [A-Za-z0-9._-], got %s", quote(c.InstanceID))}
	}
	if v := get("ADVERTISE_URL"); v == "" {
		c.AdvertiseURL = "http://127.0.0.1:" + strconv.Itoa(c.Port)
	} else if c.AdvertiseURL, err = parseHTTPURL(v); err != nil {
		return c, &Error{"ADVERTISE_URL", err.Error() + ", got " + quote(v)}
	}
	if err := c.loadShards(get); err != nil {
		return c, err
	}
	if c.Env == "prod" {
		switch {
		case c.FaultDelay != 0:
			return c, &Error{"FAULT_DELAY_MS", "must be 0 when POLYSHOP_ENV=prod"}
		case c.FaultErrorRate != 0:
			return c, &Error{"FAULT_ERROR_RATE", "must be 0 when POLYSHOP_ENV=prod"}
		case c.AdminToken == "":
			return c, &Error{"ADMIN_TOKEN", "must be set when POLYSHOP_ENV=prod"}
		}
	}
	return c, nil
}

// loadShards reads INVENTORY_SHARD_ID, INVENTORY_SHARDS and REGISTRY_URL. A shard id
// without the members (or members without an id) is refused: either half alone would
// start a shard that seeds and serves the wrong products.
func (c *Config) loadShards(get func(string) string) error {
	c.ShardID = get("INVENTORY_SHARD_ID")
	if c.ShardID != "" && !validInstanceID(c.ShardID) {
		return &Error{"INVENTORY_SHARD_ID", fmt.Sprintf("must be 1 .. 64 characters of [A-Za-z0-9._-], got %s", quote(c.ShardID))}
	}
	if v := get("INVENTORY_SHARDS"); v != "" {
		for _, part := range strings.Split(v, ",") {
			id := trimASCII(part)
			if id == "" {
				continue
			}
			if !validInstanceID(id) {
				return &Error{"INVENTORY_SHARDS", fmt.Sprintf("entries must be 1 .. 64 characters of [A-Za-z0-9._-], got %s", quote(id))}
			}
			c.Shards = append(c.Shards, id)
		}
		slices.Sort(c.Shards)
		c.Shards = slices.Compact(c.Shards)
	}
	switch {
	case c.ShardID == "" && c.Shards != nil:
		return &Error{"INVENTORY_SHARD_ID", "must be set when INVENTORY_SHARDS is (a shard without its id would hold every product)"}
	case c.ShardID != "" && c.Shards == nil:
		return &Error{"INVENTORY_SHARDS", "must list the ring's shard ids when INVENTORY_SHARD_ID is set"}
	case c.ShardID != "" && !slices.Contains(c.Shards, c.ShardID):
		return &Error{"INVENTORY_SHARDS", fmt.Sprintf("must contain INVENTORY_SHARD_ID %s", quote(c.ShardID))}
	}
	c.Registry = c.Redis
	if v := get("REGISTRY_URL"); v != "" {
		canon, opt, msg := parseRedisURL(v)
		if msg != "" {
			// the value is not echoed: it may hold a password
			return &Error{"REGISTRY_URL", "must be redis://[[user]:password@]host[:port][/db] with db 0..15: " + msg}
		}
		c.RegistryURL, c.Registry = canon, opt
	}
	return nil
}

// RegistryWhere is the URL of the Redis that holds the registry and the ring record.
func (c Config) RegistryWhere() string {
	if c.RegistryURL != "" {
		return c.RegistryURL
	}
	return c.RedisURL
}

// trimASCII drops ASCII whitespace (SP, HT, LF, VT, FF, CR) at both ends; unlike
// strings.TrimSpace it leaves Unicode spaces such as U+00A0, which then fail the value.
func trimASCII(s string) string { return strings.Trim(s, " \t\n\v\f\r") }

// quote is a value for an error message: one line (Go escapes), at most 64 bytes.
func quote(v string) string {
	if len(v) > 64 {
		return strconv.Quote(v[:64]) + "..."
	}
	return strconv.Quote(v)
}

// intVar parses a decimal integer: ASCII digits only (no sign, separators or exponent;
// leading zeros are decimal), so "10ms", "+1" and "1e3" are errors (env.md).
func intVar(get func(string) string, name string, def, lo, hi int) (int, error) {
	v := get(name)
	if v == "" {
		return def, nil
	}
	n, ok := parseDigits(v)
	if !ok || n < lo || n > hi {
		return 0, &Error{name, fmt.Sprintf("must be an integer from %d to %d, got %s", lo, hi, quote(v))}
	}
	return n, nil
}

// parseDigits reads ASCII decimal digits; a huge value saturates above every bound.
func parseDigits(v string) (int, bool) {
	if v == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<40 {
			n = n*10 + int(c-'0')
		}
	}
	return n, true
}

// parseNumber reads digits with at most one decimal point and at least one digit
// (".5" and "1." are numbers; no sign, exponent, nan or inf).
func parseNumber(v string) (float64, bool) {
	digits, dots := 0, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return 0, false
		}
	}
	if digits == 0 || dots > 1 {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// enumVar reads a case-insensitive enum and answers it in lower case.
func enumVar(get func(string) string, name, def string, values ...string) (string, error) {
	v := get(name)
	if v == "" {
		return def, nil
	}
	for _, want := range values {
		if asciiEqualFold(v, want) {
			return want, nil
		}
	}
	return "", &Error{name, fmt.Sprintf("must be one of %s, got %s", strings.Join(values, ", "), quote(v))}
}

// asciiEqualFold is strings.EqualFold without Unicode folding (the Kelvin sign is not k).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// validToken: ADMIN_TOKEN is 1 .. 256 visible ASCII characters (0x21 .. 0x7e).
func validToken(t string) bool {
	if len(t) < 1 || len(t) > 256 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x21 || t[i] > 0x7e {
			return false
		}
	}
	return true
}

// validInstanceID: INSTANCE_ID is 1 .. 64 characters of [A-Za-z0-9._-].
func validInstanceID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !instanceIDChar(id[i]) {
			return false
		}
	}
	return true
}

func instanceIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// defaultInstanceID is hostname-pid, made valid: other characters become '-' and the
// host part is cut so the whole stays within 64.
func defaultInstanceID() string {
	host, _ := os.Hostname()
	b := []byte(host)
	for i, c := range b {
		if !instanceIDChar(c) {
			b[i] = '-'
		}
	}
	pid := "-" + strconv.Itoa(os.Getpid())
	if len(b) > 64-len(pid) {
		b = b[:64-len(pid)]
	}
	if len(b) == 0 {
		b = []byte("inventory")
	}
	return string(b) + pid
}

// ParseRedisURL is REDIS_URL's check for other commands (inventoryctl): the canonical
// URL and its options, or an error that does not echo the value (it may hold a password).
func ParseRedisURL(v string) (string, *goredis.Options, error) {
	canon, opt, msg := parseRedisURL(trimASCII(v))
	if msg != "" {
		return "", nil, errors.New("must be redis://[[user]:password@]host[:port][/db] with db 0..15: " + msg)
	}
	return canon, opt, nil
}

// ValidShardID is INVENTORY_SHARD_ID's rule: 1 .. 64 characters of [A-Za-z0-9._-].
func ValidShardID(id string) bool { return validInstanceID(id) }

// parseRedisURL checks REDIS_URL strictly (the same rules in all three services):
// redis:// only (no TLS), no whitespace or control bytes, a host, a port 1..65535 if
// given, a db 0..15 if given, no query or fragment. It answers the canonical value
// (trailing slashes dropped) and go-redis options, or a reason.
func parseRedisURL(v string) (string, *goredis.Options, string) {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] == 0x7f {
			return "", nil, "no whitespace or control characters"
		}
	}
	const scheme = "redis://"
	if len(v) < len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) {
		return "", nil, "the scheme must be redis://"
	}
	if strings.ContainsAny(v, "?#") {
		return "", nil, "no query or fragment"
	}
	canon := strings.TrimRight(v, "/")
	rest := v[len(scheme):]
	authority, db, hasDB := strings.Cut(rest, "/")
	hostport := authority
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		hostport = authority[at+1:]
	}
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.Index(hostport, "]")
		if end < 0 {
			return "", nil, "unclosed IPv6 literal"
		}
		host = hostport[:end+1]
		if after := hostport[end+1:]; after != "" {
			if after[0] != ':' {
				return "", nil, "bad host"
			}
			port = after[1:]
			if port == "" {
				return "", nil, "empty port"
			}
		}
		if host == "[]" {
			host = ""
		}
	} else if i := strings.LastIndex(hostport, ":"); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if port == "" {
			return "", nil, "empty port"
		}
	}
	if host == "" {
		return "", nil, "a host is required"
	}
	if port != "" {
		if n, ok := parseDigits(port); !ok || n < 1 || n > 65535 {
			return "", nil, "the port must be 1 .. 65535"
		}
	}
	if db = strings.TrimRight(db, "/"); hasDB && db != "" {
		if n, ok := parseDigits(db); !ok || n > 15 {
			return "", nil, "the db must be 0 .. 15"
		}
	}
	opt, err := goredis.ParseURL(canon)
	if err != nil {
		return "", nil, "not a redis URL"
	}
	return canon, opt, ""
}

// parseHTTPURL checks an http://host[:port][/prefix] URL by the rules every service
// shares (env-vectors.json): http only (TLS ends at the ingress or mesh), no whitespace,
// credentials, query or fragment, a host, a port 1..65535 if given. It answers the
// value with its trailing slashes dropped.
func parseHTTPURL(v string) (string, error) {
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return "", errors.New("must be http://host[:port][/prefix] without whitespace")
		}
	}
	const scheme = "http://"
	if len(v) < len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) {
		return "", errors.New("must be an http:// URL (https is not supported)")
	}
	rest := v[len(scheme):]
	if strings.ContainsAny(rest, "?#") {
		return "", errors.New("must not have a query or fragment")
	}
	authority, path, _ := strings.Cut(rest, "/")
	if strings.Contains(authority, "@") {
		return "", errors.New("must not carry credentials")
	}
	var port string
	var hasPort bool
	if strings.HasPrefix(authority, "[") {
		end := strings.Index(authority, "]")
		if end < 0 {
			return "", errors.New("bad IPv6 literal")
		}
		if a, err := netip.ParseAddr(authority[1:end]); err != nil || !a.Is6() {
			return "", errors.New("bad IPv6 literal")
		}
		if after := authority[end+1:]; after != "" {
			if after[0] != ':' {
				return "", errors.New("bad host")
			}
			port, hasPort = after[1:], true
		}
	} else {
		var host string
		host, port, hasPort = strings.Cut(authority, ":")
		if host == "" {
			return "", errors.New("a host is required")
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !instanceIDChar(c) && c != '~' {
				return "", errors.New("bad host")
			}
		}
	}
	if hasPort {
		if n, ok := parseDigits(port); !ok || n < 1 || n > 65535 {
			return "", errors.New("port must be 1..65535")
		}
	}
	out := "http://" + authority
	if path = strings.TrimRight(path, "/"); path != "" {
		out += "/" + path
	}
	return out, nil
}

// LogAttrs is the effective configuration for the one "config" log line, secrets masked.
func (c Config) LogAttrs() []any {
	admin := ""
	if c.AdminToken != "" {
		admin = "***"
	}
	store := "memory"
	if c.Redis != nil {
		store = "redis"
	}
	return []any{
		"port", c.Port, "env", c.Env, "store", store, "redis_url", MaskURL(c.RedisURL),
		"log_level", c.LogLevel, "admin_token", admin, "max_body_bytes", c.MaxBodyBytes,
		"reservation_ttl_s", int(c.ReservationTTL / time.Second),
		"fault_delay_ms", c.FaultDelay.Milliseconds(), "fault_error_rate", c.FaultErrorRate,
		"instance_id", c.InstanceID, "shard_id", c.ShardID, "shards", strings.Join(c.Shards, ","),
		"advertise_url", c.AdvertiseURL,
		"registry_url", MaskURL(c.RegistryWhere()),
	}
}

// MaskURL hides the password of a redis:// URL.
func MaskURL(url string) string {
	scheme := strings.Index(url, "://")
	at := strings.LastIndex(url, "@")
	if scheme < 0 || at < scheme {
		return url
	}
	creds := url[scheme+3 : at]
	if i := strings.Index(creds, ":"); i >= 0 {
		creds = creds[:i+1] + "***"
	} else {
		creds = "***"
	}
	return url[:scheme+3] + creds + url[at:]
}
