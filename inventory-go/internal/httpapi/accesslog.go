// This file owns the access line ("msg":"request"), written by hand: it is the only log
// line on the hot path, and slog's generic JSON handler cost about a third of a GET's
// CPU. The line has the same fields as slog's (a test compares the two).
package httpapi

import (
	"io"
	"strconv"
	"sync"
	"time"
)

// SyncWriter serialises writes, so slog and the access logger can share stdout
// without interleaving lines.
func SyncWriter(w io.Writer) io.Writer { return &syncWriter{w: w} }

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

type accessLogger struct {
	w    io.Writer
	pool sync.Pool
}

func newAccessLogger(w io.Writer) *accessLogger {
	return &accessLogger{w: w, pool: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

func (a *accessLogger) log(now time.Time, info *reqInfo, method, route string, status int, d time.Duration) {
	bp := a.pool.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"ts":"`...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","level":"info","msg":"request","service":"inventory","method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, ms(d), 'f', -1, 64)
	b = append(b, `,"trace_id":`...)
	b = appendJSONString(b, info.traceID)
	b = append(b, `,"span_id":`...)
	b = appendJSONString(b, info.spanID)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, info.requestID)
	b = append(b, "}\n"...)
	_, _ = a.w.Write(b)
	*bp = b
	a.pool.Put(bp)
}

// appendJSONString quotes s as JSON. Every value here is ASCII from our own tables or
// validated ids, except the method, which net/http already limits to token characters;
// escaping still covers anything else, so the line can never break.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c >= 0x7f:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
