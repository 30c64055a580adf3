// This file owns the service's lifetime: config -> logger -> store -> HTTP server, expiry
// sweeper and registry heartbeat, until ctx ends (SIGTERM/SIGINT), then deregistration
// and a graceful drain.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/httpapi"
	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/registry"
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

	var store inventory.Store
	var rstore *redis.Store
	if cfg.Redis != nil {
		redis.RouteClientLogs(log)
		if rstore, err = connectRedis(ctx, cfg, catalog, log); err != nil {
			if ctx.Err() != nil { // stopped while waiting for Redis: a clean stop
				log.Info("stopped", "reason", "signal before redis was reachable")
				return nil
			}
			return fmt.Errorf("redis %s: %w", config.MaskURL(cfg.RedisURL), err)
		}
		store = rstore
	} else {
		store = memory.New(catalog, clock, inventory.DefaultTiming)
	}
	defer store.Close()

	api := httpapi.New(httpapi.Deps{Store: store, Warehouses: catalog.Warehouses, Config: cfg, Logger: log, AccessLog: out})
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
	log.Info("listening", "addr", ln.Addr().String(), "products", len(catalog.Products), "catalog", path)
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
	deregister := startRegistry(cfg, getenv, log)

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

// startRegistry runs the registry heartbeat (services/contracts/ring.md) in the Redis of
// REGISTRY_URL or REDIS_URL (neither: no registration) and answers the function that
// stops it and deregisters. A Redis that is away is the heartbeat's business: it logs
// and retries, and never holds up a request or the start.
func startRegistry(cfg config.Config, getenv func(string) string, log *slog.Logger) (deregister func()) {
	if cfg.Registry == nil {
		return func() {}
	}
	o := *cfg.Registry
	o.DialTimeout = time.Second
	o.ContextTimeoutEnabled = true
	o.PoolSize = 2
	rdb := goredis.NewClient(&o)
	// INVENTORY_SHARD_ID is the shard's name (ring.md); empty = unsharded, shard null.
	var shard *string
	if id := strings.Trim(getenv("INVENTORY_SHARD_ID"), " \t\n\v\f\r"); id != "" {
		shard = &id
	}
	reg := registry.New(rdb, registry.Entry{
		Name: "inventory", InstanceID: registry.NewInstanceID(), URL: cfg.AdvertiseURL,
		Language: "go", Version: httpapi.Version, StartedAt: time.Now().UTC().Format(time.RFC3339),
		Shard: shard,
	})
	where := cfg.RegistryURL
	if where == "" {
		where = cfg.RedisURL
	}
	log.Info("registry", "field", reg.Entry().Field(), "url", cfg.AdvertiseURL, "redis", config.MaskURL(where))
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
		_ = rdb.Close()
	})
}

// connectRedis retries for a while: under docker compose or Kubernetes, Redis may come
// up a few seconds after this service, and a crash loop would only add noise.
func connectRedis(ctx context.Context, cfg config.Config, c inventory.Catalog, log *slog.Logger) (*redis.Store, error) {
	const attempts = 20
	for i := 1; ; i++ {
		// No deadline on the whole connect-and-seed: its length grows with the catalog.
		// Dials (1 s) and each seed batch (5 s) are bounded inside redis.New.
		s, err := redis.New(ctx, cfg.Redis, c, inventory.DefaultTiming)
		if err == nil || i == attempts || ctx.Err() != nil || !errors.Is(err, inventory.ErrStoreUnavailable) {
			return s, err
		}
		log.Warn("redis not reachable yet", "attempt", i, "error", err.Error())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
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
