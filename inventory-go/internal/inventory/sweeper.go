// This file owns the expiry loop: holds that are never committed return their units.
// Several replicas may run it at once; the stores make each expiry happen exactly once.
package inventory

import (
	"context"
	"log/slog"
	"time"
)

// sweepBatch bounds one store call so a backlog never blocks Redis for long.
const sweepBatch = 200

// Sweep expires due holds until none is left (or ctx ends) and answers how many.
func Sweep(ctx context.Context, s Store) (int, error) {
	total := 0
	for {
		n, err := s.SweepExpired(ctx, sweepBatch)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

// RunSweeper calls Sweep every interval until ctx ends; onExpired receives each
// batch count (metrics). Errors are logged and retried on the next tick: a Redis
// outage must not stop expiry for good.
func RunSweeper(ctx context.Context, s Store, interval time.Duration, log *slog.Logger, onExpired func(int)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := Sweep(ctx, s)
		if n > 0 {
			onExpired(n)
			log.Debug("holds expired", "count", n)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("sweep failed", "error", err.Error())
		}
	}
}
