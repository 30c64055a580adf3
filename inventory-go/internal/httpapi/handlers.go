// This file owns the handlers: methods on Server that return an error, mapped to the
// shared error JSON in one place (handle -> writeError).
package httpapi

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"runtime"
	"time"

	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/wire"
)

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

type itemJSON struct {
	ProductID    int64  `json:"product_id"`
	Available    int64  `json:"available"`
	Reserved     int64  `json:"reserved"`
	Warehouse    string `json:"warehouse"`
	LastUpdated  string `json:"last_updated"`
	RecentDemand int64  `json:"recent_demand"`
}

func toItemJSON(it inventory.Item) itemJSON {
	return itemJSON{
		ProductID: it.ProductID, Available: it.Available, Reserved: it.Reserved, Warehouse: it.Warehouse,
		LastUpdated: it.LastUpdated.UTC().Format(timeLayout), RecentDemand: it.RecentDemand,
	}
}

// reservationJSON is the reserve answer: the hold plus what pricing needs.
type reservationJSON struct {
	ReservationID      string `json:"reservation_id"`
	ProductID          int64  `json:"product_id"`
	Quantity           int64  `json:"quantity"`
	State              string `json:"state"`
	ExpiresAt          string `json:"expires_at"`
	AvailableBefore    int64  `json:"available_before"`
	RecentDemandBefore int64  `json:"recent_demand_before"`
}

// holdJSON is the answer of GET, commit and release: the hold in the state it is in now.
type holdJSON struct {
	ReservationID string `json:"reservation_id"`
	ProductID     int64  `json:"product_id"`
	Quantity      int64  `json:"quantity"`
	State         string `json:"state"`
	ExpiresAt     string `json:"expires_at"`
	// Repeated: the hold already was in the state asked for (commit/release only).
	Repeated *bool `json:"repeated,omitempty"`
}

func toHoldJSON(st inventory.Settlement, withRepeated bool) holdJSON {
	res := st.Reservation
	h := holdJSON{ReservationID: res.ID, ProductID: res.ProductID, Quantity: res.Quantity, State: res.State,
		ExpiresAt: res.ExpiresAt.UTC().Format(timeLayout)}
	if withRepeated {
		h.Repeated = &st.Repeated
	}
	return h
}

// shardJSON is the shard id as the registry writes it: null for an unsharded inventory.
func (s *Server) shardJSON() *string {
	if s.cfg.ShardID == "" {
		return nil
	}
	return &s.cfg.ShardID
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "service": "inventory", "version": Version,
		"shard": s.shardJSON()})
}

// ready checks only this service's own store (docs/DESIGN.md): never an upstream.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	err := s.store.Ping(ctx)
	var held int64
	if err == nil {
		held, err = s.store.Held(ctx)
	}
	if err != nil {
		s.log.WarnContext(r.Context(), "not ready", "error", err.Error())
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"status": "unavailable", "checks": map[string]string{"store": "unavailable"}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": map[string]string{"store": "ok"},
		"shard": s.shardJSON(), "products_held": held})
}

func (s *Server) getItem(w http.ResponseWriter, r *http.Request) error {
	id, ae := parseProductID(r.PathValue("id"))
	if ae != nil {
		return ae
	}
	it, err := s.store.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toItemJSON(it))
	return nil
}

func (s *Server) getBatch(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	ids, ae := DecodeBatch(body)
	if ae != nil {
		return ae
	}
	items, missing, err := s.store.GetMany(r.Context(), ids)
	if err != nil {
		return err
	}
	out := struct {
		Items    []itemJSON `json:"items"`
		NotFound []int64    `json:"not_found"`
	}{Items: make([]itemJSON, 0, len(items)), NotFound: missing}
	for _, it := range items {
		out.Items = append(out.Items, toItemJSON(it))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) listWarehouses(w http.ResponseWriter, r *http.Request) error {
	stock, err := s.store.Warehouses(r.Context())
	if err != nil {
		return err
	}
	byID := make(map[string]inventory.WarehouseStock, len(stock))
	for _, ws := range stock {
		byID[ws.ID] = ws
	}
	type warehouseJSON struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		Region    string `json:"region"`
		Products  int64  `json:"products"`
		Available int64  `json:"available"`
		Reserved  int64  `json:"reserved"`
	}
	out := struct {
		Warehouses []warehouseJSON `json:"warehouses"`
	}{Warehouses: make([]warehouseJSON, 0, len(s.warehouses))}
	for _, wh := range s.warehouses {
		ws := byID[wh.ID]
		out.Warehouses = append(out.Warehouses, warehouseJSON{ID: wh.ID, Name: wh.Name, Region: wh.Region,
			Products: ws.Products, Available: ws.Available, Reserved: ws.Reserved})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) reserve(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	in, ae := DecodeReserve(body)
	if ae != nil {
		return ae
	}
	res, replayed, err := s.store.Reserve(r.Context(), in.Request(s.cfg.ReservationTTL))
	if err != nil {
		if errors.Is(err, inventory.ErrInsufficientStock) {
			s.metrics.reservations.WithLabelValues("insufficient").Inc()
		}
		return err
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
		s.metrics.reservations.WithLabelValues("replayed").Inc()
	} else {
		s.metrics.reservations.WithLabelValues("reserved").Inc()
	}
	writeJSON(w, status, reservationJSON{
		ReservationID: res.ID, ProductID: res.ProductID, Quantity: res.Quantity, State: res.State,
		ExpiresAt: res.ExpiresAt.UTC().Format(timeLayout), AvailableBefore: res.AvailableBefore,
		RecentDemandBefore: res.RecentDemandBefore,
	})
	return nil
}

// reservationID rejects ids this service never issues as unknown, before any store call.
func reservationID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !inventory.ValidReservationID(id) {
		return "", inventory.ErrReservationNotFound
	}
	return id, nil
}

// commit sells a held hold. A repeat answers 200 again with repeated=true, so a caller
// whose first answer was lost learns that it landed; a released or expired hold is a
// 409 whose code names that state.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) error {
	return s.settle(w, r, s.store.Commit, "committed")
}

// release gives a held hold's units back. It is idempotent (the gateway retries
// releases), an expired hold answers 200 with state "expired" (its units are back, as
// asked), and only a committed hold is a 409 (reservation_committed).
func (s *Server) release(w http.ResponseWriter, r *http.Request) error {
	return s.settle(w, r, s.store.Release, "released")
}

// getReservation answers a hold's state (expiring it first if its TTL has passed).
func (s *Server) getReservation(w http.ResponseWriter, r *http.Request) error {
	return s.settle(w, r, s.store.Lookup, "")
}

func (s *Server) settle(w http.ResponseWriter, r *http.Request,
	op func(context.Context, string) (inventory.Settlement, error), counted string) error {
	id, err := reservationID(r)
	if err != nil {
		return err
	}
	st, err := op(r.Context(), id)
	if st.ExpiredNow {
		s.metrics.reservations.WithLabelValues("expired").Inc()
	}
	if err != nil {
		return err
	}
	if counted != "" && !st.Repeated && st.Reservation.State == counted {
		s.metrics.reservations.WithLabelValues(counted).Inc()
	}
	writeJSON(w, http.StatusOK, toHoldJSON(st, counted != ""))
	return nil
}

func (s *Server) restock(w http.ResponseWriter, r *http.Request) error {
	if err := s.authorize(r); err != nil {
		return err
	}
	id, ae := parseProductID(r.PathValue("id"))
	if ae != nil {
		return ae
	}
	body, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	available, ae := DecodeRestock(body)
	if ae != nil {
		return ae
	}
	it, err := s.store.Restock(r.Context(), id, available)
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "restocked", "product_id", id, "available", available)
	writeJSON(w, http.StatusOK, toItemJSON(it))
	return nil
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	n := s.requests.Load()
	avg := 0.0
	if n > 0 {
		avg = math.Round(float64(s.totalMicros.Load())/float64(n)*100) / 100
	}
	writeJSON(w, http.StatusOK, struct {
		Service           string  `json:"service"`
		Language          string  `json:"language"`
		InstanceID        string  `json:"instance_id"`
		RequestsProcessed int64   `json:"requests_processed"`
		ActiveGoroutines  int     `json:"active_goroutines"`
		AvgResponseTimeUs float64 `json:"avg_response_time_us"`
	}{"inventory-service", "Go", s.cfg.InstanceID, n, runtime.NumGoroutine(), avg})
	return nil
}

// authorize guards admin routes: Authorization: Bearer <ADMIN_TOKEN>, compared in
// constant time (wire.CheckBearer).
func (s *Server) authorize(r *http.Request) error {
	if s.cfg.AdminToken == "" {
		return apiErr(CodeNotFound, "no such route")
	}
	raw, present := wire.Get(r.Header, wire.HeaderAuthorization)
	switch wire.CheckBearer(raw, present, s.adminHash) {
	case wire.AuthAllow:
		return nil
	case wire.AuthForbidden:
		return apiErr(CodeForbidden, "wrong admin token")
	default:
		return apiErr(CodeUnauthorized, "admin route: send Authorization: Bearer <token>")
	}
}

// readJSON reads a JSON body of at most MAX_BODY_BYTES: a declared Content-Length above
// it is refused before reading, and a chunked body is cut off by MaxBytesReader.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, apiErr(CodePayloadTooLarge, "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
	}
	if !wire.IsJSONContentType(wire.Get(r.Header, wire.HeaderContentType)) {
		return nil, apiErr(CodeUnsupportedMediaType, "send the body as Content-Type: application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, apiErr(CodePayloadTooLarge, "request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		if ctxErr := r.Context().Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &APIError{Code: CodeMalformedRequest, Message: "request body could not be read",
			Details: []FieldError{{Field: "body", Message: "could not be read"}}}
	}
	return body, nil
}
