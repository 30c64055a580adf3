// This file owns the ONE error-code -> HTTP-status table (services/contracts/errors.md,
// kept equal by a test), the shared error JSON, and the single place where domain
// errors are mapped to HTTP.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"polyshop/inventory-go/internal/inventory"
)

// codeStatus is the closed list of errors.md. Some codes belong to other services;
// they are listed so the table equals the contract.
var codeStatus = map[string]int{
	"malformed_request":      http.StatusBadRequest,
	"unauthorized":           http.StatusUnauthorized,
	"forbidden":              http.StatusForbidden,
	"not_found":              http.StatusNotFound,
	"product_not_found":      http.StatusNotFound,
	"order_not_found":        http.StatusNotFound,
	"reservation_not_found":  http.StatusNotFound,
	"method_not_allowed":     http.StatusMethodNotAllowed,
	"insufficient_stock":     http.StatusConflict,
	"idempotency_conflict":   http.StatusConflict,
	"request_in_progress":    http.StatusConflict,
	"reservation_expired":    http.StatusConflict,
	"reservation_released":   http.StatusConflict,
	"reservation_committed":  http.StatusConflict,
	"payload_too_large":      http.StatusRequestEntityTooLarge,
	"unsupported_media_type": http.StatusUnsupportedMediaType,
	"validation_failed":      http.StatusUnprocessableEntity,
	"rate_limited":           http.StatusTooManyRequests,
	"internal_error":         http.StatusInternalServerError,
	"fault_injected":         http.StatusInternalServerError,
	"upstream_unavailable":   http.StatusServiceUnavailable,
	"overloaded":             http.StatusServiceUnavailable,
	"deadline_exceeded":      http.StatusServiceUnavailable,
}

// FieldError is one entry of details (400/422 only).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// APIError is an error that already knows its code and client-safe message.
type APIError struct {
	Code    string
	Message string
	Details []FieldError
	Allow   string // Allow header of a 405
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Status is the HTTP status of the code (500 for a code outside the table: a bug).
func (e *APIError) Status() int {
	if s, ok := codeStatus[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func apiErr(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(details ...FieldError) *APIError {
	return &APIError{Code: "validation_failed", Message: "request is invalid", Details: details}
}

type errorBody struct {
	Error errorPayload `json:"error"`
}

type errorPayload struct {
	Code      string       `json:"code"`
	Message   string       `json:"message"`
	RequestID string       `json:"request_id"`
	Details   []FieldError `json:"details,omitempty"`
}

// toAPIError maps any error a handler returns to the client's view of it. Causes that
// must not reach a client (Redis errors, bugs) are logged here with the request id.
func (s *Server) toAPIError(ctx context.Context, err error) *APIError {
	var ae *APIError
	var short *inventory.InsufficientStockError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &short):
		return apiErr("insufficient_stock", "only %d units of product %d are available", short.Available, short.ProductID)
	case errors.Is(err, inventory.ErrProductNotFound):
		return apiErr("product_not_found", "no such product")
	case errors.Is(err, inventory.ErrIdempotencyConflict):
		return apiErr("idempotency_conflict", "idempotency_key was used with a different request")
	case errors.Is(err, inventory.ErrReservationNotFound):
		return apiErr("reservation_not_found", "no such reservation")
	case errors.Is(err, inventory.ErrReservationExpired):
		return apiErr("reservation_expired", "the reservation expired and its units were returned")
	case errors.Is(err, inventory.ErrReservationReleased):
		return apiErr("reservation_released", "the reservation was released and its units were returned")
	case errors.Is(err, inventory.ErrReservationCommitted):
		return apiErr("reservation_committed", "the reservation is committed: its units are sold")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return apiErr("deadline_exceeded", "the request deadline ran out")
	case errors.Is(err, inventory.ErrStoreUnavailable):
		s.log.ErrorContext(ctx, "store unavailable", "error", err.Error())
		return apiErr("upstream_unavailable", "inventory store unavailable")
	default:
		s.log.ErrorContext(ctx, "internal error", "error", err.Error())
		return apiErr("internal_error", "internal error")
	}
}

// writeError answers err in the shared error JSON.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := s.toAPIError(r.Context(), err)
	status := ae.Status()
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	if ae.Allow != "" {
		w.Header().Set("Allow", ae.Allow)
	}
	var details []FieldError
	if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
		details = ae.Details
	}
	writeJSON(w, status, errorBody{errorPayload{
		Code: ae.Code, Message: ae.Message, RequestID: requestIDFrom(r.Context()), Details: details,
	}})
}
