// This file owns the JSON log format shared by the three services (observability.md):
// ts, level, service, msg, and trace_id/span_id/request_id on request-scoped lines.
package httpapi

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"
)

// NewLogger writes JSON lines to w at the given level (debug, info, warn, error).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level)) // config already checked it; info on anything else
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: lv,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("ts", a.Value.Time().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
			case slog.LevelKey:
				return slog.String("level", strings.ToLower(a.Value.String()))
			}
			return a
		},
	})
	return slog.New(ctxHandler{h}).With("service", "inventory")
}

// ctxHandler adds the request's ids to every line logged with its context.
type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if info := infoFrom(ctx); info != nil {
		r.AddAttrs(slog.String("trace_id", info.traceID), slog.String("span_id", info.spanID),
			slog.String("request_id", info.requestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h ctxHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ctxHandler{h.Handler.WithAttrs(attrs)}
}

func (h ctxHandler) WithGroup(name string) slog.Handler { return ctxHandler{h.Handler.WithGroup(name)} }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
