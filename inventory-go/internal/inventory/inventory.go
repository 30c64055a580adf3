// Package inventory owns the domain of the inventory service: stock items, holds
// (reservations), their errors and input bounds, and the Store interface the HTTP layer
// and the expiry sweeper are written against. It has no HTTP or Redis imports.
package inventory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"
)

// Input bounds from services/contracts/errors.md.
const (
	MaxProductID   = 1_000_000_000
	MaxQuantity    = 10_000
	MaxStock       = 1_000_000_000
	MaxBatchIDs    = 100
	MaxTTLSeconds  = 86_400
	MaxIdemKeyLen  = 128
	DemandWindow   = time.Hour
	ReservationTag = "RES-"
)

// Retention is how long finished holds and idempotency keys stay readable after they
// stop mattering: the gateway keeps its own idempotency records 24 h, so a replay of a
// day-old order must still find its hold.
const Retention = 24 * time.Hour

// Hold states.
const (
	StatusPending   = "pending"
	StatusCommitted = "committed"
	StatusReleased  = "released"
	StatusExpired   = "expired"
)

// Domain errors; the HTTP layer maps each to one code of errors.md.
var (
	ErrProductNotFound       = errors.New("product not found")
	ErrInsufficientStock     = errors.New("insufficient stock")
	ErrIdempotencyConflict   = errors.New("idempotency key reused with a different request")
	ErrReservationNotFound   = errors.New("reservation not found")
	ErrReservationExpired    = errors.New("reservation expired")
	ErrReservationNotPending = errors.New("reservation not pending")
	ErrStoreUnavailable      = errors.New("store unavailable")
)

// InsufficientStockError carries how many units were free, for the client message.
type InsufficientStockError struct {
	ProductID int64
	Available int64
}

func (e *InsufficientStockError) Error() string { return "insufficient stock" }

// Unwrap lets callers test with errors.Is(err, ErrInsufficientStock).
func (e *InsufficientStockError) Unwrap() error { return ErrInsufficientStock }

// Item is one product's stock as clients see it. Available excludes held units.
type Item struct {
	ProductID    int64
	Available    int64
	Reserved     int64
	Sold         int64
	Warehouse    string
	LastUpdated  time.Time
	RecentDemand int64
}

// Reservation is a hold on units of one product.
type Reservation struct {
	ID                 string
	ProductID          int64
	Quantity           int64
	Status             string
	ExpiresAt          time.Time
	AvailableBefore    int64
	RecentDemandBefore int64
}

// ReserveRequest is a validated request for a hold. TTL is already defaulted.
type ReserveRequest struct {
	ProductID      int64
	Quantity       int64
	IdempotencyKey string
	TTL            time.Duration
	// Fingerprint identifies the request body for idempotency: the same key with a
	// different fingerprint is a conflict.
	Fingerprint string
}

// ReleaseResult says whether a release changed anything (false for a repeated release).
type ReleaseResult struct {
	Reservation Reservation
	Repeated    bool
}

// WarehouseStock aggregates the products of one warehouse.
type WarehouseStock struct {
	ID        string
	Products  int64
	Available int64
	Reserved  int64
}

// Store keeps stock and holds. Every method is atomic: with Redis one Lua script, in
// memory one mutex. now is always taken from the store's clock, so tests can move it.
type Store interface {
	Get(ctx context.Context, productID int64) (Item, error)
	// GetMany answers the items found, in request order, and the ids not found.
	GetMany(ctx context.Context, productIDs []int64) ([]Item, []int64, error)
	Warehouses(ctx context.Context) ([]WarehouseStock, error)
	// Reserve answers replayed=true when the idempotency key matched an earlier hold.
	Reserve(ctx context.Context, req ReserveRequest) (res Reservation, replayed bool, err error)
	// Commit and Release answer expired=true when they found the hold past its TTL and
	// returned its units themselves (the sweeper had not got to it yet).
	Commit(ctx context.Context, id string) (res Reservation, expired bool, err error)
	Release(ctx context.Context, id string) (res ReleaseResult, expired bool, err error)
	// Restock sets the free (unheld) stock of a product.
	Restock(ctx context.Context, productID, available int64) (Item, error)
	// SweepExpired returns the units of at most limit holds whose TTL has passed and
	// answers how many it expired. Safe to run from several replicas at once.
	SweepExpired(ctx context.Context, limit int) (int, error)
	Ping(ctx context.Context) error
	Close() error
}

// Clock is the time source of a store; tests pass a fake one.
type Clock func() time.Time

// NewReservationID answers "RES-" and 24 random hex digits (96 bits: collisions are
// not a practical concern, and the stores still refuse to overwrite an existing id).
func NewReservationID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (documented since Go 1.24)
	return ReservationTag + hex.EncodeToString(b[:])
}

// ValidReservationID reports whether s has the shape of an id this service issues, so
// garbage never reaches the store as a key.
func ValidReservationID(s string) bool {
	if len(s) != len(ReservationTag)+24 || s[:len(ReservationTag)] != ReservationTag {
		return false
	}
	for i := len(ReservationTag); i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
