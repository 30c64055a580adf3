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

// Code is an error code of errors.md. Handlers use only the constants below: a typo
// does not compile (and TestCodesAreConstants refuses a string literal where a Code
// goes), so it cannot turn into a 500 at run time.
type Code string

// The closed list of errors.md. Some codes belong to other services; they are listed
// so the table equals the contract.
const (
	CodeMalformedRequest     Code = "malformed_request"
	CodeUnauthorized         Code = "unauthorized"
	CodeForbidden            Code = "forbidden"
	CodeNotFound             Code = "not_found"
	CodeProductNotFound      Code = "product_not_found"
	CodeOrderNotFound        Code = "order_not_found"
	CodeReservationNotFound  Code = "reservation_not_found"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeInsufficientStock    Code = "insufficient_stock"
	CodeIdempotencyConflict  Code = "idempotency_conflict"
	CodeRequestInProgress    Code = "request_in_progress"
	CodeReservationExpired   Code = "reservation_expired"
	CodeReservationReleased  Code = "reservation_released"
	CodeReservationCommitted Code = "reservation_committed"
	CodePayloadTooLarge      Code = "payload_too_large"
	CodeMisdirectedRequest   Code = "misdirected_request"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeValidationFailed     Code = "validation_failed"
	CodeRateLimited          Code = "rate_limited"
	CodeInternalError        Code = "internal_error"
	CodeFaultInjected        Code = "fault_injected"
	CodeUpstreamUnavailable  Code = "upstream_unavailable"
	CodeOverloaded           Code = "overloaded"
	CodeProductMoving        Code = "product_moving"
	CodeDeadlineExceeded     Code = "deadline_exceeded"
)

// codeStatus maps every Code to its HTTP status (kept equal to errors.md by a test).
var codeStatus = map[Code]int{
	CodeMalformedRequest:     http.StatusBadRequest,
	CodeUnauthorized:         http.StatusUnauthorized,
	CodeForbidden:            http.StatusForbidden,
	CodeNotFound:             http.StatusNotFound,
	CodeProductNotFound:      http.StatusNotFound,
	CodeOrderNotFound:        http.StatusNotFound,
	CodeReservationNotFound:  http.StatusNotFound,
	CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	CodeInsufficientStock:    http.StatusConflict,
	CodeIdempotencyConflict:  http.StatusConflict,
	CodeRequestInProgress:    http.StatusConflict,
	CodeReservationExpired:   http.StatusConflict,
	CodeReservationReleased:  http.StatusConflict,
	CodeReservationCommitted: http.StatusConflict,
	CodePayloadTooLarge:      http.StatusRequestEntityTooLarge,
	CodeMisdirectedRequest:   http.StatusMisdirectedRequest,
	CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	CodeValidationFailed:     http.StatusUnprocessableEntity,
	CodeRateLimited:          http.StatusTooManyRequests,
	CodeInternalError:        http.StatusInternalServerError,
	CodeFaultInjected:        http.StatusInternalServerError,
	CodeUpstreamUnavailable:  http.StatusServiceUnavailable,
	CodeOverloaded:           http.StatusServiceUnavailable,
	CodeProductMoving:        http.StatusServiceUnavailable,
	CodeDeadlineExceeded:     http.StatusServiceUnavailable,
}

// FieldError is one entry of details (400/422 only).
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// APIError is an error that already knows its code and client-safe message.
type APIError struct {
	Code    Code
	Message string
	Details []FieldError
	Allow   string // Allow header of a 405
	// ShardOwner is the X-Shard-Owner header of a 421: the shard that holds the product.
	ShardOwner string
}

func (e *APIError) Error() string { return string(e.Code) + ": " + e.Message }

// Status is the HTTP status of the code (500 for a code outside the table: a bug).
func (e *APIError) Status() int {
	if s, ok := codeStatus[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func apiErr(code Code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(details ...FieldError) *APIError {
	return &APIError{Code: CodeValidationFailed, Message: "request is invalid", Details: details}
}

type errorBody struct {
	Error errorPayload `json:"error"`
}

type errorPayload struct {
	Code      Code         `json:"code"`
	Message   string       `json:"message"`
	RequestID string       `json:"request_id"`
	Details   []FieldError `json:"details,omitempty"`
}

// toAPIError maps any error a handler returns to the client's view of it. Causes that
// must not reach a client (Redis errors, bugs) are logged here with the request id.
func (s *Server) toAPIError(ctx context.Context, err error) *APIError {
	var ae *APIError
	var short *inventory.InsufficientStockError
	var elsewhere *inventory.MisdirectedError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &elsewhere):
		msg := elsewhere.Error()
		if elsewhere.More > 0 {
			msg += fmt.Sprintf(" (and %d more of the ids by other shards)", elsewhere.More)
		}
		return &APIError{Code: CodeMisdirectedRequest, Message: msg, ShardOwner: elsewhere.Owner}
	case errors.As(err, &short):
		return apiErr(CodeInsufficientStock, "only %d units of product %d are available", short.Available, short.ProductID)
	case errors.Is(err, inventory.ErrProductNotFound):
		return apiErr(CodeProductNotFound, "no such product")
	case errors.Is(err, inventory.ErrProductMoving):
		// 503 carries Retry-After (writeError): the move takes moments, then the write
		// goes to the product's new shard (a 421 from here names it).
		return apiErr(CodeProductMoving, "the product is being moved between shards: retry shortly")
	case errors.Is(err, inventory.ErrIdempotencyConflict):
		return apiErr(CodeIdempotencyConflict, "idempotency_key was used with a different request")
	case errors.Is(err, inventory.ErrReservationNotFound):
		return apiErr(CodeReservationNotFound, "no such reservation")
	case errors.Is(err, inventory.ErrReservationExpired):
		return apiErr(CodeReservationExpired, "the reservation expired and its units were returned")
	case errors.Is(err, inventory.ErrReservationReleased):
		return apiErr(CodeReservationReleased, "the reservation was released and its units were returned")
	case errors.Is(err, inventory.ErrReservationCommitted):
		return apiErr(CodeReservationCommitted, "the reservation is committed: its units are sold")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return apiErr(CodeDeadlineExceeded, "the request deadline ran out")
	case errors.Is(err, inventory.ErrStoreUnavailable):
		s.log.ErrorContext(ctx, "store unavailable", "error", err.Error())
		return apiErr(CodeUpstreamUnavailable, "inventory store unavailable")
	default:
		s.log.ErrorContext(ctx, "internal error", "error", err.Error())
		return apiErr(CodeInternalError, "internal error")
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
	if ae.ShardOwner != "" {
		w.Header().Set("X-Shard-Owner", ae.ShardOwner)
	}
	var details []FieldError
	if status == http.StatusBadRequest || status == http.StatusUnprocessableEntity {
		details = ae.Details
	}
	writeJSON(w, status, errorBody{errorPayload{
		Code: ae.Code, Message: ae.Message, RequestID: requestIDFrom(r.Context()), Details: details,
	}})
}
