package api

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The web page on a server that takes tokens. A person opening /ui/ in a
// browser cannot send an Authorization header, so the page offers a sign-in
// form: the token it is given is checked and kept in a cookie that is sent
// back to /ui/ alone (Path=/ui/, HttpOnly, SameSite=Strict, Secure over
// TLS), and the middleware takes that cookie as the bearer token on
// GET /ui/ and nowhere else. The page is read-only, so a signed-in browser
// can be made to do nothing but read it. On a server with client
// certificates the browser presents its own; on an open server there is
// nothing to sign in to.

// uiCookie holds a reader's token for the web page.
const uiCookie = "petite_ui"

// viaCookie is how a caller signed in with the form is authenticated
// (Principal.Via).
const viaCookie = "page cookie"

// uiRoute is the one route the cookie counts for.
const uiRoute = "GET /ui/"

// loginCSP is the sign-in page's: its own form may post to this server.
const loginCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

var loginTemplate = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>petite · sign in</title>
<style>
body{margin:0;padding:48px 24px;background:#f4f5f7;color:#1d2330;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
form,.box{max-width:420px;background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:16px 20px}
h1{font-size:20px;margin:0 0 12px}
input[type=password]{width:100%;box-sizing:border-box;padding:6px 8px;margin:6px 0 12px;font:inherit}
.err{color:#b00020;margin:0 0 10px}
.sub{color:#5b6472}
</style>
</head>
<body>
{{if .Tokens}}<form method="post" action="/ui/login">
<h1>petite</h1>
{{if .Message}}<p class="err">{{.Message}}</p>{{end}}
<label for="token">API token (reader, submitter or admin)</label>
<input type="password" id="token" name="token" autocomplete="off" required autofocus>
<button type="submit">Sign in</button>
<p class="sub">The token is kept in a cookie for this page only, until the browser closes or you sign out. <code>petite token new</code> makes one.</p>
</form>{{else}}<div class="box">
<h1>petite</h1>
<p class="err">{{.Message}}</p>
</div>{{end}}
</body>
</html>
`))

// routeWebLogin registers the sign-in and sign-out posts of the page.
func (h *handler) routeWebLogin() {
	h.route("POST /ui/login", h.login, local)
	h.route("POST /ui/logout", func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r) {
			writeErr(w, forbidden("sign-out from another site"))
			return
		}
		http.SetCookie(w, &http.Cookie{Name: uiCookie, Path: "/ui/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
	}, local)
}

// login checks the token a person typed and, if it may read the page,
// keeps it in the page's cookie.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeErr(w, forbidden("sign-in from another site"))
		return
	}
	if h.sec.Open() || h.sec.Tokens == nil {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther) // nothing to sign in to
		return
	}
	if err := r.ParseForm(); err != nil {
		writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("sign-in form: %v", err)})
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	t, ok := h.sec.Tokens.Lookup(tok)
	switch {
	case tok == "" || !ok:
		h.loginPage(w, http.StatusUnauthorized, "Unknown token.")
		return
	case !slices.Contains(grants[t.Role], PermRead):
		h.loginPage(w, http.StatusForbidden, fmt.Sprintf("Token %s has role %s, which may not read the page.", t.Name, t.Role))
		return
	}
	if h.sec.Audit != nil {
		h.sec.Audit.Info("sign in to the web page", "who", t.Name, "role", string(t.Role), "remote", r.RemoteAddr)
	}
	// A session cookie: it ends with the browser.
	http.SetCookie(w, &http.Cookie{Name: uiCookie, Value: tok, Path: "/ui/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// loginPage answers with the sign-in page and a message.
func (h *handler) loginPage(w http.ResponseWriter, status int, msg string) {
	writeHTML(w, status, loginCSP, "sign-in page", loginTemplate, struct {
		Tokens  bool
		Message string
	}{h.sec != nil && h.sec.Tokens != nil, msg})
}

// withUICookie makes the page's cookie the request's bearer token when the
// request brings no Authorization header of its own; for GET /ui/ only.
func withUICookie(r *http.Request, pattern string) (*http.Request, bool) {
	if pattern != uiRoute || r.Header.Get("Authorization") != "" {
		return r, false
	}
	c, err := r.Cookie(uiCookie)
	if err != nil || c.Value == "" {
		return r, false
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+c.Value)
	return r, true
}

// wantsPage says whether a refused GET /ui/ should get the sign-in page
// rather than the API's JSON error: a browser asks for HTML.
func wantsPage(r *http.Request, pattern string) bool {
	return pattern == uiRoute && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// sameOrigin refuses a form posted from another site: a browser names the
// page it posts from in Origin (or, failing that, Referer).
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" || from == "null" {
		return from == "" // a client that is not a browser names no origin
	}
	u, err := url.Parse(from)
	return err == nil && u.Host == r.Host
}
