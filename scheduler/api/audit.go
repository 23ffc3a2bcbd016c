package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
)

// recorder keeps a response's status, and the start of its body so the
// audit line can name the job a submit created.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	head   []byte
}

// auditBodyBytes is how much of a response the audit line may look at.
const auditBodyBytes = 512

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	if n := auditBodyBytes - len(r.head); n > 0 {
		r.head = append(r.head, b[:min(n, len(b))]...)
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer
// (flushes of a proxied answer).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// audit writes one line for a state-changing request: who, what, and the
// result. It never writes a header or a body of the request: tokens and
// specs stay out of the audit log.
func (h *handler) audit(rec *recorder, r *http.Request, pattern string, p *Principal) {
	attrs := []slog.Attr{
		slog.String("who", orElse(p.Name, "unauthenticated")),
	}
	if p.Role != "" {
		attrs = append(attrs, slog.String("role", string(p.Role)), slog.String("via", p.Via))
	}
	if p.Cert != "" {
		attrs = append(attrs, slog.String("cert", p.Cert))
	}
	if p.ForwardedBy != "" {
		attrs = append(attrs, slog.String("forwarded_by", p.ForwardedBy))
	}
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("route", pattern),
		slog.String("path", r.URL.Path),
	)
	for _, w := range wildcards(pattern) {
		attrs = append(attrs, slog.String(w, r.PathValue(w)))
	}
	if rec.status == http.StatusCreated && !strings.Contains(pattern, "{id}") {
		var out struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(rec.head, &out) == nil && out.ID != "" {
			attrs = append(attrs, slog.String("id", out.ID))
		}
	}
	attrs = append(attrs, slog.Int("status", rec.status), slog.String("remote", r.RemoteAddr))
	h.sec.Audit.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// wildcards lists the names of a pattern's {wildcards}.
func wildcards(pattern string) []string {
	var out []string
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, strings.TrimSuffix(pattern[i+1:i+j], "..."))
		pattern = pattern[i+j+1:]
	}
}

// NewAuditLogger returns the audit log's logger: JSON lines to w, one per
// state-changing request, apart from the server's own log.
func NewAuditLogger(w interface{ Write([]byte) (int, error) }) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil)).With(slog.String("log", "audit"))
}
