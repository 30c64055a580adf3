// Table tests of every endpoint, run against both stores: happy paths, every bad-input
// class, and the shared error JSON on each failure.
package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/storetest"
)

type endpointCase struct {
	name         string
	method, path string
	body         string
	headers      []string
	cfg          func(*config.Config)
	// setup runs first and answers a value substituted for {rid} in path.
	setup  func(t *testing.T, e *env) string
	status int
	code   string // error code; empty on success
	fields []string
	check  func(t *testing.T, e *env, r response)
}

func reserveID(t *testing.T, e *env, body string) string {
	t.Helper()
	r := e.do(t, "POST", "/api/reservations", body)
	if r.status != http.StatusCreated {
		t.Fatalf("setup reserve: %d %s", r.status, r.raw)
	}
	return r.body["reservation_id"].(string)
}

func wantAvailable(t *testing.T, e *env, id, available int64) {
	t.Helper()
	r := e.do(t, "GET", fmt.Sprintf("/api/inventory/%d", id), "")
	if r.status != 200 || num(t, r.body["available"]) != available {
		t.Fatalf("product %d: %d %s, want available %d", id, r.status, r.raw, available)
	}
}

var endpointCases = []endpointCase{
	// GET /api/inventory/{id}
	{name: "get product 123", method: "GET", path: "/api/inventory/123", status: 200,
		check: func(t *testing.T, e *env, r response) {
			if num(t, r.body["product_id"]) != 123 || num(t, r.body["available"]) != 223 ||
				r.body["warehouse"] != "WH-4" || num(t, r.body["reserved"]) != 0 || num(t, r.body["recent_demand"]) != 0 {
				t.Fatalf("body %s", r.raw)
			}
			ts, err := time.Parse(time.RFC3339, r.body["last_updated"].(string))
			if err != nil {
				t.Fatalf("last_updated %v: %v", r.body["last_updated"], err)
			}
			within(t, "last_updated of a seeded product", ts, e.seededLo, e.seededHi)
		}},
	{name: "get unknown product", method: "GET", path: "/api/inventory/999999", status: 404, code: "product_not_found"},
	{name: "get id not a number", method: "GET", path: "/api/inventory/abc", status: 422, code: "validation_failed"},
	{name: "get id zero", method: "GET", path: "/api/inventory/0", status: 422, code: "validation_failed", fields: []string{"id"}},
	{name: "get id negative", method: "GET", path: "/api/inventory/-4", status: 422, code: "validation_failed"},
	{name: "get id above 10^9", method: "GET", path: "/api/inventory/1000000001", status: 422, code: "validation_failed"},
	{name: "get id beyond int64", method: "GET", path: "/api/inventory/99999999999999999999999", status: 422, code: "validation_failed"},

	// POST /api/inventory/batch
	{name: "batch", method: "POST", path: "/api/inventory/batch", body: `{"ids":[123,1,5000,123]}`, status: 200,
		check: func(t *testing.T, e *env, r response) {
			items := r.body["items"].([]any)
			nf := r.body["not_found"].([]any)
			if len(items) != 2 || num(t, items[0].(map[string]any)["product_id"]) != 123 ||
				num(t, items[1].(map[string]any)["product_id"]) != 1 || len(nf) != 1 || num(t, nf[0]) != 5000 {
				t.Fatalf("body %s", r.raw)
			}
		}},
	{name: "batch all found has empty not_found", method: "POST", path: "/api/inventory/batch", body: `{"ids":[7]}`, status: 200,
		check: func(t *testing.T, e *env, r response) {
			if !strings.Contains(string(r.raw), `"not_found":[]`) {
				t.Fatalf("not_found must be [] not null: %s", r.raw)
			}
		}},
	{name: "batch empty", method: "POST", path: "/api/inventory/batch", body: `{"ids":[]}`, status: 422, code: "validation_failed", fields: []string{"ids"}},
	{name: "batch 101 ids", method: "POST", path: "/api/inventory/batch",
		body: `{"ids":[` + strings.Repeat("1,", 100) + `1]}`, status: 422, code: "validation_failed"},
	{name: "batch ids not an array", method: "POST", path: "/api/inventory/batch", body: `{"ids":"1,2"}`, status: 422, code: "validation_failed"},
	{name: "batch bad element", method: "POST", path: "/api/inventory/batch", body: `{"ids":[1,0,"x"]}`, status: 422,
		code: "validation_failed", fields: []string{"ids[1]", "ids[2]"}},
	{name: "batch missing ids", method: "POST", path: "/api/inventory/batch", body: `{}`, status: 422, code: "validation_failed", fields: []string{"ids"}},
	{name: "batch malformed", method: "POST", path: "/api/inventory/batch", body: `{"ids":[1,`, status: 400, code: "malformed_request"},
	{name: "batch form content type", method: "POST", path: "/api/inventory/batch", body: `{"ids":[1]}`,
		headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, code: "unsupported_media_type"},

	// GET /api/warehouses
	{name: "warehouses", method: "GET", path: "/api/warehouses", status: 200,
		check: func(t *testing.T, e *env, r response) {
			ws := r.body["warehouses"].([]any)
			var products, units int64
			for _, w := range ws {
				m := w.(map[string]any)
				products += num(t, m["products"])
				units += num(t, m["available"])
				if m["id"] == "WH-4" && m["name"] != "Reno" {
					t.Fatalf("WH-4: %v", m)
				}
			}
			var want int64
			for _, p := range seedCatalog(t).Products {
				want += p.Stock
			}
			if len(ws) != 5 || products != 1000 || units != want {
				t.Fatalf("%d warehouses, %d products, %d units; want 5, 1000, %d", len(ws), products, units, want)
			}
		}},

	// POST /api/reservations
	{name: "reserve 2 of 123", method: "POST", path: "/api/reservations", body: `{"product_id":123,"quantity":2}`, status: 201,
		check: func(t *testing.T, e *env, r response) {
			id, _ := r.body["reservation_id"].(string)
			if !strings.HasPrefix(id, "RES-") || num(t, r.body["available_before"]) != 223 ||
				num(t, r.body["recent_demand_before"]) != 0 || num(t, r.body["quantity"]) != 2 || num(t, r.body["product_id"]) != 123 {
				t.Fatalf("body %s", r.raw)
			}
			exp, err := time.Parse(time.RFC3339, r.body["expires_at"].(string))
			if err != nil || r.body["state"] != "held" {
				t.Fatalf("expires_at %v (%v), state %v", r.body["expires_at"], err, r.body["state"])
			}
			within(t, "expires_at - RESERVATION_TTL_S", exp.Add(-300*time.Second), e.before, e.after)
			wantAvailable(t, e, 123, 221)
		}},
	{name: "reserve with ttl and charset", method: "POST", path: "/api/reservations",
		body: `{"product_id":1,"quantity":1,"ttl_seconds":60}`, headers: []string{"Content-Type", "application/json; charset=utf-8"}, status: 201,
		check: func(t *testing.T, e *env, r response) {
			exp, _ := time.Parse(time.RFC3339, r.body["expires_at"].(string))
			within(t, "expires_at - 60 s", exp.Add(-time.Minute), e.before, e.after)
		}},
	{name: "reserve with an empty content type", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1}`,
		headers: []string{"Content-Type", ""}, status: 415, code: "unsupported_media_type"},
	{name: "reserve with a +json content type", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1}`,
		headers: []string{"Content-Type", "application/vnd.api+json"}, status: 415, code: "unsupported_media_type"},
	{name: "reserve with a latin-1 charset", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1}`,
		headers: []string{"Content-Type", "application/json; charset=latin-1"}, status: 415, code: "unsupported_media_type"},
	{name: "reserve with an upper-case content type", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1}`,
		headers: []string{"Content-Type", "Application/JSON;charset=\"UTF-8\""}, status: 201},
	{name: "reserve 224 of 123", method: "POST", path: "/api/reservations", body: `{"product_id":123,"quantity":224}`, status: 409, code: "insufficient_stock",
		check: func(t *testing.T, e *env, r response) { wantAvailable(t, e, 123, 223) }},
	{name: "reserve unknown product", method: "POST", path: "/api/reservations", body: `{"product_id":999999,"quantity":1}`, status: 404, code: "product_not_found"},
	{name: "reserve idempotent replay", method: "POST", path: "/api/reservations",
		body: `{"product_id":123,"quantity":2,"idempotency_key":"order-1"}`, status: 200,
		setup: func(t *testing.T, e *env) string {
			return reserveID(t, e, `{"product_id":123,"quantity":2,"idempotency_key":"order-1"}`)
		},
		check: func(t *testing.T, e *env, r response) {
			if num(t, r.body["available_before"]) != 223 {
				t.Fatalf("replay must answer the first body: %s", r.raw)
			}
			wantAvailable(t, e, 123, 221)
		}},
	{name: "reserve idempotency conflict", method: "POST", path: "/api/reservations",
		body: `{"product_id":123,"quantity":3,"idempotency_key":"order-1"}`, status: 409, code: "idempotency_conflict",
		setup: func(t *testing.T, e *env) string {
			return reserveID(t, e, `{"product_id":123,"quantity":2,"idempotency_key":"order-1"}`)
		}},
	{name: "reserve quantity 0", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":0}`, status: 422, code: "validation_failed", fields: []string{"quantity"}},
	{name: "reserve quantity negative", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":-3}`, status: 422, code: "validation_failed", fields: []string{"quantity"}},
	{name: "reserve quantity 10001", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":10001}`, status: 422, code: "validation_failed", fields: []string{"quantity"}},
	{name: "reserve quantity huge", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":100000000000000000000000000000}`, status: 422, code: "validation_failed", fields: []string{"quantity"}},
	{name: "reserve quantity fraction", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1.5}`, status: 422, code: "validation_failed", fields: []string{"quantity"}},
	{name: "reserve quantity string", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":"2"}`, status: 422, code: "validation_failed", fields: []string{"quantity"}},
	{name: "reserve product id bool", method: "POST", path: "/api/reservations", body: `{"product_id":true,"quantity":2}`, status: 422, code: "validation_failed", fields: []string{"product_id"}},
	{name: "reserve missing fields", method: "POST", path: "/api/reservations", body: `{}`, status: 422, code: "validation_failed", fields: []string{"product_id", "quantity"}},
	{name: "reserve null fields", method: "POST", path: "/api/reservations", body: `{"product_id":null,"quantity":null}`, status: 422, code: "validation_failed", fields: []string{"product_id", "quantity"}},
	{name: "reserve unknown field", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1,"ttl":60}`, status: 422, code: "validation_failed", fields: []string{"ttl"}},
	{name: "reserve empty idempotency key", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1,"idempotency_key":""}`, status: 422, code: "validation_failed", fields: []string{"idempotency_key"}},
	{name: "reserve long idempotency key", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1,"idempotency_key":"` + strings.Repeat("k", 129) + `"}`, status: 422, code: "validation_failed", fields: []string{"idempotency_key"}},
	{name: "reserve control char in key", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1,"idempotency_key":"a\nb"}`, status: 422, code: "validation_failed", fields: []string{"idempotency_key"}},
	{name: "reserve key not a string", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1,"idempotency_key":7}`, status: 422, code: "validation_failed", fields: []string{"idempotency_key"}},
	{name: "reserve ttl 0", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1,"ttl_seconds":0}`, status: 422, code: "validation_failed", fields: []string{"ttl_seconds"}},
	{name: "reserve ttl above a day", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1,"ttl_seconds":86401}`, status: 422, code: "validation_failed", fields: []string{"ttl_seconds"}},
	{name: "reserve malformed JSON", method: "POST", path: "/api/reservations", body: `{"product_id":1,`, status: 400, code: "malformed_request"},
	{name: "reserve trailing garbage", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1} x`, status: 400, code: "malformed_request"},
	{name: "reserve empty body", method: "POST", path: "/api/reservations", headers: []string{"Content-Type", "application/json"},
		status: 400, code: "malformed_request"},
	{name: "reserve empty body without content type", method: "POST", path: "/api/reservations", status: 415, code: "unsupported_media_type"},
	{name: "reserve array body", method: "POST", path: "/api/reservations", body: `[1,2]`, status: 422, code: "validation_failed", fields: []string{"body"}},
	{name: "reserve null body", method: "POST", path: "/api/reservations", body: `null`, status: 422, code: "validation_failed", fields: []string{"body"}},
	{name: "reserve oversized body", method: "POST", path: "/api/reservations",
		body: `{"product_id":1,"quantity":1,"idempotency_key":"` + strings.Repeat("x", 2000) + `"}`, status: 413, code: "payload_too_large"},
	{name: "reserve text/plain", method: "POST", path: "/api/reservations", body: `{"product_id":1,"quantity":1}`,
		headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},

	// POST /api/reservations/{id}/commit
	{name: "commit", method: "POST", path: "/api/reservations/{rid}/commit", status: 200,
		setup: func(t *testing.T, e *env) string { return reserveID(t, e, `{"product_id":123,"quantity":2}`) },
		check: func(t *testing.T, e *env, r response) {
			if r.body["state"] != "committed" || r.body["repeated"] != false || num(t, r.body["quantity"]) != 2 {
				t.Fatalf("body %s", r.raw)
			}
			wantAvailable(t, e, 123, 221)
		}},
	{name: "commit twice repeats the answer", method: "POST", path: "/api/reservations/{rid}/commit", status: 200,
		setup: func(t *testing.T, e *env) string {
			id := reserveID(t, e, `{"product_id":123,"quantity":2}`)
			if r := e.do(t, "POST", "/api/reservations/"+id+"/commit", ""); r.status != 200 {
				t.Fatalf("first commit %d", r.status)
			}
			return id
		},
		check: func(t *testing.T, e *env, r response) {
			if r.body["state"] != "committed" || r.body["repeated"] != true {
				t.Fatalf("body %s", r.raw)
			}
			wantAvailable(t, e, 123, 221) // sold once
		}},
	{name: "commit after expiry", method: "POST", path: "/api/reservations/{rid}/commit", status: 409, code: "reservation_expired",
		setup: func(t *testing.T, e *env) string {
			id := reserveID(t, e, `{"product_id":123,"quantity":2,"ttl_seconds":1}`)
			storetest.Advance(e.clock, time.Second)
			return id
		},
		check: func(t *testing.T, e *env, r response) { wantAvailable(t, e, 123, 223) }},
	{name: "commit unknown", method: "POST", path: "/api/reservations/RES-0123456789abcdef01234567/commit", status: 404, code: "reservation_not_found"},
	{name: "commit garbage id", method: "POST", path: "/api/reservations/nope/commit", status: 404, code: "reservation_not_found"},

	// DELETE /api/reservations/{id}
	{name: "release", method: "DELETE", path: "/api/reservations/{rid}", status: 200,
		setup: func(t *testing.T, e *env) string { return reserveID(t, e, `{"product_id":123,"quantity":5}`) },
		check: func(t *testing.T, e *env, r response) {
			if r.body["state"] != "released" || r.body["repeated"] != false {
				t.Fatalf("body %s", r.raw)
			}
			wantAvailable(t, e, 123, 223)
		}},
	{name: "release twice is idempotent", method: "DELETE", path: "/api/reservations/{rid}", status: 200,
		setup: func(t *testing.T, e *env) string {
			id := reserveID(t, e, `{"product_id":123,"quantity":5}`)
			e.do(t, "DELETE", "/api/reservations/"+id, "")
			return id
		},
		check: func(t *testing.T, e *env, r response) {
			if r.body["state"] != "released" || r.body["repeated"] != true {
				t.Fatalf("body %s", r.raw)
			}
			wantAvailable(t, e, 123, 223)
		}},
	{name: "release after expiry answers expired", method: "DELETE", path: "/api/reservations/{rid}", status: 200,
		setup: func(t *testing.T, e *env) string {
			id := reserveID(t, e, `{"product_id":123,"quantity":2,"ttl_seconds":1}`)
			storetest.Advance(e.clock, time.Second)
			return id
		},
		check: func(t *testing.T, e *env, r response) {
			if r.body["state"] != "expired" || r.body["repeated"] != false {
				t.Fatalf("body %s", r.raw)
			}
			wantAvailable(t, e, 123, 223)
		}},
	{name: "release committed", method: "DELETE", path: "/api/reservations/{rid}", status: 409, code: "reservation_committed",
		setup: func(t *testing.T, e *env) string {
			id := reserveID(t, e, `{"product_id":123,"quantity":5}`)
			e.do(t, "POST", "/api/reservations/"+id+"/commit", "")
			return id
		},
		check: func(t *testing.T, e *env, r response) { wantAvailable(t, e, 123, 218) }},
	{name: "commit released", method: "POST", path: "/api/reservations/{rid}/commit", status: 409, code: "reservation_released",
		setup: func(t *testing.T, e *env) string {
			id := reserveID(t, e, `{"product_id":123,"quantity":5}`)
			e.do(t, "DELETE", "/api/reservations/"+id, "")
			return id
		}},
	{name: "release unknown", method: "DELETE", path: "/api/reservations/RES-0123456789abcdef01234567", status: 404, code: "reservation_not_found"},

	// GET /api/reservations/{id}
	{name: "get held reservation", method: "GET", path: "/api/reservations/{rid}", status: 200,
		setup: func(t *testing.T, e *env) string { return reserveID(t, e, `{"product_id":123,"quantity":3}`) },
		check: func(t *testing.T, e *env, r response) {
			if r.body["state"] != "held" || num(t, r.body["quantity"]) != 3 || num(t, r.body["product_id"]) != 123 {
				t.Fatalf("body %s", r.raw)
			}
			if _, has := r.body["repeated"]; has {
				t.Fatalf("a lookup repeats nothing: %s", r.raw)
			}
		}},
	{name: "get committed reservation", method: "GET", path: "/api/reservations/{rid}", status: 200,
		setup: func(t *testing.T, e *env) string {
			id := reserveID(t, e, `{"product_id":123,"quantity":3}`)
			e.do(t, "POST", "/api/reservations/"+id+"/commit", "")
			return id
		},
		check: func(t *testing.T, e *env, r response) {
			if r.body["state"] != "committed" {
				t.Fatalf("body %s", r.raw)
			}
		}},
	{name: "get overdue reservation expires it", method: "GET", path: "/api/reservations/{rid}", status: 200,
		setup: func(t *testing.T, e *env) string {
			id := reserveID(t, e, `{"product_id":123,"quantity":3,"ttl_seconds":1}`)
			storetest.Advance(e.clock, time.Second)
			return id
		},
		check: func(t *testing.T, e *env, r response) {
			if r.body["state"] != "expired" {
				t.Fatalf("body %s", r.raw)
			}
			wantAvailable(t, e, 123, 223)
		}},
	{name: "get unknown reservation", method: "GET", path: "/api/reservations/RES-0123456789abcdef01234567", status: 404, code: "reservation_not_found"},
	{name: "get garbage reservation id", method: "GET", path: "/api/reservations/%00%ff", status: 404, code: "reservation_not_found"},

	// PUT /api/inventory/{id} (admin)
	{name: "restock", method: "PUT", path: "/api/inventory/123", body: `{"available":500}`,
		headers: []string{"Authorization", "Bearer " + adminToken}, status: 200,
		check: func(t *testing.T, e *env, r response) {
			if num(t, r.body["available"]) != 500 {
				t.Fatalf("body %s", r.raw)
			}
			wantAvailable(t, e, 123, 500)
		}},
	{name: "restock without token", method: "PUT", path: "/api/inventory/123", body: `{"available":500}`, status: 401, code: "unauthorized",
		check: func(t *testing.T, e *env, r response) { wantAvailable(t, e, 123, 223) }},
	{name: "restock basic auth", method: "PUT", path: "/api/inventory/123", body: `{"available":500}`,
		headers: []string{"Authorization", "Basic " + adminToken}, status: 401, code: "unauthorized"},
	{name: "restock wrong token", method: "PUT", path: "/api/inventory/123", body: `{"available":500}`,
		headers: []string{"Authorization", "Bearer nope"}, status: 403, code: "forbidden",
		check: func(t *testing.T, e *env, r response) { wantAvailable(t, e, 123, 223) }},
	{name: "restock token prefix", method: "PUT", path: "/api/inventory/123", body: `{"available":500}`,
		headers: []string{"Authorization", "Bearer " + adminToken[:5]}, status: 403, code: "forbidden"},
	{name: "restock admin off", method: "PUT", path: "/api/inventory/123", body: `{"available":500}`,
		headers: []string{"Authorization", "Bearer " + adminToken}, cfg: func(c *config.Config) { c.AdminToken = "" },
		status: 404, code: "not_found"},
	{name: "restock negative", method: "PUT", path: "/api/inventory/123", body: `{"available":-1}`,
		headers: []string{"Authorization", "Bearer " + adminToken}, status: 422, code: "validation_failed", fields: []string{"available"}},
	{name: "restock above 10^9", method: "PUT", path: "/api/inventory/123", body: `{"available":1000000001}`,
		headers: []string{"Authorization", "Bearer " + adminToken}, status: 422, code: "validation_failed", fields: []string{"available"}},
	{name: "restock wrong type", method: "PUT", path: "/api/inventory/123", body: `{"available":"many"}`,
		headers: []string{"Authorization", "Bearer " + adminToken}, status: 422, code: "validation_failed", fields: []string{"available"}},
	{name: "restock malformed", method: "PUT", path: "/api/inventory/123", body: `{"available":`,
		headers: []string{"Authorization", "Bearer " + adminToken}, status: 400, code: "malformed_request"},
	{name: "restock unknown product", method: "PUT", path: "/api/inventory/999999", body: `{"available":5}`,
		headers: []string{"Authorization", "Bearer " + adminToken}, status: 404, code: "product_not_found"},

	// service routes
	{name: "stats", method: "GET", path: "/api/stats", status: 200,
		setup: func(t *testing.T, e *env) string { e.do(t, "GET", "/api/inventory/1", ""); return "" },
		check: func(t *testing.T, e *env, r response) {
			if r.body["service"] != "inventory-service" || r.body["language"] != "Go" ||
				num(t, r.body["requests_processed"]) != 1 || num(t, r.body["active_goroutines"]) < 1 {
				t.Fatalf("body %s", r.raw)
			}
			if _, ok := r.body["avg_response_time_us"].(float64); !ok {
				t.Fatalf("avg_response_time_us: %s", r.raw)
			}
		}},
	{name: "health", method: "GET", path: "/health", status: 200,
		check: func(t *testing.T, e *env, r response) {
			if r.body["status"] != "ok" || r.body["service"] != "inventory" || r.body["version"] == "" {
				t.Fatalf("body %s", r.raw)
			}
		}},
	{name: "ready", method: "GET", path: "/ready", status: 200,
		check: func(t *testing.T, e *env, r response) {
			if r.body["status"] != "ready" {
				t.Fatalf("body %s", r.raw)
			}
		}},
	{name: "metrics", method: "GET", path: "/metrics", status: 200,
		setup: func(t *testing.T, e *env) string { e.do(t, "GET", "/api/inventory/1", ""); return "" },
		check: func(t *testing.T, e *env, r response) {
			for _, want := range []string{
				`http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",http_route="/api/inventory/{id}",le="0.0005"}`,
				`polyshop_inventory_reservations_total{result="reserved"} 0`,
				`polyshop_inventory_available_units{warehouse="WH-4"}`,
				`polyshop_inventory_products_held{shard="unsharded"}`,
				`process_resident_memory_bytes`, `process_open_fds`,
			} {
				if !strings.Contains(string(r.raw), want) {
					t.Fatalf("metrics lack %s", want)
				}
			}
			if strings.Contains(string(r.raw), `http_route="/health"`) || strings.Contains(string(r.raw), `http_route="/metrics"`) {
				t.Fatal("health and metrics must stay out of the histogram")
			}
		}},
	{name: "unknown route", method: "GET", path: "/api/nope", status: 404, code: "not_found"},
	{name: "unclean path", method: "GET", path: "/api//inventory/1", status: 404, code: "not_found"},
	{name: "dot segments", method: "POST", path: "/api/inventory/../reservations", body: `{}`, status: 404, code: "not_found"},
	{name: "root", method: "GET", path: "/", status: 404, code: "not_found"},
	{name: "method not allowed", method: "DELETE", path: "/api/inventory/1", status: 405, code: "method_not_allowed",
		check: func(t *testing.T, e *env, r response) {
			if r.header.Get("Allow") != "GET, HEAD, PUT" {
				t.Fatalf("Allow = %q", r.header.Get("Allow"))
			}
		}},
	{name: "invented method", method: "BREW", path: "/api/inventory/1", status: 405, code: "method_not_allowed",
		check: func(t *testing.T, e *env, r response) {
			m := e.do(t, "GET", "/metrics", "")
			if strings.Contains(string(m.raw), `"BREW"`) || !strings.Contains(string(m.raw), `http_request_method="_OTHER"`) {
				t.Fatal("an invented method must be labelled _OTHER")
			}
		}},
	{name: "deadline zero", method: "GET", path: "/api/inventory/1", headers: []string{"X-Request-Deadline-Ms", "0"}, status: 503, code: "deadline_exceeded"},
	{name: "deadline garbage", method: "GET", path: "/api/inventory/1", headers: []string{"X-Request-Deadline-Ms", "soon"}, status: 400, code: "malformed_request"},
	{name: "deadline negative", method: "GET", path: "/api/inventory/1", headers: []string{"X-Request-Deadline-Ms", "-5"}, status: 400, code: "malformed_request"},
	{name: "deadline enough", method: "GET", path: "/api/inventory/1", headers: []string{"X-Request-Deadline-Ms", "5000"}, status: 200},
	{name: "deadline not applied to health", method: "GET", path: "/health", headers: []string{"X-Request-Deadline-Ms", "0"}, status: 200},
	{name: "deadline empty", method: "GET", path: "/api/inventory/1", headers: []string{"X-Request-Deadline-Ms", ""}, status: 400, code: "malformed_request"},
	{name: "deadline superscript two", method: "GET", path: "/api/inventory/1", headers: []string{"X-Request-Deadline-Ms", "\xb2"}, status: 400, code: "malformed_request"},
	{name: "deadline saturates", method: "GET", path: "/api/inventory/1", headers: []string{"X-Request-Deadline-Ms", "99999999999999999999"}, status: 200},
	{name: "deadline malformed ignored on health", method: "GET", path: "/health", headers: []string{"X-Request-Deadline-Ms", "soon"}, status: 200},
	{name: "fault delay past the deadline", method: "POST", path: "/api/reservations", body: `{"product_id":123,"quantity":1}`,
		headers: []string{"X-Request-Deadline-Ms", "30"}, cfg: func(c *config.Config) { c.FaultDelay = 10 * time.Second },
		status: 503, code: "deadline_exceeded",
		check: func(t *testing.T, e *env, r response) {
			// read the store directly: every HTTP request here would wait FAULT_DELAY_MS
			if it, err := e.store.Get(t.Context(), 123); err != nil || it.Available != 223 {
				t.Fatalf("no hold may be made past the deadline: %+v %v", it, err)
			}
		}},
	{name: "fault error rate 1", method: "GET", path: "/api/inventory/1", cfg: func(c *config.Config) { c.FaultErrorRate = 1 },
		status: 500, code: "fault_injected"},
	{name: "fault error rate spares health", method: "GET", path: "/health", cfg: func(c *config.Config) { c.FaultErrorRate = 1 }, status: 200},
}

func TestEndpoints(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range endpointCases {
				t.Run(tc.name, func(t *testing.T) {
					var mods []func(*config.Config)
					if tc.cfg != nil {
						mods = append(mods, tc.cfg)
					}
					e := newEnv(t, b, mods...)
					path := tc.path
					if tc.setup != nil {
						path = strings.ReplaceAll(path, "{rid}", tc.setup(t, e))
					}
					r := e.do(t, tc.method, path, tc.body, tc.headers...)
					if tc.code != "" {
						wantError(t, r, tc.status, tc.code)
					} else if r.status != tc.status {
						t.Fatalf("status = %d, want %d; body %s", r.status, tc.status, r.raw)
					}
					if tc.fields != nil {
						if got := detailFields(r); strings.Join(got, ",") != strings.Join(tc.fields, ",") {
							t.Fatalf("details fields = %v, want %v", got, tc.fields)
						}
					}
					if r.status < 300 && !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") && tc.path != "/metrics" {
						t.Fatalf("Content-Type = %q", r.header.Get("Content-Type"))
					}
					if tc.check != nil {
						tc.check(t, e, r)
					}
				})
			}
		})
	}
}

// TestOversizedBodies: a declared Content-Length above MAX_BODY_BYTES is refused
// unread, and a chunked body is cut off once it passes the limit.
func TestOversizedBodies(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			e := newEnv(t, b)
			big := `{"ids":[` + strings.Repeat("1,", 5000) + `1]}`
			req := httptest.NewRequest("POST", "/api/inventory/batch", strings.NewReader(big))
			req.Header.Set("Content-Type", "application/json")
			wantError(t, e.send(t, req), 413, "payload_too_large")

			chunked := httptest.NewRequest("POST", "/api/inventory/batch", struct{ *strings.Reader }{strings.NewReader(big)})
			chunked.ContentLength = -1
			chunked.Header.Set("Content-Type", "application/json")
			wantError(t, e.send(t, chunked), 413, "payload_too_large")

			lying := httptest.NewRequest("PUT", "/api/inventory/1", strings.NewReader(`{"available":5}`))
			lying.ContentLength = 1 << 30
			lying.Header.Set("Authorization", "Bearer "+adminToken)
			wantError(t, e.send(t, lying), 413, "payload_too_large")
		})
	}
}
