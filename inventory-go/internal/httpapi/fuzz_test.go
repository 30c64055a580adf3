// Fuzz targets of the request decoders (seed corpus in testdata/fuzz/). Properties:
// never panic; an accepted body is inside the contract bounds; a refused one is a
// 400 or 422 with details.
package httpapi

import (
	"testing"

	"polyshop/inventory-go/internal/inventory"
)

func checkRefusal(t *testing.T, ae *APIError) {
	t.Helper()
	if ae.Code != "malformed_request" && ae.Code != "validation_failed" {
		t.Fatalf("decoder refused with %s", ae.Code)
	}
	if len(ae.Details) == 0 {
		t.Fatalf("refusal without details: %+v", ae)
	}
}

func FuzzDecodeReserve(f *testing.F) {
	for _, s := range []string{`{"product_id":123,"quantity":2}`, `{"product_id":1,"quantity":1,"idempotency_key":"k","ttl_seconds":60}`,
		`{"quantity":0}`, `[]`, `null`, `{"product_id":1e3,"quantity":"2"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, ae := DecodeReserve(body)
		if ae != nil {
			checkRefusal(t, ae)
			return
		}
		if in.ProductID < 1 || in.ProductID > inventory.MaxProductID || in.Quantity < 1 || in.Quantity > inventory.MaxQuantity ||
			in.TTLSeconds < 0 || in.TTLSeconds > inventory.MaxTTLSeconds || len(in.IdempotencyKey) > inventory.MaxIdemKeyLen {
			t.Fatalf("accepted out-of-bounds input %+v from %q", in, body)
		}
		if in.IdempotencyKey != "" && !validIdemKey(in.IdempotencyKey) {
			t.Fatalf("accepted idempotency key %q", in.IdempotencyKey)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{`{"ids":[1,2,3]}`, `{"ids":[]}`, `{"ids":[1,1,0]}`, `{"ids":"x"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, ae := DecodeBatch(body)
		if ae != nil {
			checkRefusal(t, ae)
			return
		}
		if len(ids) < 1 || len(ids) > inventory.MaxBatchIDs {
			t.Fatalf("accepted %d ids", len(ids))
		}
		seen := map[int64]bool{}
		for _, id := range ids {
			if id < 1 || id > inventory.MaxProductID || seen[id] {
				t.Fatalf("accepted id %d (duplicate=%v) from %q", id, seen[id], body)
			}
			seen[id] = true
		}
	})
}

func FuzzDecodeRestock(f *testing.F) {
	for _, s := range []string{`{"available":500}`, `{"available":-1}`, `{"available":1.5}`, `{"available":0,"x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		n, ae := DecodeRestock(body)
		if ae != nil {
			checkRefusal(t, ae)
			return
		}
		if n < 0 || n > inventory.MaxStock {
			t.Fatalf("accepted available %d from %q", n, body)
		}
	})
}
