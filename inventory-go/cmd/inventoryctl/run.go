// This file owns inventoryctl's command line: flags -> rebalance.Config -> one run,
// JSON log lines on stdout like the service's, and the exit code (0 done, 1 failure,
// 2 bad usage).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/httpapi"
	"polyshop/inventory-go/internal/rebalance"
	"polyshop/inventory-go/internal/store/redis"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `usage: inventoryctl rebalance --registry redis://host:port/db --store ID=redis://host:port/db ... --to ID,ID,...

Moves the inventory products whose owner changes from the ring in the ring record to
the ring of --to, while the shards serve, then writes the new ring record
(services/contracts/ring.md, Rebalance). Every shard of the old and the new ring needs a
--store. Running the same command again resumes an interrupted rebalance.

  --registry  the ring record's Redis (the shards' REGISTRY_URL; default $REGISTRY_URL)
  --store     ID=URL, one per shard: its REDIS_URL
  --to        the new ring's shard ids, comma-separated

Environment: LOG_LEVEL (debug, info, warn, error; default info).
INVENTORYCTL_STEP_DELAY_MS is for tests only: a pause after each step of a move.
Exit codes: 0 done (or nothing to do), 1 failure (run it again to resume), 2 bad usage.
`

// storeFlags collects repeated --store ID=URL.
type storeFlags map[string]*goredis.Options

func (s storeFlags) String() string { return "" }

func (s storeFlags) Set(v string) error {
	id, url, ok := strings.Cut(v, "=")
	id = strings.TrimSpace(id)
	if !ok || !config.ValidShardID(id) {
		return fmt.Errorf("want ID=redis://..., ID of 1 .. 64 of [A-Za-z0-9._-]")
	}
	if _, dup := s[id]; dup {
		return fmt.Errorf("shard %s given twice", id)
	}
	_, opt, err := config.ParseRedisURL(url)
	if err != nil {
		return fmt.Errorf("shard %s: %w", id, err)
	}
	s[id] = opt
	return nil
}

// usageError is a command line that cannot run.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// parse reads `rebalance` and its flags into a Config (without its logger).
func parse(args []string, getenv func(string) string) (rebalance.Config, string, error) {
	if len(args) == 0 || args[0] != "rebalance" {
		return rebalance.Config{}, "", &usageError{"want the command rebalance"}
	}
	fs := flag.NewFlagSet("rebalance", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the usage text is printed once, by run
	registry := fs.String("registry", getenv("REGISTRY_URL"), "")
	stores := storeFlags{}
	fs.Var(stores, "store", "")
	to := fs.String("to", "", "")
	if err := fs.Parse(args[1:]); err != nil {
		return rebalance.Config{}, "", &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return rebalance.Config{}, "", &usageError{"unexpected argument " + strconv.Quote(fs.Arg(0))}
	}
	cfg := rebalance.Config{Stores: stores}
	if *registry == "" {
		return cfg, "", &usageError{"--registry is required"}
	}
	var err error
	if _, cfg.Registry, err = config.ParseRedisURL(*registry); err != nil {
		return cfg, "", &usageError{"--registry " + err.Error()}
	}
	for _, id := range strings.Split(*to, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		if !config.ValidShardID(id) {
			return cfg, "", &usageError{fmt.Sprintf("--to: shard id %q: want 1 .. 64 of [A-Za-z0-9._-]", id)}
		}
		cfg.To = append(cfg.To, id)
	}
	if len(cfg.To) == 0 {
		return cfg, "", &usageError{"--to names no shard"}
	}
	if v := strings.TrimSpace(getenv("INVENTORYCTL_STEP_DELAY_MS")); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 || ms > 60_000 {
			return cfg, "", &usageError{"INVENTORYCTL_STEP_DELAY_MS: want 0 .. 60000"}
		}
		cfg.StepDelay = time.Duration(ms) * time.Millisecond
	}
	level := strings.ToLower(strings.TrimSpace(getenv("LOG_LEVEL")))
	switch level {
	case "":
		level = "info"
	case "debug", "info", "warn", "error":
	default:
		return cfg, "", &usageError{"LOG_LEVEL: want debug, info, warn or error"}
	}
	return cfg, level, nil
}

// run executes one command and answers its exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, level, err := parse(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "inventoryctl: %v\n\n%s", err, usage)
		return exitUsage
	}
	log := httpapi.NewLogger(httpapi.SyncWriter(stdout), level).With("cmd", "inventoryctl")
	redis.RouteClientLogs(log)
	cfg.Log = log
	res, err := rebalance.Run(ctx, cfg)
	if err != nil {
		log.Error("rebalance failed", "error", err.Error(), "moved", res.Moved)
		fmt.Fprintln(stderr, "inventoryctl:", err)
		if errors.Is(err, rebalance.ErrUsage) {
			fmt.Fprint(stderr, "\n", usage)
			return exitUsage
		}
		return exitFail
	}
	return exitOK
}
