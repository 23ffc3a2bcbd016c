package api

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var updateSecurityDoc = flag.Bool("update-security-doc", false, "rewrite the endpoint x role table in docs/security.md from api.Rules")

const (
	tableBegin = "<!-- begin: endpoint x role table, generated from api.Rules by TestSecurityDocInSync (-update-security-doc) -->\n"
	tableEnd   = "<!-- end: endpoint x role table -->\n"
)

// permissionTable renders api.Rules as who may call each route.
func permissionTable() string {
	roles := []Role{RoleAdmin, RoleSubmitter, RoleReader, RoleAgent, RoleServer}
	var b strings.Builder
	b.WriteString("| route | needs | admin | submitter | reader | agent | server | no credentials |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range Rules {
		route := r.Pattern
		if route == "/" {
			route = "any other path (404)"
		}
		fmt.Fprintf(&b, "| `%s` | %s |", route, r.Perm)
		for _, role := range roles {
			cell := "403"
			switch {
			case r.Perm == PermOpen:
				cell = "yes"
			case !slices.Contains(grants[role], r.Perm):
			case r.Perm == PermSubmit && role == RoleSubmitter:
				cell = "own tenants"
			case r.Perm == PermAgent && role == RoleAgent:
				cell = "own node"
			default:
				cell = "yes"
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		if r.Perm == PermOpen {
			b.WriteString(" yes |\n")
		} else {
			b.WriteString(" 401 |\n")
		}
	}
	return b.String()
}

// docs/security.md shows the code's permission table; a route added or a
// permission changed without the page following fails here.
func TestSecurityDocInSync(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "security.md")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	doc := string(b)
	i := strings.Index(doc, tableBegin)
	j := strings.Index(doc, tableEnd)
	require.True(t, i >= 0 && j > i, "%s: the table's markers are missing", path)
	want := permissionTable()
	got := doc[i+len(tableBegin) : j]
	if *updateSecurityDoc {
		require.NoError(t, os.WriteFile(path, []byte(doc[:i+len(tableBegin)]+want+doc[j:]), 0o644))
		return
	}
	require.Equal(t, want, got, "docs/security.md's endpoint x role table differs from api.Rules: go test ./scheduler/api -run TestSecurityDocInSync -update-security-doc")
}
