// This file lists the whole API: every route of inventory.openapi.yaml, with Go 1.22
// method patterns. The route label of metrics and logs is the pattern without method.
package httpapi

import (
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type route struct {
	method, path string
	handler      http.Handler
}

func (s *Server) routeTable() []route {
	return []route{
		{"GET", "/health", http.HandlerFunc(s.health)},
		{"GET", "/ready", http.HandlerFunc(s.ready)},
		{"GET", "/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})},
		{"GET", "/api/inventory/{id}", s.handle(s.getItem)},
		{"PUT", "/api/inventory/{id}", s.handle(s.restock)},
		{"POST", "/api/inventory/batch", s.handle(s.getBatch)},
		{"GET", "/api/warehouses", s.handle(s.listWarehouses)},
		{"POST", "/api/reservations", s.handle(s.reserve)},
		{"GET", "/api/reservations/{id}", s.handle(s.getReservation)},
		{"POST", "/api/reservations/{id}/commit", s.handle(s.commit)},
		{"DELETE", "/api/reservations/{id}", s.handle(s.release)},
		{"GET", "/api/stats", s.handle(s.stats)},
	}
}

// routes registers the table, plus a catch-all that answers 404 or 405 in the shared
// error JSON instead of net/http's plain-text bodies.
func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.pathMux = http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range s.routeTable() {
		s.mux.Handle(rt.method+" "+rt.path, rt.handler)
		if _, seen := methods[rt.path]; !seen {
			s.pathMux.Handle(rt.path, http.NotFoundHandler()) // only its pattern is used
		}
		methods[rt.path] = append(methods[rt.path], rt.method)
		if rt.method == "GET" {
			methods[rt.path] = append(methods[rt.path], "HEAD")
		}
	}
	s.allow = make(map[string]string, len(methods))
	for path, ms := range methods {
		sort.Strings(ms)
		s.allow[path] = strings.Join(ms, ", ")
	}
	s.mux.HandleFunc("/", s.unmatched)
}

func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.pathMux.Handler(r); pattern != "" {
		if info := infoFrom(r.Context()); info != nil {
			info.route = pattern
		}
		s.writeError(w, r, &APIError{Code: CodeMethodNotAllowed,
			Message: r.Method + " is not allowed here", Allow: s.allow[pattern]})
		return
	}
	s.writeError(w, r, apiErr(CodeNotFound, "no such route"))
}

// Paths answers the path templates the router serves (the OpenAPI test uses it).
func (s *Server) Paths() []string {
	var out []string
	seen := map[string]bool{}
	for _, rt := range s.routeTable() {
		if !seen[rt.path] {
			seen[rt.path] = true
			out = append(out, rt.path)
		}
	}
	return out
}
