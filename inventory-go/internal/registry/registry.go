// Package registry keeps this instance's entry in the service registry of
// services/contracts/ring.md ("Registry (Redis)"): one beat registers or refreshes it,
// Run beats every 2 s until its context ends, Deregister removes it. All of it runs
// registry.lua, a copy of services/contracts/registry.lua that a test holds byte-equal
// (Go cannot embed a file outside its module).
package registry

import (
	"cmp"
	"context"
	"crypto/rand"
	_ "embed" // registry.lua
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The registry's keys (ring.md).
const (
	HashKey   = "polyshop:registry"
	ExpiryKey = "polyshop:registry:expiry"
)

// Interval is the heartbeat period; registry.lua gives each beat 6 s, so two lost beats
// in a row still leave the entry live.
const Interval = 2 * time.Second

// callTimeout bounds each Redis call: a heartbeat must never wait long on a Redis that
// is away, and shutdown must not hang on one.
const callTimeout = time.Second

//go:embed registry.lua
var scriptText string

var script = goredis.NewScript(scriptText)

// Entry is the JSON value of one instance.
type Entry struct {
	Name       string  `json:"name"`
	InstanceID string  `json:"instance_id"`
	URL        string  `json:"url"`
	Language   string  `json:"language"`
	Version    string  `json:"version"`
	StartedAt  string  `json:"started_at"`
	Shard      *string `json:"shard"`
}

// Field is the entry's hash field and sorted-set member: {name}/{instance_id}.
func (e Entry) Field() string { return e.Name + "/" + e.InstanceID }

// NewInstanceID is 16 random hex characters: a restarted process never shares an id
// with its predecessor, whose late deregistration would otherwise remove the new entry.
func NewInstanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go >= 1.24)
	return hex.EncodeToString(b)
}

// Registry registers one entry in one Redis.
type Registry struct {
	rdb   *goredis.Client
	entry Entry
	value string
}

// New prepares the registration of e through rdb; nothing is written until a beat.
func New(rdb *goredis.Client, e Entry) *Registry {
	v, _ := json.Marshal(e) // strings and a *string: Marshal cannot fail
	return &Registry{rdb: rdb, entry: e, value: string(v)}
}

// Entry is what this registry writes.
func (r *Registry) Entry() Entry { return r.entry }

// Beat registers or refreshes the entry and answers its expiry (Unix ms, Redis clock).
func (r *Registry) Beat(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return script.Run(ctx, r.rdb, []string{HashKey, ExpiryKey}, "beat", r.entry.Field(), r.value).Int64()
}

// Deregister removes the entry from both keys.
func (r *Registry) Deregister(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return script.Run(ctx, r.rdb, []string{HashKey, ExpiryKey}, "drop", r.entry.Field()).Err()
}

// Run beats now and every interval until ctx ends. A failed beat is logged (once per
// outage) and retried on the next tick, which re-registers the entry when Redis is back;
// it never stops the loop or touches the requests being served.
func (r *Registry) Run(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		// Not cancelled with ctx: a beat in flight completes before Run returns, so it
		// cannot land after the Deregister that follows.
		_, err := r.Beat(context.WithoutCancel(ctx))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			log.Warn("registry heartbeat failed", "error", err.Error(), "field", r.entry.Field())
		case err == nil && failing:
			failing = false
			log.Info("registry heartbeat restored", "field", r.entry.Field())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// List answers Redis's clock (Unix ms) and the live entries (expiry after it), sorted
// by name, then instance id.
func List(ctx context.Context, rdb *goredis.Client) (int64, []Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	reply, err := script.Run(ctx, rdb, []string{HashKey, ExpiryKey}, "list").Slice()
	if err != nil {
		return 0, nil, err
	}
	if len(reply) == 0 {
		return 0, nil, fmt.Errorf("registry list: empty reply")
	}
	now, ok := reply[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("registry list: clock %T", reply[0])
	}
	entries := make([]Entry, 0, len(reply)-1)
	for _, v := range reply[1:] {
		s, ok := v.(string)
		var e Entry
		if !ok || json.Unmarshal([]byte(s), &e) != nil {
			continue // a foreign or damaged value is not a live instance
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.InstanceID, b.InstanceID))
	})
	return now, entries, nil
}
