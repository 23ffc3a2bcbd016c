package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"petite/scheduler/pki"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// Permission is what a route asks of its caller.
type Permission string

// The permissions, from the most open.
const (
	// PermOpen needs no credentials: health checks from load balancers.
	PermOpen Permission = "open"
	// PermAny needs a caller the server can name (the not-found answer).
	PermAny Permission = "any"
	// PermRead is for readers, submitters, servers and admins.
	PermRead Permission = "read"
	// PermSubmit is for admins, and for submitters when the job's tenant
	// (in the spec, or of the job named in the path) is one of theirs.
	PermSubmit Permission = "submit"
	// PermAgent is for admins, and for the agent of the node the path
	// names ({node}); a handler whose node is in the body checks it with
	// CallerNode.
	PermAgent Permission = "agent"
	// PermAdmin is for admins.
	PermAdmin Permission = "admin"
)

// Rule is one row of the permission table: a route pattern as registered
// on the API's mux, and what it asks of a caller.
type Rule struct {
	Pattern string
	Perm    Permission
}

// Rules is the API's permission table, one row per registered route. A
// route registered without a row is refused to everyone but is a test
// failure first (TestEveryRouteHasARule); docs/security.md shows this
// table (TestSecurityDocInSync).
var Rules = []Rule{
	{"GET /v1/health", PermOpen},
	{"GET /v1/jobs", PermRead},
	{"POST /v1/jobs", PermSubmit},
	{"POST /v1/jobs/plan", PermSubmit},
	{"GET /v1/jobs/{id}", PermRead},
	{"DELETE /v1/jobs/{id}", PermSubmit},
	{"POST /v1/jobs/{id}/finish", PermAdmin},
	{"GET /v1/nodes", PermRead},
	{"GET /v1/nodes/{name}", PermRead},
	{"POST /v1/nodes/{name}/state", PermAdmin},
	{"POST /v1/nodes/{name}/retire", PermAdmin},
	{"GET /v1/pools", PermRead},
	{"GET /v1/operator/raft/peers", PermAdmin},
	{"POST /v1/operator/raft/peers", PermAdmin},
	{"DELETE /v1/operator/raft/peers/{id}", PermAdmin},
	{"GET /v1/snapshot", PermRead},
	{"POST /v1/agents/register", PermAgent}, // the node is in the body: the handler checks it
	{"POST /v1/agents/{node}/heartbeat", PermAgent},
	{"GET /v1/jobs/{id}/logs", PermRead},
	{"GET /metrics", PermRead},
	{"GET /ui/", PermRead},        // the web page (web.go); its cookie counts here only (web_login.go)
	{"POST /ui/login", PermOpen},  // the page's sign-in form: it checks the token itself
	{"POST /ui/logout", PermOpen}, // clears the page's cookie
	{"GET /v1/operator/snapshot", PermAdmin},
	{"POST /v1/operator/snapshot", PermAdmin},
	{"GET /v1/history", PermRead},
	{"/", PermAny},
}

var ruleIndex = func() map[string]Permission {
	m := make(map[string]Permission, len(Rules))
	for _, r := range Rules {
		m[r.Pattern] = r.Perm
	}
	return m
}()

// grants says which permissions a role holds outright; PermSubmit for a
// submitter and PermAgent for an agent are further checked against the
// request.
var grants = map[Role][]Permission{
	RoleAdmin:     {PermAny, PermRead, PermSubmit, PermAgent, PermAdmin},
	RoleSubmitter: {PermAny, PermRead, PermSubmit},
	RoleReader:    {PermAny, PermRead},
	RoleAgent:     {PermAny, PermAgent},
	RoleServer:    {PermAny, PermRead},
}

// Security is how a server's API authenticates and authorizes callers.
// The zero value (or nil) is open: every caller is an anonymous admin, as
// a dev server on loopback is.
type Security struct {
	// Tokens are the bearer tokens accepted; nil: none.
	Tokens *Tokens
	// TLS is the API's server configuration (pki.Files.ServerConfig); nil:
	// plain HTTP. With it every route but the open ones needs a client
	// certificate of the CA.
	TLS *tls.Config
	// PeerTLS is the client configuration a follower forwards to the
	// leader with: the server's own certificate, which the leader trusts
	// to vouch for the caller it authenticated.
	PeerTLS *tls.Config
	// Audit receives one line per state-changing request; nil: none.
	Audit *slog.Logger
}

// Open reports whether the API lets anyone in: no tokens and no TLS.
func (s *Security) Open() bool { return s == nil || (s.Tokens == nil && s.TLS == nil) }

// Principal is the caller of a request, as the API authenticated it.
type Principal struct {
	// Name is the token's name or the certificate's; "anonymous" on an open
	// server.
	Name    string   `json:"name"`
	Role    Role     `json:"role"`
	Tenants []string `json:"tenants,omitempty"`
	// Node is the node an agent may act for.
	Node string `json:"node,omitempty"`
	// Via is how it was authenticated: token, certificate, open, or page
	// cookie (a token kept by the web page's sign-in form).
	Via string `json:"via"`
	// Cert is the client certificate's identity when there was one.
	Cert string `json:"cert,omitempty"`
	// ForwardedBy is the server that authenticated the caller and
	// forwarded the request here.
	ForwardedBy string `json:"forwarded_by,omitempty"`
}

// Codes of authentication and authorization errors.
const (
	CodeUnauthenticated = "unauthenticated" // 401: no or bad credentials
	CodeForbidden       = "forbidden"       // 403: the caller may not do this
)

// callerHeader carries, from a follower to the leader, the caller the
// follower authenticated; the leader believes it only from a server's
// certificate.
const callerHeader = "X-Petite-Caller"

type principalKey struct{}

// Caller returns the authenticated caller of a request the API's
// middleware let through.
func Caller(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(principalKey{}).(Principal)
	return p, ok
}

// CallerNode says which node the caller may act for: restricted is true
// for an agent, which may act for node alone; false for an admin (or an
// open server), who may act for any node. Agent handlers whose node is in
// the body, not the path, must check it with this.
func CallerNode(r *http.Request) (node string, restricted bool) {
	p, ok := Caller(r)
	if !ok || p.Role != RoleAgent {
		return "", false
	}
	return p.Node, true
}

// CheckNode answers 403 and returns false unless the caller may act for
// node.
func CheckNode(w http.ResponseWriter, r *http.Request, node string) bool {
	if own, restricted := CallerNode(r); restricted && own != node {
		writeErr(w, &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf("agent of node %s may not act for node %s", own, node)})
		return false
	}
	return true
}

// routeMux is the API's ServeMux: it records every pattern registered and
// puts each handler behind the permission check of its row.
type routeMux struct {
	*http.ServeMux
	h        *handler
	patterns []string
}

func newRouteMux(h *handler) *routeMux { return &routeMux{ServeMux: http.NewServeMux(), h: h} }

// Handle registers a handler behind the permission check.
func (m *routeMux) Handle(pattern string, next http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, m.h.guard(pattern, next))
}

// HandleFunc registers a handler function behind the permission check.
func (m *routeMux) HandleFunc(pattern string, fn func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(fn))
}

// Patterns lists the patterns registered, in order.
func (m *routeMux) Patterns() []string { return slices.Clone(m.patterns) }

// guard authenticates the caller, checks the route's permission, writes
// the audit line of a state-changing request, and calls next.
func (h *handler) guard(pattern string, next http.Handler) http.Handler {
	perm, known := ruleIndex[pattern]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if known && perm == PermOpen {
			next.ServeHTTP(w, r)
			return
		}
		var p Principal
		if h.sec != nil && h.sec.Audit != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
			rec := &recorder{ResponseWriter: w, status: http.StatusOK}
			w = rec
			defer func() { h.audit(rec, r, pattern, &p) }()
		}
		r, fromCookie := withUICookie(r, pattern)
		p, e := h.authenticate(r)
		if e == nil && fromCookie {
			p.Via = viaCookie
		}
		if e == nil {
			if !known {
				h.log.Error("route without a permission rule: denied", "route", pattern)
				e = &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf("route %s has no permission rule: denied by default", pattern)}
			} else {
				e = h.authorize(r, p, pattern, perm)
			}
		}
		if e != nil {
			if wantsPage(r, pattern) && (e.Status == http.StatusUnauthorized || fromCookie) {
				if fromCookie {
					e.Message = "Your token no longer works here (" + e.Message + "); sign in again."
				}
				h.loginPage(w, e.Status, e.Message)
				return
			}
			if e.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="petite"`)
			}
			writeErr(w, e)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func unauthenticated(format string, a ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: fmt.Sprintf(format, a...)}
}

func forbidden(format string, a ...any) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf(format, a...)}
}

// authenticate names the caller: a token, else a certificate; a server's
// certificate with the caller it vouches for names that caller.
func (h *handler) authenticate(r *http.Request) (Principal, *Error) {
	sec := h.sec
	if sec.Open() {
		return Principal{Name: "anonymous", Role: RoleAdmin, Via: "open"}, nil
	}
	var cert *pki.Identity
	if sec.TLS != nil {
		if r.TLS == nil {
			return Principal{}, unauthenticated("this server requires TLS with a client certificate of its CA")
		}
		id, err := pki.PeerIdentity(*r.TLS)
		if err != nil {
			return Principal{}, unauthenticated("a client certificate of the cluster's CA is required: %v", err)
		}
		cert = &id
		if id.Role == pki.RoleServer && r.Header.Get(ForwardedHeader) != "" {
			if v := r.Header.Get(callerHeader); v != "" {
				var p Principal
				if err := json.Unmarshal([]byte(v), &p); err != nil || p.Name == "" || p.Role == "" {
					return Principal{}, unauthenticated("server %s forwarded a request with a bad %s header", id.Name, callerHeader)
				}
				p.ForwardedBy = id.Name
				return p, nil
			}
		}
	}
	tok, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return Principal{}, unauthenticated("Authorization: want Bearer TOKEN")
	}
	var certName string
	if cert != nil {
		certName = cert.String()
	}
	if tok != "" {
		if sec.Tokens == nil {
			return Principal{}, unauthenticated("this server takes no tokens; authenticate with a client certificate")
		}
		t, ok := sec.Tokens.Lookup(tok)
		if !ok {
			return Principal{}, unauthenticated("unknown token")
		}
		return Principal{Name: t.Name, Role: t.Role, Tenants: t.Tenants, Node: t.Node, Via: "token", Cert: certName}, nil
	}
	if cert != nil {
		if role, ok := certRole(*cert, sec.Tokens != nil); ok {
			p := Principal{Name: cert.Name, Role: role, Via: "certificate", Cert: certName}
			if role == RoleAgent {
				p.Node = cert.Name
			}
			return p, nil
		}
	}
	return Principal{}, unauthenticated("a bearer token is required (Authorization: Bearer TOKEN; petite --token or PETITE_TOKEN)")
}

// authorize checks a caller's role against the route's permission, and a
// submitter's tenant or an agent's node against the request.
func (h *handler) authorize(r *http.Request, p Principal, pattern string, perm Permission) *Error {
	if !slices.Contains(grants[p.Role], perm) {
		return forbidden("%s %s (%s) may not %s: the route needs %s", p.Role, p.Name, p.Via, pattern, perm)
	}
	switch {
	case perm == PermSubmit && p.Role == RoleSubmitter:
		return h.checkTenant(r, p, pattern)
	case perm == PermAgent && p.Role == RoleAgent:
		if strings.Contains(pattern, "{node}") && r.PathValue("node") != p.Node {
			return forbidden("agent of node %s may not act for node %s", p.Node, r.PathValue("node"))
		}
	}
	return nil
}

// checkTenant lets a submitter act on jobs of its tenants only: the
// tenant of the job the path names, else the tenant the spec in the body
// names.
func (h *handler) checkTenant(r *http.Request, p Principal, pattern string) *Error {
	var tenant string
	if strings.Contains(pattern, "{id}") {
		id := r.PathValue("id")
		// The leader reads after a barrier, so a job committed before an
		// election is seen; a follower that does not know the job yet
		// forwards the request, and the leader checks it again.
		if h.s.IsLeader() {
			if err := h.s.Barrier(r.Context()); err != nil {
				return h.commitError(err)
			}
		}
		var ok bool
		h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
			var info state.JobInfo
			if info, ok = m.Job(id); ok {
				tenant = info.Job.Tenant
			}
		})
		if !ok {
			return nil // the handler answers 404, or the leader checks
		}
	} else {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(b))
		if err != nil {
			return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("read body: %v", err)}
		}
		if len(b) > maxBody {
			return nil // the handler answers 413
		}
		spec, err := ParseJobSpec(bytes.NewReader(b), "")
		if err != nil {
			return nil // the handler answers 400, naming the field
		}
		if spec.Tenant == "" {
			return forbidden("submitter %s must name its tenant in the spec (tenant: one of %s)", p.Name, strings.Join(p.Tenants, ", "))
		}
		tenant = spec.Tenant
	}
	if !slices.Contains(p.Tenants, tenant) {
		return forbidden("submitter %s acts for tenants %s, not %q", p.Name, strings.Join(p.Tenants, ", "), tenant)
	}
	return nil
}

// vouch writes the caller a follower authenticated into the request it
// forwards to the leader. Only a server's certificate makes the leader
// believe it; a caller's own header is replaced.
func vouch(in, out *http.Request) {
	out.Header.Del(callerHeader)
	if p, ok := Caller(in); ok {
		b, _ := json.Marshal(p) // a Principal always marshals
		out.Header.Set(callerHeader, string(b))
	}
}

// forwardTransport is the transport a follower forwards with: the
// server's certificate when the API runs TLS, else the default.
func (s *Security) forwardTransport() http.RoundTripper {
	if s == nil || s.PeerTLS == nil {
		return nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = s.PeerTLS.Clone()
	return t
}

// Option configures a handler or a daemon.
type Option func(*options)

type options struct {
	sec  *Security
	rate *RateLimit // limit.go
}

// WithSecurity sets how the API authenticates and authorizes callers; by
// default it is open.
func WithSecurity(sec *Security) Option { return func(o *options) { o.sec = sec } }

func applyOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// LoadSecurity builds the API's security from the server's TLS files (all
// empty: no TLS) and token file ("" for none).
func LoadSecurity(files pki.Files, tokensPath string) (*Security, error) {
	sec := &Security{}
	if !files.Empty() {
		var err error
		if sec.TLS, err = files.ServerConfig(); err != nil {
			return nil, fmt.Errorf("API TLS: %w", err)
		}
		if sec.PeerTLS, err = files.ClientConfig(); err != nil {
			return nil, fmt.Errorf("API TLS: %w", err)
		}
	}
	if tokensPath != "" {
		ts, err := LoadTokens(tokensPath)
		if err != nil {
			return nil, err
		}
		sec.Tokens = ts
	}
	return sec, nil
}

// UseTLS makes the client verify servers with cfg (its RootCAs) and
// present cfg's certificate, if any. A base URL of http:// becomes
// https://.
func (c *Client) UseTLS(cfg *tls.Config) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg.Clone()
	c.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: t}
	if rest, ok := strings.CutPrefix(c.Base, "http://"); ok {
		c.Base = "https://" + rest
	}
}

// agentClient returns a client of an agent's log API at addr: over TLS
// with this server's certificate when the agent advertises https:// (its
// API answers servers only).
func (h *handler) agentClient(addr string) (*Client, error) {
	cl, err := NewClient(addr)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(cl.Base, "https://") {
		if h.sec == nil || h.sec.PeerTLS == nil {
			return nil, fmt.Errorf("agent at %s serves TLS and this server has no certificate (--tls-cert)", addr)
		}
		cl.UseTLS(h.sec.PeerTLS)
	}
	return cl, nil
}
