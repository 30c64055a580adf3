// Benchmarks of the hot paths through the whole handler (routing, ids, metrics, access
// log to io.Discard): GET /api/inventory/{id} and POST /api/reservations, per store.
package httpapi

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"polyshop/inventory-go/internal/inventory"
)

func benchServer(b *testing.B, be backend) (*Server, inventory.Store) {
	store := be.New(b, seedCatalog(b), inventory.DefaultTiming, be.Clock(b))
	cfg := testConfig()
	cfg.LogLevel = "info"
	return New(Deps{Store: store, Warehouses: seedCatalog(b).Warehouses, Config: cfg,
		Logger: NewLogger(io.Discard, "info"), AccessLog: io.Discard}), store
}

func benchBackends(b *testing.B) []backend {
	return backends(b)
}

func BenchmarkGetItem(b *testing.B) {
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			srv, _ := benchServer(b, be)
			req := httptest.NewRequest("GET", "/api/inventory/123", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

func BenchmarkReserve(b *testing.B) {
	for _, be := range benchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			srv, store := benchServer(b, be)
			if _, err := store.Restock(context.Background(), 123, inventory.MaxStock); err != nil {
				b.Fatal(err)
			}
			const body = `{"product_id":123,"quantity":1}`
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest("POST", "/api/reservations", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != 201 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
