// This file owns the Server: its dependencies and the request pipeline every route
// shares (request id, trace context, deadline, fault injection, panic recovery,
// metrics, access log). One function instead of a middleware stack keeps the hot path
// to a single wrapper allocation.
package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"polyshop/inventory-go/internal/config"
	"polyshop/inventory-go/internal/inventory"
	"polyshop/inventory-go/internal/wire"
)

// Version is reported by /health; the build may override it with -ldflags -X.
var Version = "0.1.0"

// Deps are what a Server needs.
type Deps struct {
	Store      inventory.Store
	Warehouses []inventory.Warehouse
	Config     config.Config
	Logger     *slog.Logger
	// AccessLog, when set, receives the access lines directly (the fast path); it must
	// be the Logger's own writer wrapped in SyncWriter. Unset: access lines go via Logger.
	AccessLog io.Writer
}

// Server is the inventory HTTP API.
type Server struct {
	store      inventory.Store
	warehouses []inventory.Warehouse
	cfg        config.Config
	log        *slog.Logger
	mux        *http.ServeMux
	pathMux    *http.ServeMux // method-less patterns: tells a 405 from a 404
	allow      map[string]string
	metrics    *metrics
	access     *accessLogger
	accessOn   bool
	adminHash  wire.TokenHash

	requests    atomic.Int64
	totalMicros atomic.Int64
}

// New builds the Server and its routes.
func New(d Deps) *Server {
	s := &Server{
		store: d.Store, warehouses: d.Warehouses, cfg: d.Config, log: d.Logger,
		metrics: newMetrics(d.Store, d.Config.ShardID),
	}
	s.routes()
	if d.AccessLog != nil {
		s.access = newAccessLogger(d.AccessLog)
	}
	s.accessOn = d.Logger.Enabled(context.Background(), slog.LevelInfo)
	if d.Config.AdminToken != "" {
		s.adminHash = wire.HashToken(d.Config.AdminToken)
	}
	return s
}

// CountExpired records holds the sweeper expired.
func (s *Server) CountExpired(n int) {
	s.metrics.reservations.WithLabelValues("expired").Add(float64(n))
}

type ctxKey struct{}

// reqInfo is the per-request context: ids for logs and the route label.
type reqInfo struct {
	requestID, traceID, spanID string
	route                      string
}

func infoFrom(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(ctxKey{}).(*reqInfo)
	return info
}

func requestIDFrom(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		return info.requestID
	}
	return ""
}

// statusWriter remembers the status for metrics and the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// unobserved routes stay out of the histogram and the access log (observability.md).
func unobserved(path string) bool {
	return path == "/health" || path == "/ready" || path == "/metrics"
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info := newReqInfo(r.Header)
	ctx := context.WithValue(r.Context(), ctxKey{}, info)
	w.Header().Set("X-Request-Id", info.requestID)
	sw := &statusWriter{ResponseWriter: w}

	var cancel context.CancelFunc
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.metrics.active.Inc()
		defer s.metrics.active.Dec()
		if ae := s.deadline(r, &ctx, &cancel); ae != nil {
			r = r.WithContext(ctx)
			s.labelEarly(r, info)
			s.writeError(sw, r, ae)
			s.observe(r, info, sw, start)
			return
		}
	}
	if cancel != nil {
		defer cancel()
	}
	r = r.WithContext(ctx)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(ctx, "panic", "panic", p)
			if sw.status == 0 {
				s.writeError(sw, r, apiErr(CodeInternalError, "internal error"))
			}
		}
		s.observe(r, info, sw, start)
	}()
	if strings.HasPrefix(r.URL.Path, "/api/") {
		if ae := s.fault(ctx); ae != nil {
			s.labelEarly(r, info)
			s.writeError(sw, r, ae)
			return
		}
	}
	if !isCleanPath(r.URL.Path) {
		// net/http would answer a 301 with an HTML body; an API client gets the shared JSON.
		s.writeError(sw, r, apiErr(CodeNotFound, "no such route"))
		return
	}
	s.mux.ServeHTTP(sw, r)
}

func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// observe records the histogram, the stats and the access line of an API request.
func (s *Server) observe(r *http.Request, info *reqInfo, sw *statusWriter, start time.Time) {
	if unobserved(r.URL.Path) && r.Pattern != "" {
		return
	}
	route := info.route
	if route == "" {
		route = routeLabel(r.Pattern)
	}
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	d := time.Since(start)
	s.requests.Add(1)
	s.totalMicros.Add(d.Microseconds())
	s.metrics.duration.WithLabelValues(methodLabel(r.Method), route, strconv.Itoa(sw.status)).Observe(d.Seconds())
	switch {
	case !s.accessOn:
	case s.access != nil:
		s.access.log(start.Add(d), info, r.Method, route, sw.status, d)
	default:
		s.log.InfoContext(r.Context(), "request", "method", r.Method, "route", route,
			"status", sw.status, "duration_ms", ms(d))
	}
}

// labelEarly finds the route label of a request answered before routing (deadline,
// fault), so its metrics still carry the template and not "unmatched".
func (s *Server) labelEarly(r *http.Request, info *reqInfo) {
	_, pattern := s.mux.Handler(r)
	info.route = routeLabel(pattern)
}

// methodLabel bounds the method label: a client inventing methods must not invent
// time series (OpenTelemetry's "_OTHER" convention).
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "_OTHER"
}

// routeLabel is the pattern without its method ("GET /api/inventory/{id}" ->
// "/api/inventory/{id}"); the catch-all and a failed pre-routing step are "unmatched".
func routeLabel(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		pattern = path
	}
	if pattern == "" || pattern == "/" {
		return "unmatched"
	}
	return pattern
}

// deadline applies X-Request-Deadline-Ms: the remaining budget of the caller. It runs
// on /api routes only; /health, /ready and /metrics ignore the header.
func (s *Server) deadline(r *http.Request, ctx *context.Context, cancel *context.CancelFunc) *APIError {
	n, st := wire.ParseDeadline(wire.Get(r.Header, wire.HeaderDeadline))
	switch {
	case st == wire.DeadlineAbsent:
		return nil
	case st == wire.DeadlineMalformed:
		return &APIError{Code: CodeMalformedRequest, Message: "X-Request-Deadline-Ms must be an integer >= 0",
			Details: []FieldError{{Field: wire.HeaderDeadline, Message: "must be an integer >= 0"}}}
	case n == 0:
		return apiErr(CodeDeadlineExceeded, "the request deadline ran out")
	}
	*ctx, *cancel = context.WithTimeout(*ctx, time.Duration(min(n, 24*3600*1000))*time.Millisecond)
	return nil
}

// fault applies FAULT_DELAY_MS and FAULT_ERROR_RATE (dev/test only; refused in prod).
func (s *Server) fault(ctx context.Context) *APIError {
	if d := s.cfg.FaultDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return apiErr(CodeDeadlineExceeded, "the request deadline ran out")
		}
	}
	if rate := s.cfg.FaultErrorRate; rate > 0 && rand.Float64() < rate {
		return apiErr(CodeFaultInjected, "injected fault")
	}
	return nil
}

// newReqInfo keeps a sane incoming X-Request-Id (else a new one) and continues a valid
// traceparent with a new span id (else a new trace); neither is ever an error.
func newReqInfo(h http.Header) *reqInfo {
	raw, _ := wire.Get(h, wire.HeaderRequestID)
	id, ok := wire.ParseRequestID(raw)
	if !ok {
		id = wire.NewRequestID()
	}
	info := &reqInfo{requestID: id, spanID: wire.NewSpanID()}
	raw, _ = wire.Get(h, wire.HeaderTraceparent)
	if tr, ok := wire.ParseTraceparent(raw); ok {
		info.traceID = tr.TraceID
	} else {
		info.traceID = wire.NewTraceID()
	}
	return info
}

// writeJSON answers v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types reach here; a failure is a bug
		b = []byte(`{"error":{"code":"internal_error","message":"internal error","request_id":""}}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
