package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"petite/scheduler/server"
)

// BenchmarkGuard is the permission check's cost per request (the 404 route,
// served locally, so the rest of the request is small): open, and with a
// bearer token among 5 and among 1,000.
func BenchmarkGuard(b *testing.B) {
	pools, nodes := testFleet(1)
	cfg := server.Config{ID: "b", DataDir: b.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true, Pools: pools, Nodes: nodes, Fast: true}
	d, err := Start(cfg, "127.0.0.1:0", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := d.Ready(ctx); err != nil {
		b.Fatal(err)
	}
	ts5, toks := testTokens(b)
	var big strings.Builder
	big.WriteString("tokens:\n")
	var last string
	for i := range 1000 {
		tok, sum, err := NewToken()
		if err != nil {
			b.Fatal(err)
		}
		last = tok
		fmt.Fprintf(&big, "  - name: u%d\n    role: reader\n    sha256: %s\n", i, sum)
	}
	ts1000, err := ParseTokens([]byte(big.String()), "big")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		sec   *Security
		token string
	}{
		{"open", nil, ""},
		{"tokens=5", &Security{Tokens: ts5}, toks["reader"]},
		{"tokens=1000", &Security{Tokens: ts1000}, last},
	} {
		h := NewHandler(d.Server, nil, WithSecurity(tc.sec))
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/v1/nothing", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusNotFound {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
