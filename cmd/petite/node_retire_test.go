package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
)

// `node retire` sets a node's own date, `node status` shows it (table and
// JSON), --cancel withdraws it; bad input exits 1 naming the field, usage
// errors exit 2, each with one line.
func TestNodeRetireCommand(t *testing.T) {
	inShippedTree(t)
	t.Setenv("PETITE_ADDR", devServer(t, "server", "--dev", "--http", "127.0.0.1:0"))
	const node = "sh-h100-0001"
	date := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)

	code, out, errOut := petite(t, nil, "node", "retire", node, "--at", date)
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, "node "+node+": ready, retires "+date+"\n", out)

	code, out, _ = petite(t, nil, "node", "status", node, "--json")
	require.Equal(t, exitOK, code)
	var n api.Node
	require.NoError(t, json.Unmarshal([]byte(out), &n))
	assert.Equal(t, date, n.RetireAt)

	code, out, _ = petite(t, nil, "node", "status")
	require.Equal(t, exitOK, code)
	lines := strings.Split(out, "\n")
	assert.True(t, strings.HasSuffix(strings.TrimSpace(lines[0]), "RETIRE AT"), lines[0])
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, node+" ") {
			assert.True(t, strings.HasSuffix(strings.TrimSpace(l), date), l)
		}
	}

	code, out, errOut = petite(t, nil, "node", "retire", node, "--cancel", "--json")
	require.Equal(t, exitOK, code, errOut)
	n = api.Node{}
	require.NoError(t, json.Unmarshal([]byte(out), &n))
	assert.Equal(t, "ready", n.State)
	assert.Empty(t, n.RetireAt)

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"node", "retire", node}, exitUsage, "--at RFC3339|now or --cancel"},
		{[]string{"node", "retire", node, "--at", "now", "--cancel"}, exitUsage, "one of the two"},
		{[]string{"node", "retire", "--at", "now"}, exitUsage, "retire takes one node NAME"},
		{[]string{"node", "retire", node, "--at", "tomorrow"}, exitError, `at: "tomorrow" is not an RFC 3339 date`},
		{[]string{"node", "retire", node, "--at", "2001-01-01T00:00:00Z"}, exitError, "at: 2001-01-01T00:00:00Z is in the past"},
		{[]string{"node", "retire", "nosuch", "--at", "now"}, exitError, `no node "nosuch"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := petite(t, nil, tc.args...)
			assert.Equal(t, tc.code, code, errOut)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tc.want)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
		})
	}
	code, out, _ = petite(t, nil, "node", "status", node, "--json")
	require.Equal(t, exitOK, code)
	n = api.Node{}
	require.NoError(t, json.Unmarshal([]byte(out), &n))
	assert.Equal(t, "ready", n.State, "nothing the refusals asked for happened")
	assert.Empty(t, n.RetireAt)
}
