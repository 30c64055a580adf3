// This file owns the request decoders: raw body bytes -> validated request, or the
// 400/422 error with details. They are pure functions so the fuzz targets can drive
// them directly.
package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"polyshop/inventory-go/internal/inventory"
)

type object map[string]json.RawMessage

// parseObject answers 400 for bytes that are not JSON and 422 for JSON that is not an object.
func parseObject(body []byte) (object, *APIError) {
	var obj object
	if err := json.Unmarshal(body, &obj); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, invalid(FieldError{Field: "body", Message: "must be a JSON object"})
		}
		return nil, &APIError{Code: CodeMalformedRequest, Message: "request body is not valid JSON",
			Details: []FieldError{{Field: "body", Message: "not valid JSON"}}}
	}
	if obj == nil { // the literal null
		return nil, invalid(FieldError{Field: "body", Message: "must be a JSON object"})
	}
	return obj, nil
}

// unknownFields rejects keys a decoder does not know: a misspelt "ttl" silently
// ignored would give the client a hold with the default lifetime.
func (o object) unknownFields(known ...string) []FieldError {
	var out []FieldError
	for k := range o {
		found := false
		for _, n := range known {
			if k == n {
				found = true
				break
			}
		}
		if !found {
			if len(k) > 64 {
				k = k[:64]
			}
			out = append(out, FieldError{Field: k, Message: "unknown field"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// intValue parses a JSON integer within [lo, hi]; 1.5, "1" and true are type errors.
func intValue(field string, raw json.RawMessage, lo, hi int64) (int64, *FieldError) {
	raw = bytes.TrimSpace(raw)
	bounds := &FieldError{Field: field, Message: fmt.Sprintf("must be an integer between %d and %d", lo, hi)}
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, &FieldError{Field: field, Message: "must be an integer"}
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, bounds
		}
		return 0, &FieldError{Field: field, Message: "must be an integer"}
	}
	if n < lo || n > hi {
		return 0, bounds
	}
	return n, nil
}

func requiredInt(o object, field string, lo, hi int64, details *[]FieldError) int64 {
	raw, ok := o[field]
	if !ok || isNull(raw) {
		*details = append(*details, FieldError{Field: field, Message: "is required"})
		return 0
	}
	n, fe := intValue(field, raw, lo, hi)
	if fe != nil {
		*details = append(*details, *fe)
	}
	return n
}

// ReserveInput is a decoded POST /api/reservations body.
type ReserveInput struct {
	ProductID      int64
	Quantity       int64
	IdempotencyKey string
	TTLSeconds     int64 // 0 = not given (the configured default applies)
}

// Request turns the input into a store request with the default TTL applied.
func (in ReserveInput) Request(defaultTTL time.Duration) inventory.ReserveRequest {
	ttl := defaultTTL
	if in.TTLSeconds > 0 {
		ttl = time.Duration(in.TTLSeconds) * time.Second
	}
	return inventory.ReserveRequest{
		ProductID: in.ProductID, Quantity: in.Quantity, IdempotencyKey: in.IdempotencyKey, TTL: ttl,
		Fingerprint: fmt.Sprintf("%d|%d|%d", in.ProductID, in.Quantity, in.TTLSeconds),
	}
}

// DecodeReserve validates {product_id, quantity, idempotency_key?, ttl_seconds?}.
func DecodeReserve(body []byte) (ReserveInput, *APIError) {
	o, ae := parseObject(body)
	if ae != nil {
		return ReserveInput{}, ae
	}
	var in ReserveInput
	var details []FieldError
	in.ProductID = requiredInt(o, "product_id", 1, inventory.MaxProductID, &details)
	in.Quantity = requiredInt(o, "quantity", 1, inventory.MaxQuantity, &details)
	if raw, ok := o["idempotency_key"]; ok && !isNull(raw) {
		var key string
		if err := json.Unmarshal(raw, &key); err != nil {
			details = append(details, FieldError{Field: "idempotency_key", Message: "must be a string"})
		} else if !validIdemKey(key) {
			details = append(details, FieldError{Field: "idempotency_key",
				Message: fmt.Sprintf("must be 1 to %d printable ASCII characters", inventory.MaxIdemKeyLen)})
		} else {
			in.IdempotencyKey = key
		}
	}
	if raw, ok := o["ttl_seconds"]; ok && !isNull(raw) {
		n, fe := intValue("ttl_seconds", raw, 1, inventory.MaxTTLSeconds)
		if fe != nil {
			details = append(details, *fe)
		}
		in.TTLSeconds = n
	}
	details = append(details, o.unknownFields("product_id", "quantity", "idempotency_key", "ttl_seconds")...)
	if len(details) > 0 {
		return ReserveInput{}, invalid(details...)
	}
	return in, nil
}

func validIdemKey(k string) bool {
	if len(k) < 1 || len(k) > inventory.MaxIdemKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// maxDetails bounds the details of a bad batch: a client needs the first few, not 100.
const maxDetails = 10

// DecodeBatch validates {"ids": [1..100 product ids]} and drops duplicates (first wins).
func DecodeBatch(body []byte) ([]int64, *APIError) {
	o, ae := parseObject(body)
	if ae != nil {
		return nil, ae
	}
	details := o.unknownFields("ids")
	raw, ok := o["ids"]
	if !ok || isNull(raw) {
		return nil, invalid(append([]FieldError{{Field: "ids", Message: "is required"}}, details...)...)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, invalid(append([]FieldError{{Field: "ids", Message: "must be an array of product ids"}}, details...)...)
	}
	if len(elems) < 1 || len(elems) > inventory.MaxBatchIDs {
		return nil, invalid(append([]FieldError{{Field: "ids",
			Message: fmt.Sprintf("must hold 1 to %d ids", inventory.MaxBatchIDs)}}, details...)...)
	}
	ids := make([]int64, 0, len(elems))
	seen := make(map[int64]bool, len(elems))
	for i, e := range elems {
		n, fe := intValue(fmt.Sprintf("ids[%d]", i), e, 1, inventory.MaxProductID)
		if fe != nil {
			if len(details) < maxDetails {
				details = append(details, *fe)
			}
			continue
		}
		if !seen[n] {
			seen[n] = true
			ids = append(ids, n)
		}
	}
	if len(details) > 0 {
		return nil, invalid(details...)
	}
	return ids, nil
}

// DecodeRestock validates {"available": 0..10^9}.
func DecodeRestock(body []byte) (int64, *APIError) {
	o, ae := parseObject(body)
	if ae != nil {
		return 0, ae
	}
	var details []FieldError
	n := requiredInt(o, "available", 0, inventory.MaxStock, &details)
	details = append(details, o.unknownFields("available")...)
	if len(details) > 0 {
		return 0, invalid(details...)
	}
	return n, nil
}

// parseProductID reads a path id: not an integer or out of bounds -> 422, the same rule
// as a wrong-typed body field (errors.md).
func parseProductID(s string) (int64, *APIError) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, invalid(FieldError{Field: "id", Message: "must be an integer"})
	}
	if err != nil || n < 1 || n > inventory.MaxProductID {
		return 0, invalid(FieldError{Field: "id", Message: fmt.Sprintf("must be an integer between 1 and %d", inventory.MaxProductID)})
	}
	return n, nil
}
