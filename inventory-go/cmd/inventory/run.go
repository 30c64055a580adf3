// This file owns the service's lifetime: config -> logger -> ring (a shard) -> store ->
// HTTP server, expiry sweeper and registry heartbeat, until ctx ends (SIGTERM/SIGINT),
// then deregistration and a graceful drain.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/httpapi"
	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/registry"
	"polyshop/inventory-go/internal/ring"
	"polyshop/inventory-go/internal/ringrecord"
	"polyshop/inventory-go/internal/store/memory"
	"polyshop/inventory-go/internal/store/redis"
)

// shutdownGrace bounds the drain of in-flight requests; Kubernetes' default grace
// period is 30 s, so this leaves room.
const shutdownGrace = 20 * time.Second

// sweepInterval: a hold is back on sale at most this long after its TTL.
const sweepInterval = time.Second

// run starts the service and blocks until ctx ends.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	return runWith(ctx, getenv, stdout, nil, time.Now)
}

// runWith is run with hooks for tests: ready, when not nil, receives the bound address
// once the listener is open; clock is this replica's clock. Only the memory store
// decides by it: the Redis store asks Redis, so replicas never disagree on time.
func runWith(ctx context.Context, getenv func(string) string, stdout io.Writer, ready chan<- string, clock inventory.Clock) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	out := httpapi.SyncWriter(stdout)
	log := httpapi.NewLogger(out, cfg.LogLevel)
	log.Info("config", cfg.LogAttrs()...)

	path, err := inventory.FindCatalog(".")
	if err != nil {
		return err
	}
	catalog, err := inventory.LoadCatalog(path)
	if err != nil {
		return err
	}

	if cfg.Redis != nil || cfg.Registry != nil {
		redis.RouteClientLogs(log)
	}
	// One client for the registry's Redis, shared by the ring lookup and the heartbeat.
	var reg *goredis.Client
	if cfg.Registry != nil {
		reg = registryClient(cfg.Registry)
		defer func() { _ = reg.Close() }()
	}
	// A shard seeds and serves only what the ring gives it; unsharded, all of it.
	seed := catalog
	var shard *inventory.Shard
	if cfg.ShardID != "" {
		if shard, err = placeShard(ctx, cfg, reg, catalog, log); err != nil {
			if ctx.Err() != nil {
				log.Info("stopped", "reason", "signal before the ring record was reachable")
				return nil
			}
			return err
		}
		seed = shard.Owned(catalog)
	}

	var store inventory.Store
	var rstore *redis.Store
	if cfg.Redis != nil {
		if rstore, err = connectRedis(ctx, cfg, seed, log); err != nil {
			if ctx.Err() != nil { // stopped while waiting for Redis: a clean stop
				log.Info("stopped", "reason", "signal before redis was reachable")
				return nil
			}
			return fmt.Errorf("redis %s: %w", config.MaskURL(cfg.RedisURL), err)
		}
		store = rstore
	} else {
		store = memory.New(seed, clock, inventory.DefaultTiming)
	}
	defer store.Close()
	if shard != nil {
		store = shard.Serve(store)
	}

	api := httpapi.New(httpapi.Deps{Store: store, Warehouses: catalog.Warehouses, Config: cfg, Logger: log, AccessLog: out})
	held, err := store.Held(ctx)
	if err != nil {
		return fmt.Errorf("count held products: %w", err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// net/http's own complaints (bad TLS, broken connections) as JSON lines too
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "products", len(catalog.Products), "held", held,
		"shard_id", cfg.ShardID, "catalog", path)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	// Background loops stop after the HTTP drain: requests in flight may still need
	// their holds swept correctly.
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var background sync.WaitGroup
	background.Go(func() { inventory.RunSweeper(bgCtx, store, sweepInterval, log, api.CountExpired) })
	if rstore != nil {
		background.Go(func() { watchSeed(bgCtx, rstore, log) })
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	// Registered once the listener is open, so the advertised URL answers.
	deregister := startRegistry(cfg, reg, log)

	select {
	case err = <-serveErr:
		deregister()
	case <-ctx.Done():
		// Out of the registry first: routers stop picking this instance while it drains.
		deregister()
		log.Info("shutdown", "grace_s", int(shutdownGrace/time.Second))
		drainCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		err = srv.Shutdown(drainCtx)
		cancel()
	}
	stopBackground()
	background.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	log.Info("stopped")
	return err
}

// registryClient is the client for the registry's Redis: short dials, every call bounded
// by its context, and a small pool (a beat every few seconds and one read at the start).
func registryClient(opt *goredis.Options) *goredis.Client {
	o := *opt
	o.DialTimeout = time.Second
	o.ContextTimeoutEnabled = true
	o.PoolSize = 2
	return goredis.NewClient(&o)
}

// startRegistry runs the registry heartbeat (services/contracts/ring.md) in rdb, the
// Redis of REGISTRY_URL or REDIS_URL (nil: no registration), and answers the function
// that stops it and deregisters. A Redis that is away is the heartbeat's business: it
// logs and retries, and never holds up a request or the start.
func startRegistry(cfg config.Config, rdb *goredis.Client, log *slog.Logger) (deregister func()) {
	if rdb == nil {
		return func() {}
	}
	// The shard's name (ring.md); empty = unsharded, shard null.
	var shard *string
	if cfg.ShardID != "" {
		id := cfg.ShardID
		shard = &id
	}
	reg := registry.New(rdb, registry.Entry{
		Name: "inventory", InstanceID: registry.NewInstanceID(), URL: cfg.AdvertiseURL,
		Language: "go", Version: httpapi.Version, StartedAt: time.Now().UTC().Format(time.RFC3339),
		Shard: shard,
	})
	log.Info("registry", "field", reg.Entry().Field(), "url", cfg.AdvertiseURL, "redis", config.MaskURL(cfg.RegistryWhere()))
	ctx, stop := context.WithCancel(context.Background())
	var beating sync.WaitGroup
	beating.Go(func() { reg.Run(ctx, registry.Interval, log) })
	return sync.OnceFunc(func() {
		stop()
		beating.Wait() // no beat can land after the deregistration
		if err := reg.Deregister(context.Background()); err != nil {
			log.Warn("registry deregister failed", "error", err.Error())
		} else {
			log.Info("deregistered", "field", reg.Entry().Field())
		}
	})
}

// connectRedis retries for a while: under docker compose or Kubernetes, Redis may come
// up a few seconds after this service, and a crash loop would only add noise.
func connectRedis(ctx context.Context, cfg config.Config, c inventory.Catalog, log *slog.Logger) (*redis.Store, error) {
	return retryStart(ctx, log, "redis not reachable yet", inventory.ErrStoreUnavailable, func() (*redis.Store, error) {
		// No deadline on the whole connect-and-seed: its length grows with the catalog.
		// Dials (1 s) and each seed batch (5 s) are bounded inside redis.New.
		if cfg.ShardID != "" {
			return redis.NewShard(ctx, cfg.Redis, c, inventory.DefaultTiming, cfg.ShardID)
		}
		return redis.New(ctx, cfg.Redis, c, inventory.DefaultTiming)
	})
}

// retryStart calls fn until it succeeds, fails with an error that is not transient, ctx
// ends, or 20 attempts 500 ms apart have failed.
func retryStart[T any](ctx context.Context, log *slog.Logger, msg string, transient error, fn func() (T, error)) (T, error) {
	const attempts = 20
	for i := 1; ; i++ {
		v, err := fn()
		if err == nil || i == attempts || ctx.Err() != nil || !errors.Is(err, transient) {
			return v, err
		}
		log.Warn(msg, "attempt", i, "error", err.Error())
		select {
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// placeShard finds this shard's ring: the ring record's members when there is a
// registry (created from INVENTORY_SHARDS by the first shard to start), else
// INVENTORY_SHARDS, fixed for the life of the process (ring.md).
func placeShard(ctx context.Context, cfg config.Config, rdb *goredis.Client, c inventory.Catalog, log *slog.Logger) (*inventory.Shard, error) {
	members, epoch, source := cfg.Shards, int64(0), "INVENTORY_SHARDS"
	if rdb != nil {
		rec, err := retryStart(ctx, log, "registry not reachable yet", ringrecord.ErrUnavailable, func() (ringrecord.Record, error) {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return ringrecord.Ensure(cctx, rdb, cfg.Shards)
		})
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", config.MaskURL(cfg.RegistryWhere()), err)
		}
		members, epoch, source = rec.Members, rec.Epoch, "ring record read"
		if rec.Created {
			source = "ring record created"
		}
		if !slices.Equal(rec.Members, cfg.Shards) {
			log.Warn("ring record differs from INVENTORY_SHARDS: the record decides",
				"record", strings.Join(rec.Members, ","), "INVENTORY_SHARDS", strings.Join(cfg.Shards, ","))
		}
	}
	shard := inventory.NewShard(cfg.ShardID, ring.New(members), c)
	if !slices.Contains(members, cfg.ShardID) {
		log.Warn("shard is not a member of the ring: it holds nothing until a rebalance adds it",
			"shard_id", cfg.ShardID, "members", strings.Join(members, ","))
	}
	log.Info("shard", "shard_id", cfg.ShardID, "members", strings.Join(members, ","), "epoch", epoch, "source", source)
	return shard, nil
}

// watchSeed re-seeds the catalog if Redis loses its data while the service runs.
func watchSeed(ctx context.Context, s *redis.Store, log *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if again, err := s.EnsureSeeded(ctx); again && err == nil {
			log.Warn("redis data lost: catalog seeded again")
		}
	}
}
