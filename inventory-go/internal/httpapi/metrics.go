// This file owns the service's Prometheus metrics (names, labels and buckets of
// observability.md) on a registry per Server, so tests can build many servers.
package httpapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"polyshop/inventory-go/internal/inventory"
)

var httpBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

type metrics struct {
	reg          *prometheus.Registry
	duration     *prometheus.HistogramVec
	reservations *prometheus.CounterVec
	// active counts /api/* requests in flight (OpenTelemetry's http.server.active_requests):
	// saturation at a glance, and what a drain waits for.
	active prometheus.Gauge
}

// newMetrics registers the service's metrics; shard labels the products-held gauge
// ("unsharded" for an inventory that holds the whole catalog).
func newMetrics(store inventory.Store, shard string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Duration of HTTP server requests.",
			Buckets: httpBuckets,
		}, []string{"http_request_method", "http_route", "http_response_status_code"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_server_active_requests",
			Help: "API requests in flight.",
		}),
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "polyshop_inventory_reservations_total",
			Help: "Reservation outcomes.",
		}, []string{"result"}),
	}
	for _, r := range []string{"reserved", "insufficient", "committed", "released", "expired", "replayed"} {
		m.reservations.WithLabelValues(r) // export zeros, so rate() works from the first event
	}
	m.reg.MustRegister(m.duration, m.active, m.reservations, availableCollector{store, shardLabel(shard)},
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

var (
	availableDesc = prometheus.NewDesc("polyshop_inventory_available_units",
		"Free (unheld) units per warehouse.", []string{"warehouse"}, nil)
	heldDesc = prometheus.NewDesc("polyshop_inventory_products_held",
		"Products this shard holds (ring.md): how the catalog is spread over the shards.", []string{"shard"}, nil)
)

func shardLabel(id string) string {
	if id == "" {
		return "unsharded"
	}
	return id
}

// availableCollector reads the warehouse totals and the products held at scrape time:
// always exact, and correct across replicas sharing Redis.
type availableCollector struct {
	store inventory.Store
	shard string
}

func (c availableCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- availableDesc
	ch <- heldDesc
}

func (c availableCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ws, err := c.store.Warehouses(ctx)
	if err != nil {
		return // store down: no sample beats a stale one, and /metrics must still answer
	}
	for _, w := range ws {
		ch <- prometheus.MustNewConstMetric(availableDesc, prometheus.GaugeValue, float64(w.Available), w.ID)
	}
	if held, err := c.store.Held(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, float64(held), c.shard)
	}
}
