package api

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browser is an HTTP client that keeps cookies, asks for HTML and does not
// follow redirects, as the test reads each answer.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func visit(t *testing.T, c *http.Client, method, u string, form url.Values, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// A person opens the page of a server that takes tokens: a sign-in form,
// then the page with a token that may read it, the cookie honoured on the
// page alone, and sign-out.
func TestWebSignIn(t *testing.T) {
	base, toks, audit, _ := secured(t)
	b := browser(t)

	resp, body := visit(t, b, "GET", base+"/ui/", nil, nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	assert.Contains(t, body, `<form method="post" action="/ui/login">`, "a browser gets the sign-in form")
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "form-action 'self'")

	// A script (no Accept: text/html) still gets the API's JSON error.
	st, jbody := call(t, base, "", "GET", "/ui/", "")
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Contains(t, string(jbody), `"code":"unauthenticated"`)

	for _, c := range []struct {
		name, token string
		status      int
		says        string
	}{
		{"unknown token", "ptk_nope", http.StatusUnauthorized, "Unknown token."},
		{"empty", "", http.StatusUnauthorized, "Unknown token."},
		{"agent", toks["agent-n0"], http.StatusForbidden, "role agent, which may not read the page"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := visit(t, b, "POST", base+"/ui/login", url.Values{"token": {c.token}}, nil)
			assert.Equal(t, c.status, resp.StatusCode)
			assert.Contains(t, body, c.says)
			assert.Empty(t, resp.Cookies(), "no cookie for a token that may not read")
		})
	}

	// From another site: refused, whatever the token.
	resp, _ = visit(t, b, "POST", base+"/ui/login", url.Values{"token": {toks["reader"]}}, map[string]string{"Origin": "https://evil.example"})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Empty(t, resp.Cookies())

	resp, _ = visit(t, b, "POST", base+"/ui/login", url.Values{"token": {toks["reader"]}}, map[string]string{"Origin": base})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/ui/", resp.Header.Get("Location"))
	require.Len(t, resp.Cookies(), 1)
	ck := resp.Cookies()[0]
	assert.Equal(t, uiCookie, ck.Name)
	assert.Equal(t, "/ui/", ck.Path)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	assert.Zero(t, ck.MaxAge, "a session cookie")
	assert.Contains(t, audit.String(), "sign in to the web page")
	assert.NotContains(t, audit.String(), toks["reader"], "no secret in the audit log")

	resp, body = visit(t, b, "GET", base+"/ui/", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Contains(t, body, "GPU map")
	assert.Contains(t, body, "signed in as reader")
	assert.Contains(t, body, `action="/ui/logout"`)

	// The cookie is the page's only: the API's routes do not take it.
	u, err := url.Parse(base)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(context.Background(), "GET", base+"/v1/jobs", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: uiCookie, Value: toks["admin"]})
	r2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r2.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, r2.StatusCode, "a cookie is no credential for %s", u.Host)

	resp, _ = visit(t, b, "POST", base+"/ui/logout", nil, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, body = visit(t, b, "GET", base+"/ui/", nil, nil)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "signed out")
	assert.Contains(t, body, "/ui/login")

	// A cookie whose token was revoked since: the form again, saying so.
	req, err = http.NewRequestWithContext(context.Background(), "GET", base+"/ui/", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	req.AddCookie(&http.Cookie{Name: uiCookie, Value: "ptk_revoked"})
	r3, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	rb, _ := io.ReadAll(r3.Body)
	r3.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, r3.StatusCode)
	assert.Contains(t, string(rb), "no longer works here")
}

// On an open server there is nothing to sign in to: the form's post goes
// straight back to the page, which shows no sign-out.
func TestWebSignInOpenServer(t *testing.T) {
	c := newCluster(t, 1, 1)
	ts := httptest.NewServer(NewHandler(c.ds[0].Server, nil))
	t.Cleanup(ts.Close)
	srv := ts.URL
	b := browser(t)
	resp, _ := visit(t, b, "POST", srv+"/ui/login", url.Values{"token": {"x"}}, nil)
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Empty(t, resp.Cookies())
	resp, body := visit(t, b, "GET", srv+"/ui/", nil, nil)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, body, "signed in as")
}

// A known path with another method: 401 to a caller without credentials
// (as any unknown path is: the default route matches every method), 404
// to one the server can name.
func TestWrongMethodNeedsCredentials(t *testing.T) {
	base, toks, _, _ := secured(t)
	for _, path := range []string{"/v1/jobs", "/v1/operator/snapshot", "/ui/", "/v1/no-such-path"} {
		st, body := call(t, base, "", "PUT", path, "")
		assert.Equal(t, http.StatusUnauthorized, st, "PUT %s: %s", path, body)
		st, body = call(t, base, toks["reader"], "PUT", path, "")
		assert.Equal(t, http.StatusNotFound, st, "PUT %s: %s", path, body)
	}
}
