package api

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseTokens: any token file is refused with an error naming the file,
// or every entry it accepts has a known role, a name, and a hash that
// Lookup matches with no other token.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("tokens:\n  - name: alice\n    role: admin\n    sha256: " + HashToken("s3cret") + "\n"))
	f.Add([]byte("tokens:\n  - name: ci\n    role: submitter\n    tenants: [research]\n    sha256: " + HashToken("x") + "\n"))
	f.Add([]byte("tokens:\n  - name: n1\n    role: agent\n    node: gpu-01\n    sha256: 00\n"))
	f.Add([]byte("tokens: []\n"))
	f.Add([]byte("tokens:\n  - {name: a, role: root, sha256: zz}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := ParseTokens(b, "tokens.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "tokens.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, tok := range *ts.list.Load() {
			if tok.Name == "" || !slices.Contains(TokenRoles, tok.Role) || len(tok.SHA256) != 64 {
				t.Fatalf("accepted %+v", tok)
			}
		}
		if _, ok := ts.Lookup("not a token of the file " + string(b)); ok && ts.Len() > 0 {
			for _, tok := range *ts.list.Load() {
				if tok.SHA256 == HashToken("not a token of the file "+string(b)) {
					return // the fuzzer found the hash of its own input: fine
				}
			}
			t.Fatal("Lookup matched a token no entry hashes to")
		}
	})
}
