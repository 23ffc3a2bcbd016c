package api

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"petite/scheduler/pki"
)

// Role is what a caller may do. A token names one; a certificate implies
// one (an agent's, a server's; a client's is admin when no token file is
// configured).
type Role string

// The roles.
const (
	// RoleAdmin may do everything.
	RoleAdmin Role = "admin"
	// RoleSubmitter may read, and submit and cancel jobs of its tenants.
	RoleSubmitter Role = "submitter"
	// RoleReader may read.
	RoleReader Role = "reader"
	// RoleAgent may call the agent endpoints of its own node.
	RoleAgent Role = "agent"
	// RoleServer is another server of the cluster: it may read, and vouch
	// for the caller of a request it forwards.
	RoleServer Role = "server"
)

// TokenRoles are the roles a token file may grant.
var TokenRoles = []Role{RoleAdmin, RoleSubmitter, RoleReader, RoleAgent}

// Token is one entry of a token file: a name, a role, and the SHA-256 of
// the token (the token itself is never stored).
type Token struct {
	Name    string   `yaml:"name"`
	Role    Role     `yaml:"role"`
	Tenants []string `yaml:"tenants,omitempty"`
	Node    string   `yaml:"node,omitempty"`
	SHA256  string   `yaml:"sha256"`

	hash []byte
}

// Tokens are the tokens a server accepts. Reload replaces them while
// requests are served (a token revoked or added without a restart).
type Tokens struct {
	list atomic.Pointer[[]Token]
}

func newTokens(list []Token) *Tokens {
	ts := &Tokens{}
	ts.list.Store(&list)
	return ts
}

// Reload reads the token file again and, if it is valid, serves its tokens
// from the next request on; a file with an error changes nothing and the
// error says why (file, line, field).
func (ts *Tokens) Reload(path string) error {
	nt, err := LoadTokens(path)
	if err != nil {
		return err
	}
	ts.list.Store(nt.list.Load())
	return nil
}

type tokenFile struct {
	Tokens []Token `yaml:"tokens"`
}

// LoadTokens reads a token file:
//
//	tokens:
//	  - name: alice
//	    role: admin
//	    sha256: 64 hex digits (petite token new prints them)
//
// Decoding is strict; an error names the file, the line and the field.
func LoadTokens(path string) (*Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	return ParseTokens(b, path)
}

// ParseTokens decodes a token file's contents; name is the file named in
// errors.
func ParseTokens(b []byte, name string) (*Tokens, error) {
	var f tokenFile
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	lines := entryLines(&doc)
	line := func(i int) int {
		if i < len(lines) {
			return lines[i]
		}
		return 0
	}
	if len(f.Tokens) == 0 {
		return nil, fmt.Errorf("%s: tokens: no token (a file that grants nothing locks everyone out)", name)
	}
	names, hashes := map[string]bool{}, map[string]bool{}
	for i := range f.Tokens {
		t := &f.Tokens[i]
		where := fmt.Sprintf("%s:%d: tokens[%d]", name, line(i), i)
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("%s.%w", where, err)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("%s.name: %q repeated", where, t.Name)
		}
		if hashes[t.SHA256] {
			return nil, fmt.Errorf("%s.sha256: the same token as an earlier entry", where)
		}
		names[t.Name], hashes[t.SHA256] = true, true
	}
	return newTokens(f.Tokens), nil
}

// entryLines returns the line of each entry of the tokens list.
func entryLines(doc *yaml.Node) []int {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "tokens" {
			var out []int
			for _, e := range m.Content[i+1].Content {
				out = append(out, e.Line)
			}
			return out
		}
	}
	return nil
}

func (t *Token) check() error {
	if t.Name == "" {
		return errors.New("name: required (the audit log records it)")
	}
	if !slices.Contains(TokenRoles, t.Role) {
		return fmt.Errorf("role: %q: want admin, submitter, reader or agent", t.Role)
	}
	if (t.Role == RoleSubmitter) != (len(t.Tenants) > 0) {
		if t.Role == RoleSubmitter {
			return errors.New("tenants: a submitter needs the tenants it submits for")
		}
		return fmt.Errorf("tenants: only a submitter has tenants, not a %s", t.Role)
	}
	if (t.Role == RoleAgent) != (t.Node != "") {
		if t.Role == RoleAgent {
			return errors.New("node: an agent's token names its node")
		}
		return fmt.Errorf("node: only an agent names a node, not a %s", t.Role)
	}
	h, err := hex.DecodeString(t.SHA256)
	if err != nil || len(h) != sha256.Size {
		return errors.New("sha256: want the 64 hex digits of the token's SHA-256 (petite token new prints them)")
	}
	t.hash = h
	return nil
}

// Lookup finds the token's entry. It hashes the token and compares the
// hash with every entry in constant time, so neither the time taken nor an
// early exit says how much of a guess matched.
func (ts *Tokens) Lookup(token string) (Token, bool) {
	sum := sha256.Sum256([]byte(token))
	list := *ts.list.Load()
	found := -1
	for i := range list {
		if subtle.ConstantTimeCompare(sum[:], list[i].hash) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return list[found], true
}

// Len is the number of tokens.
func (ts *Tokens) Len() int { return len(*ts.list.Load()) }

// tokenPrefix marks petite's tokens, so a secret scanner can find one
// pasted where it should not be.
const tokenPrefix = "ptk_"

// NewToken returns a fresh random token (256 bits) and its SHA-256 in hex,
// the form a token file stores.
func NewToken() (token, sha string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("token: %w", err)
	}
	token = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken is the SHA-256 of a token in hex.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// certRole maps a certificate's role to the API role it gets when no
// token says otherwise.
func certRole(id pki.Identity, tokens bool) (Role, bool) {
	switch id.Role {
	case pki.RoleAgent:
		return RoleAgent, true
	case pki.RoleServer:
		return RoleServer, true
	case pki.RoleClient:
		// With a token file, a client certificate opens the connection and
		// the token says who the caller is; without one, the CA's client
		// certificates are the cluster's administrators.
		return RoleAdmin, !tokens
	}
	return "", false
}

// bearer reads an Authorization: Bearer header; ok is false when the
// header is there but is not a bearer token.
func bearer(h string) (token string, ok bool) {
	if h == "" {
		return "", true
	}
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
