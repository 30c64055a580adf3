// Package inventory owns the domain of the inventory service: stock items, holds
// (reservations), their errors and input bounds, and the Store interface the HTTP layer
// and the expiry sweeper are written against. It has no HTTP or Redis imports.
package inventory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
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
	ReservationTag = "RES-"
)

// Timing holds the durations the stores decide by. Production uses DefaultTiming; the
// store suite shortens them so the Redis store can be tested on Redis's real clock.
type Timing struct {
	// DemandWindow: reserved units count as recent demand this long (pricing's "last hour").
	DemandWindow time.Duration
	// Retention: how long a settled hold and its idempotency key stay readable. The
	// gateway keeps its idempotency records 24 h, so a replay of a day-old order must
	// still find its hold.
	Retention time.Duration
}

// DefaultTiming is the production timing.
var DefaultTiming = Timing{DemandWindow: time.Hour, Retention: 24 * time.Hour}

// OrDefault fills unset durations from DefaultTiming.
func (t Timing) OrDefault() Timing {
	if t.DemandWindow <= 0 {
		t.DemandWindow = DefaultTiming.DemandWindow
	}
	if t.Retention <= 0 {
		t.Retention = DefaultTiming.Retention
	}
	return t
}

// Hold states, as the API names them. A hold is held until it is committed (sold),
// released, or expired; the last three are final.
const (
	StateHeld      = "held"
	StateCommitted = "committed"
	StateReleased  = "released"
	StateExpired   = "expired"
)

// Domain errors; the HTTP layer maps each to one code of errors.md.
var (
	ErrProductNotFound      = errors.New("product not found")
	ErrInsufficientStock    = errors.New("insufficient stock")
	ErrIdempotencyConflict  = errors.New("idempotency key reused with a different request")
	ErrReservationNotFound  = errors.New("reservation not found")
	ErrReservationExpired   = errors.New("reservation expired")
	ErrReservationReleased  = errors.New("reservation released")
	ErrReservationCommitted = errors.New("reservation committed")
	ErrStoreUnavailable     = errors.New("store unavailable")
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
	State              string
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

// Settlement is what a commit, release or lookup found: the hold in the state it is in
// now, and what this call did to it. The state is always the truth, so a caller whose
// earlier answer was lost never has to guess whether that call landed.
type Settlement struct {
	Reservation Reservation
	// Repeated: the hold was already in the state the call asked for (a retry).
	Repeated bool
	// ExpiredNow: this call found the hold past its TTL and expired it itself (the
	// sweeper had not got to it yet).
	ExpiredNow bool
}

// WarehouseStock aggregates the products of one warehouse.
type WarehouseStock struct {
	ID        string
	Products  int64
	Available int64
	Reserved  int64
}

// Store keeps stock and holds. Every method is atomic: with Redis one Lua script, in
// memory one mutex. Every time decision uses the store's one clock: Redis's own TIME,
// or the clock the memory store was given.
type Store interface {
	Get(ctx context.Context, productID int64) (Item, error)
	// GetMany answers the items found, in request order, and the ids not found.
	GetMany(ctx context.Context, productIDs []int64) ([]Item, []int64, error)
	Warehouses(ctx context.Context) ([]WarehouseStock, error)
	// Held answers how many products the store holds (has a stock record of); a shard
	// holds only its own.
	Held(ctx context.Context) (int64, error)
	// Reserve answers replayed=true when the idempotency key matched an earlier hold; the
	// reservation then carries that hold's current state.
	Reserve(ctx context.Context, req ReserveRequest) (res Reservation, replayed bool, err error)
	// Commit sells a held hold. Committing a committed hold repeats the answer; a
	// released or expired one is ErrReservationReleased / ErrReservationExpired, with the
	// settlement still describing the hold.
	Commit(ctx context.Context, id string) (Settlement, error)
	// Release gives a held hold's units back. A released or expired hold answers its
	// state without error (its units are back either way); a committed one is
	// ErrReservationCommitted.
	Release(ctx context.Context, id string) (Settlement, error)
	// Lookup answers a hold's state, expiring it first if its TTL has passed.
	Lookup(ctx context.Context, id string) (Settlement, error)
	// Restock sets the free (unheld) stock of a product.
	Restock(ctx context.Context, productID, available int64) (Item, error)
	// SweepExpired returns the units of at most limit holds whose TTL has passed and
	// answers how many it expired. Safe to run from several replicas at once.
	SweepExpired(ctx context.Context, limit int) (int, error)
	Ping(ctx context.Context) error
	Close() error
}

// Clock is the time source of the memory store; tests pass a fake one. (The Redis store
// has no Clock: it asks Redis, so replicas can never disagree.)
type Clock func() time.Time

// NewReservationID answers "RES-" and 24 random hex digits (96 bits: collisions are
// not a practical concern, and the stores still refuse to overwrite an existing id).
func NewReservationID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux (documented since Go 1.24)
	return ReservationTag + hex.EncodeToString(b[:])
}

// NewReservationIDFor answers a hold id that names its product: "RES-", the product id
// (8 hex digits), a 16-bit check over the rest (4) and 48 random bits (12); the same
// shape as NewReservationID's. Any shard can then tell which product a hold it does not
// know belongs to and send the caller to the shard holding that product: after a
// rebalance moved a product, the holds made at its new shard are unknown to the old
// one, which routers keep asking until the ring record changes (ring.md, Rebalance).
// 48 random bits per product are plenty: the stores still refuse to overwrite an id.
func NewReservationIDFor(productID int64) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails on Linux, as above
	pid := fmt.Sprintf("%08x", uint32(productID))
	rnd := hex.EncodeToString(b[:])
	return ReservationTag + pid + reservationCheck(pid, rnd) + rnd
}

// ReservationProduct answers the product a NewReservationIDFor id names. Other ids
// (NewReservationID's, issued before ids named their product) answer false, but for a
// 1 in 65,536 chance of a product read from random digits, which costs only a detour.
func ReservationProduct(id string) (int64, bool) {
	if !ValidReservationID(id) {
		return 0, false
	}
	body := id[len(ReservationTag):]
	pid, check, rnd := body[:8], body[8:12], body[12:]
	if reservationCheck(pid, rnd) != check {
		return 0, false
	}
	n, err := strconv.ParseUint(pid, 16, 32)
	if err != nil || n < 1 || n > MaxProductID {
		return 0, false
	}
	return int64(n), true
}

func reservationCheck(pid, rnd string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(pid + rnd))
	return fmt.Sprintf("%04x", h.Sum32()&0xffff)
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

// TransitionError is the answer to moving a hold found in state found (after any
// expiry) to target, StateCommitted or StateReleased; "" is a lookup and never fails.
// Both stores use it, so their answers cannot drift apart.
func TransitionError(target, found string) error {
	switch {
	case target == "" || found == StateHeld || found == target:
		return nil
	case target == StateCommitted && found == StateExpired:
		return ErrReservationExpired
	case target == StateCommitted:
		return ErrReservationReleased
	case found == StateExpired:
		return nil // a release of an expired hold: its units are back, as asked
	default:
		return ErrReservationCommitted
	}
}
