// This file owns the service's lifetime: config -> logger -> store -> HTTP server and
// expiry sweeper, until ctx ends (SIGTERM/SIGINT), then a graceful drain.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/httpapi"
	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/store/memory"
	"polyshop/inventory-go/internal/store/redis"
)

// shutdownGrace bounds the drain of in-flight requests; Kubernetes' default grace
// period is 30 s, so this leaves room.
const shutdownGrace = 20 * time.Second

// sweepInterval: a hold is back on sale at most this long after its TTL.
const sweepInterval = time.Second

// run starts the service and blocks until ctx ends; ready, when not nil, receives the
// bound address (tests start the service on port 0).
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	return runWith(ctx, getenv, stdout, nil)
}

func runWith(ctx context.Context, getenv func(string) string, stdout io.Writer, ready chan<- string) error {
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
	if cfg.Redis != nil {
		seedCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		store, err = redis.New(seedCtx, cfg.Redis, catalog, time.Now)
		cancel()
		if err != nil {
			return fmt.Errorf("redis %s: %w", config.MaskURL(cfg.RedisURL), err)
		}
	} else {
		store = memory.New(catalog, time.Now)
	}
	defer store.Close()

	api := httpapi.New(httpapi.Deps{Store: store, Warehouses: catalog.Warehouses, Config: cfg, Logger: log, AccessLog: out})
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "products", len(catalog.Products), "catalog", path)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		inventory.RunSweeper(sweepCtx, store, sweepInterval, log, api.CountExpired)
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutdown", "grace_s", int(shutdownGrace/time.Second))
		drainCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		err = srv.Shutdown(drainCtx)
		cancel()
	}
	stopSweep()
	<-sweepDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	log.Info("stopped")
	return err
}
