// Package config owns the inventory service's configuration: the env.md variables it
// reads, their defaults and bounds. Knobs is the single list the README table is
// tested against.
package config

import (
	"fmt"
	"math"
	"os"
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
	{"ADMIN_TOKEN", "unset = admin routes off (404)", "bearer token of `PUT /api/inventory/{id}`, compared in constant time"},
	{"MAX_BODY_BYTES", "65536", "larger request bodies get 413 `payload_too_large`, 1 .. 10485760"},
	{"RESERVATION_TTL_S", "300", "default hold lifetime in seconds, 1 .. 86400"},
	{"FAULT_DELAY_MS", "0", "added latency on every /api/* request, 0 .. 60000; refused in prod"},
	{"FAULT_ERROR_RATE", "0", "0.0 .. 1.0 share of /api/* requests answered 500 `fault_injected`; refused in prod"},
	{"INSTANCE_ID", "hostname-pid", "names this replica in logs and /api/stats"},
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
}

// Error is a bad variable; main prints it as one line and exits 2.
type Error struct {
	Var, Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("config: %s: %s", e.Var, e.Msg) }

// Load reads the configuration through getenv (os.Getenv in production, a map in tests).
func Load(getenv func(string) string) (Config, error) {
	c := Config{Env: "dev", LogLevel: "info"}
	var err error
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }

	if c.Port, err = intVar(get, "PORT", 8002, 1, 65535); err != nil {
		return c, err
	}
	if v := get("POLYSHOP_ENV"); v != "" {
		if v != "dev" && v != "prod" {
			return c, &Error{"POLYSHOP_ENV", fmt.Sprintf("must be dev or prod, got %q", v)}
		}
		c.Env = v
	}
	if v := get("REDIS_URL"); v != "" {
		opt, perr := goredis.ParseURL(v)
		if perr != nil {
			return c, &Error{"REDIS_URL", "must be redis://[:password@]host:port/db"}
		}
		c.RedisURL, c.Redis = v, opt
	}
	if v := get("LOG_LEVEL"); v != "" {
		switch strings.ToLower(v) {
		case "debug", "info", "warn", "error":
			c.LogLevel = strings.ToLower(v)
		default:
			return c, &Error{"LOG_LEVEL", fmt.Sprintf("must be debug, info, warn or error, got %q", v)}
		}
	}
	c.AdminToken = getenv("ADMIN_TOKEN")
	maxBody, err := intVar(get, "MAX_BODY_BYTES", 65536, 1, 10<<20)
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
		f, perr := strconv.ParseFloat(v, 64)
		if perr != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return c, &Error{"FAULT_ERROR_RATE", fmt.Sprintf("must be a number from 0.0 to 1.0, got %q", v)}
		}
		c.FaultErrorRate = f
	}
	c.InstanceID = get("INSTANCE_ID")
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "inventory"
		}
		c.InstanceID = fmt.Sprintf("%s-%d", host, os.Getpid())
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

// intVar parses a decimal integer; trailing garbage such as "10ms" is an error (env.md).
func intVar(get func(string) string, name string, def, lo, hi int) (int, error) {
	v := get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, &Error{name, fmt.Sprintf("must be an integer from %d to %d, got %q", lo, hi, v)}
	}
	return n, nil
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
		"instance_id", c.InstanceID,
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
