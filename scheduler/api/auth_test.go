package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// callers of the endpoint x role test, each with its token.
var testCallers = []struct {
	name, role, extra string
}{
	{"admin", "admin", ""},
	{"research", "submitter", "    tenants: [research]\n"},
	{"other", "submitter", "    tenants: [other]\n"},
	{"reader", "reader", ""},
	{"agent-n0", "agent", "    node: n0\n"},
}

// testTokens makes a token file for testCallers and returns it with each
// caller's token.
func testTokens(t testing.TB) (*Tokens, map[string]string) {
	t.Helper()
	toks := map[string]string{}
	var b strings.Builder
	b.WriteString("tokens:\n")
	for _, c := range testCallers {
		tok, sum, err := NewToken()
		require.NoError(t, err)
		toks[c.name] = tok
		fmt.Fprintf(&b, "  - name: %s\n    role: %s\n%s    sha256: %s\n", c.name, c.role, c.extra, sum)
	}
	ts, err := ParseTokens([]byte(b.String()), "tokens.yaml")
	require.NoError(t, err)
	return ts, toks
}

// syncBuffer is a buffer the audit logger and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secured serves a one-server cluster's API behind tokens, with an audit
// log, and returns its URL.
func secured(t *testing.T) (url string, toks map[string]string, audit *syncBuffer, mux *routeMux) {
	t.Helper()
	c := newCluster(t, 1, 2)
	ts, toks := testTokens(t)
	audit = &syncBuffer{}
	hd := NewHandler(c.ds[0].Server, nil, WithSecurity(&Security{Tokens: ts, Audit: NewAuditLogger(audit)}))
	srv := httptest.NewServer(hd)
	t.Cleanup(srv.Close)
	return srv.URL, toks, audit, hd.(*routeMux)
}

// call sends a request with a token ("" for none) and returns the status
// and the body.
func call(t *testing.T, url, token, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := noRedirects.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// noRedirects answers each request with its own answer: a redirect is the
// route's, not the page it leads to.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// A route registered without a row in Rules fails here; so does a row
// whose route is gone.
func TestEveryRouteHasARule(t *testing.T) {
	_, _, _, mux := secured(t)
	registered := mux.Patterns()
	require.NotEmpty(t, registered)
	for _, p := range registered {
		_, ok := ruleIndex[p]
		assert.True(t, ok, "route %q has no row in api.Rules (auth.go): add one", p)
	}
	for _, r := range Rules {
		assert.Contains(t, registered, r.Pattern, "api.Rules has a row for %q, which is not registered", r.Pattern)
	}
	assert.Len(t, ruleIndex, len(Rules), "a pattern repeated in Rules")
}

// Who may call what: every endpoint x every role, written out here rather
// than derived from the code's table, so that a change of either is
// caught. "ok" means the middleware let the request through (the handler
// may still answer 404 or 400); 401 and 403 come with a JSON error.
func TestEndpointRoles(t *testing.T) {
	url, toks, _, _ := secured(t)
	const ok = 0
	// signIn: let through, and the sign-in handler itself refuses the empty
	// form with its page (not the middleware's JSON).
	const signIn = -1
	const jobSpec = "name: j\ntenant: research\ntask:\n  gpus: 1\n  cpu_milli: 1000\n  memory_mib: 1024\n"
	// Submitted by admin first: a job of tenant research.
	st, body := call(t, url, toks["admin"], "POST", "/v1/jobs", "id: j1\n"+jobSpec[len("name: j\n"):])
	require.Equal(t, http.StatusCreated, st, string(body))

	type want struct{ none, bad, admin, research, other, reader, agent int }
	cases := []struct {
		route, path, body string
		want              want
	}{
		{"GET /v1/health", "/v1/health", "", want{ok, ok, ok, ok, ok, ok, ok}},
		{"GET /v1/jobs", "/v1/jobs", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"POST /v1/jobs", "/v1/jobs", jobSpec, want{401, 401, ok, ok, 403, 403, 403}},
		{"POST /v1/jobs/plan", "/v1/jobs/plan", jobSpec, want{401, 401, ok, ok, 403, 403, 403}},
		{"GET /v1/jobs/{id}", "/v1/jobs/j1", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"GET /v1/jobs/{id}/logs", "/v1/jobs/j1/logs", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"POST /v1/jobs/{id}/finish", "/v1/jobs/nope/finish", "{}", want{401, 401, ok, 403, 403, 403, 403}},
		{"DELETE /v1/jobs/{id}", "/v1/jobs/j1", "", want{401, 401, ok, ok, 403, 403, 403}},
		{"GET /v1/nodes", "/v1/nodes", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"GET /v1/nodes/{name}", "/v1/nodes/n0", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"POST /v1/nodes/{name}/state", "/v1/nodes/n0/state", `{"state":"bogus"}`, want{401, 401, ok, 403, 403, 403, 403}},
		{"POST /v1/nodes/{name}/retire", "/v1/nodes/n0/retire", `{"at":"bogus"}`, want{401, 401, ok, 403, 403, 403, 403}},
		{"GET /v1/pools", "/v1/pools", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"GET /v1/snapshot", "/v1/snapshot", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"GET /v1/history", "/v1/history", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"GET /metrics", "/metrics", "", want{401, 401, ok, ok, ok, ok, 403}},
		{"GET /ui/", "/ui/", "", want{401, 401, ok, ok, ok, ok, 403}},
		// Open: the form checks the token it is given (TestWebSignIn).
		{"POST /ui/login", "/ui/login", "", want{signIn, signIn, signIn, signIn, signIn, signIn, signIn}},
		{"POST /ui/logout", "/ui/logout", "", want{ok, ok, ok, ok, ok, ok, ok}},
		{"GET /v1/operator/raft/peers", "/v1/operator/raft/peers", "", want{401, 401, ok, 403, 403, 403, 403}},
		{"POST /v1/operator/raft/peers", "/v1/operator/raft/peers", "{}", want{401, 401, ok, 403, 403, 403, 403}},
		{"DELETE /v1/operator/raft/peers/{id}", "/v1/operator/raft/peers/nope", "", want{401, 401, ok, 403, 403, 403, 403}},
		{"GET /v1/operator/snapshot", "/v1/operator/snapshot", "", want{401, 401, ok, 403, 403, 403, 403}},
		{"POST /v1/operator/snapshot", "/v1/operator/snapshot", "not a backup", want{401, 401, ok, 403, 403, 403, 403}},
		{"POST /v1/agents/register", "/v1/agents/register", `{"node":{"name":"n0"}}`, want{401, 401, ok, 403, 403, 403, ok}},
		{"POST /v1/agents/{node}/heartbeat", "/v1/agents/n0/heartbeat", "{}", want{401, 401, ok, 403, 403, 403, ok}},
		{"/", "/v1/nothing-here", "", want{401, 401, ok, ok, ok, ok, ok}},
	}
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.route] = true
		method := strings.Fields(tc.route)[0]
		if tc.route == "/" {
			method = "GET"
		}
		for _, who := range []struct {
			name, token string
			want        int
		}{
			{"none", "", tc.want.none},
			{"bad token", "ptk_not-a-token", tc.want.bad},
			// Agents and readers before the submitters and the admin, who
			// may change what the path names (cancel j1).
			{"agent-n0", toks["agent-n0"], tc.want.agent},
			{"reader", toks["reader"], tc.want.reader},
			{"other", toks["other"], tc.want.other},
			{"research", toks["research"], tc.want.research},
			{"admin", toks["admin"], tc.want.admin},
		} {
			t.Run(tc.route+"/"+who.name, func(t *testing.T) {
				st, body := call(t, url, who.token, method, tc.path, tc.body)
				if who.want == signIn {
					assert.Equal(t, http.StatusUnauthorized, st)
					assert.Contains(t, string(body), `<form method="post" action="/ui/login">`)
					return
				}
				if who.want == ok {
					assert.NotContains(t, []int{401, 403}, st, "%s %s as %s: %s", method, tc.path, who.name, body)
					return
				}
				require.Equal(t, who.want, st, "%s %s as %s: %s", method, tc.path, who.name, body)
				var eb ErrorBody
				require.NoError(t, json.Unmarshal(body, &eb), string(body))
				require.NotNil(t, eb.Error)
				assert.Equal(t, map[int]string{401: CodeUnauthenticated, 403: CodeForbidden}[st], eb.Error.Code)
				assert.NotEmpty(t, eb.Error.Message)
			})
		}
	}
	for _, r := range Rules {
		assert.True(t, covered[r.Pattern], "route %q has no row in TestEndpointRoles", r.Pattern)
	}
}

func TestAgentActsForItsNodeOnly(t *testing.T) {
	url, toks, _, _ := secured(t)
	st, body := call(t, url, toks["agent-n0"], "POST", "/v1/agents/n1/heartbeat", "{}")
	require.Equal(t, http.StatusForbidden, st, string(body))
	assert.Contains(t, string(body), "agent of node n0 may not act for node n1")
	st, body = call(t, url, toks["agent-n0"], "POST", "/v1/agents/register", `{"node":{"name":"n1"}}`)
	require.Equal(t, http.StatusForbidden, st, string(body))
	assert.Contains(t, string(body), "agent of node n0 may not act for node n1")
}

func TestSubmitterTenants(t *testing.T) {
	url, toks, _, _ := secured(t)
	for _, tc := range []struct {
		spec string
		want int
		msg  string
	}{
		{"name: a\ntenant: research\ntask: {gpus: 1}\n", http.StatusCreated, ""},
		{"name: b\ntenant: other\ntask: {gpus: 1}\n", http.StatusForbidden, "acts for tenants research, not"},
		{"name: c\ntask: {gpus: 1}\n", http.StatusForbidden, "must name its tenant"},
		{"name: d\ntenant: research\ntask: {gpus: 1, vram: 3}\n", http.StatusBadRequest, "vram"},
	} {
		st, body := call(t, url, toks["research"], "POST", "/v1/jobs", tc.spec)
		require.Equal(t, tc.want, st, "%s: %s", tc.spec, body)
		assert.Contains(t, string(body), tc.msg)
	}
	// A job of tenant other, submitted by the admin: research may not cancel it.
	st, body := call(t, url, toks["admin"], "POST", "/v1/jobs", "id: theirs\ntenant: other\ntask: {gpus: 1}\n")
	require.Equal(t, http.StatusCreated, st, string(body))
	st, body = call(t, url, toks["research"], "DELETE", "/v1/jobs/theirs", "")
	require.Equal(t, http.StatusForbidden, st, string(body))
	st, body = call(t, url, toks["other"], "DELETE", "/v1/jobs/theirs", "")
	require.Equal(t, http.StatusOK, st, string(body))
}

func TestAuditLog(t *testing.T) {
	url, toks, audit, _ := secured(t)
	st, body := call(t, url, toks["research"], "POST", "/v1/jobs", "name: audited\ntenant: research\ntask: {gpus: 1}\n")
	require.Equal(t, http.StatusCreated, st, string(body))
	var sub SubmitResponse
	require.NoError(t, json.Unmarshal(body, &sub))
	st, _ = call(t, url, toks["reader"], "DELETE", "/v1/jobs/"+sub.ID, "")
	require.Equal(t, http.StatusForbidden, st)
	st, _ = call(t, url, "ptk_guess", "POST", "/v1/nodes/n0/state", `{"state":"draining"}`)
	require.Equal(t, http.StatusUnauthorized, st)
	st, _ = call(t, url, toks["admin"], "POST", "/v1/nodes/n0/state", `{"state":"draining"}`)
	require.Equal(t, http.StatusOK, st)
	st, _ = call(t, url, toks["admin"], "GET", "/v1/jobs", "") // a read: no line
	require.Equal(t, http.StatusOK, st)

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		lines = append(lines, m)
	}
	require.Len(t, lines, 4, audit.String())
	pick := func(m map[string]any, keys ...string) map[string]any {
		out := map[string]any{}
		for _, k := range keys {
			if v, ok := m[k]; ok {
				out[k] = v
			}
		}
		return out
	}
	keys := []string{"log", "who", "role", "method", "route", "id", "name", "status"}
	assert.Equal(t, map[string]any{"log": "audit", "who": "research", "role": "submitter", "method": "POST", "route": "POST /v1/jobs", "id": sub.ID, "status": 201.0}, pick(lines[0], keys...))
	assert.Equal(t, map[string]any{"log": "audit", "who": "reader", "role": "reader", "method": "DELETE", "route": "DELETE /v1/jobs/{id}", "id": sub.ID, "status": 403.0}, pick(lines[1], keys...))
	assert.Equal(t, map[string]any{"log": "audit", "who": "unauthenticated", "method": "POST", "route": "POST /v1/nodes/{name}/state", "name": "n0", "status": 401.0}, pick(lines[2], keys...))
	assert.Equal(t, map[string]any{"log": "audit", "who": "admin", "role": "admin", "method": "POST", "route": "POST /v1/nodes/{name}/state", "name": "n0", "status": 200.0}, pick(lines[3], keys...))
	for name, tok := range toks {
		assert.NotContains(t, audit.String(), tok, "the audit log holds %s's token", name)
	}
	assert.NotContains(t, audit.String(), "ptk_guess")
	assert.NotContains(t, audit.String(), "tenant: research", "no request body in the audit log")
}

func TestOpenServerIsAsBefore(t *testing.T) {
	c := newCluster(t, 1, 1)
	srv := httptest.NewServer(NewHandler(c.ds[0].Server, nil))
	t.Cleanup(srv.Close)
	st, body := call(t, srv.URL, "", "GET", "/v1/jobs", "")
	require.Equal(t, http.StatusOK, st, string(body))
	st, body = call(t, srv.URL, "", "POST", "/v1/jobs", "name: x\ntask: {gpus: 1}\n")
	require.Equal(t, http.StatusCreated, st, string(body))
}

func TestUnknownRouteIsDenied(t *testing.T) {
	c := newCluster(t, 1, 1)
	ts, toks := testTokens(t)
	h := NewHandler(c.ds[0].Server, nil, WithSecurity(&Security{Tokens: ts})).(*routeMux)
	// As another engineer's new route would be, registered without a row.
	h.HandleFunc("GET /v1/unruled", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	st, body := call(t, srv.URL, toks["admin"], "GET", "/v1/unruled", "")
	require.Equal(t, http.StatusForbidden, st, string(body))
	assert.Contains(t, string(body), "no permission rule")
}

func TestParseTokensErrors(t *testing.T) {
	const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for _, tc := range []struct{ file, want string }{
		{"tokens: []\n", "no token"},
		{"tokens:\n  - name: a\n    role: admin\n    sha256: " + sum + "\n    secret: x\n", "field secret not found"},
		{"tokens:\n  - name: a\n    role: root\n    sha256: " + sum + "\n", `t.yaml:2: tokens[0].role: "root"`},
		{"tokens:\n  - name: a\n    role: submitter\n    sha256: " + sum + "\n", "tokens[0].tenants: a submitter needs"},
		{"tokens:\n  - name: a\n    role: reader\n    tenants: [x]\n    sha256: " + sum + "\n", "only a submitter has tenants"},
		{"tokens:\n  - name: a\n    role: agent\n    sha256: " + sum + "\n", "an agent's token names its node"},
		{"tokens:\n  - name: a\n    role: admin\n    sha256: abc\n", "64 hex digits"},
		{"tokens:\n  - role: admin\n    sha256: " + sum + "\n", "name: required"},
		{"tokens:\n  - name: a\n    role: admin\n    sha256: " + sum + "\n  - name: a\n    role: reader\n    sha256: " + strings.Repeat("0", 64) + "\n", `t.yaml:5: tokens[1].name: "a" repeated`},
		{"tokens:\n  - name: a\n    role: admin\n    sha256: " + sum + "\n  - name: b\n    role: reader\n    sha256: " + sum + "\n", "tokens[1].sha256: the same token"},
	} {
		_, err := ParseTokens([]byte(tc.file), "t.yaml")
		require.ErrorContains(t, err, tc.want, tc.file)
	}
	ts, err := ParseTokens([]byte("tokens:\n  - name: a\n    role: admin\n    sha256: "+sum+"\n"), "t.yaml")
	require.NoError(t, err)
	got, ok := ts.Lookup("test") // sha256("test") is sum
	require.True(t, ok)
	assert.Equal(t, "a", got.Name)
	_, ok = ts.Lookup("Test")
	assert.False(t, ok)
	tok, h, err := NewToken()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(tok, "ptk_"))
	assert.Equal(t, HashToken(tok), h)
	assert.False(t, slices.Contains([]string{h}, tok))
}

// Reload swaps the tokens while lookups run; a bad file changes nothing.
func TestTokensReload(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/tokens.yaml"
	a, asum, err := NewToken()
	require.NoError(t, err)
	b, bsum, err := NewToken()
	require.NoError(t, err)
	write := func(body string) { require.NoError(t, os.WriteFile(path, []byte(body), 0o600)) }
	write("tokens:\n  - name: a\n    role: admin\n    sha256: " + asum + "\n")
	ts, err := LoadTokens(path)
	require.NoError(t, err)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // lookups under the race detector while the file is reloaded
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				ts.Lookup(a)
				ts.Len()
			}
		}
	}()
	write("tokens:\n  - name: b\n    role: reader\n    sha256: " + bsum + "\n  - name: a\n    role: reader\n    sha256: " + asum + "\n")
	require.NoError(t, ts.Reload(path))
	got, ok := ts.Lookup(a)
	require.True(t, ok)
	assert.Equal(t, RoleReader, got.Role, "a's role came from the new file")
	_, ok = ts.Lookup(b)
	assert.True(t, ok)
	assert.Equal(t, 2, ts.Len())

	write("tokens:\n  - name: b\n    role: boss\n    sha256: " + bsum + "\n")
	err = ts.Reload(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tokens.yaml:2: tokens[0].role")
	_, ok = ts.Lookup(a)
	assert.True(t, ok, "a bad file leaves the tokens in use")
	assert.Equal(t, 2, ts.Len())
	close(stop)
	wg.Wait()
}
