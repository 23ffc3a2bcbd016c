package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
	"petite/scheduler/server"
)

// syncBuffer is a buffer a running server writes while the test reads.
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

var readyLine = regexp.MustCompile(`API ready at (https?://127\.0\.0\.1:\d+)\n`)

// devServer runs `petite ARGS` (a server) until the test ends and returns
// the API address it printed when ready.
func devServer(t *testing.T, args ...string) string {
	t.Helper()
	return startServer(t, args...)()
}

// startServer starts `petite ARGS` (a server) until the test ends and
// returns a function that waits for the API address it prints when ready.
func startServer(t *testing.T, args ...string) func() string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		assert.Equal(t, exitOK, <-done, "server exit; stderr: %s", errb.String())
	})
	return func() string {
		t.Helper()
		var addr string
		require.Eventually(t, func() bool {
			m := readyLine.FindStringSubmatch(out.String())
			if m != nil {
				addr = m[1]
			}
			return m != nil
		}, 10*time.Second, 5*time.Millisecond, "no ready line; stdout %q stderr %q", out.String(), errb.String())
		return addr
	}
}

// The examples of the commands that talk to a server run, as typed,
// against `petite server --dev`: jobs are run first (the others name them),
// stopped last. add-peer and remove-peer need a second server:
// TestOperatorRaftPeers runs them.
func TestServerExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dev servers")
	}
	inShippedTree(t) // examples/ included
	var serverLines, lines []string
	walk(newRootCommand(nil, io.Discard, io.Discard), func(c *cobra.Command) {
		if !talksToServer(c) {
			return
		}
		for _, l := range exampleCommands(c.Example) {
			switch {
			case strings.HasPrefix(l, "petite server"):
				serverLines = append(serverLines, l)
			case strings.Contains(l, "add-peer"), strings.Contains(l, "remove-peer"):
			default:
				lines = append(lines, l)
			}
		}
	})
	rank := func(l string) int {
		switch {
		case strings.HasPrefix(l, "petite job run"):
			return 0
		case strings.HasPrefix(l, "petite job stop"), strings.HasPrefix(l, "petite job finish"),
			strings.Contains(l, "snapshot restore"): // after the save
			return 2
		}
		return 1
	}
	sortStable(lines, rank)
	require.NotEmpty(t, serverLines)
	for i, l := range serverLines {
		words, _ := shellWords(t, l)
		addr := devServer(t, append(words[1:], "--http", "127.0.0.1:0")...)
		if i > 0 {
			continue // the other servers start; the first serves the examples
		}
		t.Setenv("PETITE_ADDR", addr)
	}
	for _, l := range lines {
		t.Run(l, func(t *testing.T) { runLine(t, l) })
	}
}

func sortStable(lines []string, rank func(string) int) {
	for i := 1; i < len(lines); i++ {
		for j := i; j > 0 && rank(lines[j]) < rank(lines[j-1]); j-- {
			lines[j], lines[j-1] = lines[j-1], lines[j]
		}
	}
}

// `job status --json` lists jobs with id and status; with an ID it gives
// one job; errors exit 1 and usage errors 2.
func TestJobCommands(t *testing.T) {
	repo := inShippedTree(t)
	t.Setenv("PETITE_ADDR", devServer(t, "server", "--dev", "--http", "127.0.0.1:0", "--policy", "best-fit"))
	code, out, errOut := petite(t, nil, "job", "run", filepath.Join(repo, "examples/train.yaml"), "--json")
	require.Equal(t, exitOK, code, errOut)
	var j api.Job
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	assert.Equal(t, api.StatusRunning, j.Status)
	assert.Len(t, j.Tasks, 2)

	code, out, errOut = petite(t, strings.NewReader("id: wait\ncount: 300\ntask: {gpus: 8, models: [H100]}\n"), "job", "run", "-", "--wait", "1s")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "job wait: queued")
	assert.Contains(t, out, "pending: does not fit the fleet even when empty")
	assert.Contains(t, out, "GPU model not accepted")

	code, out, _ = petite(t, nil, "job", "status", "--json")
	require.Equal(t, exitOK, code)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list, 2)
	statuses := map[string]any{}
	for _, j := range list {
		statuses[j["id"].(string)] = j["status"]
	}
	assert.Equal(t, map[string]any{j.ID: "running", "wait": "queued"}, statuses)

	code, out, _ = petite(t, nil, "job", "status", "wait", "--json")
	require.Equal(t, exitOK, code)
	var one map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &one))
	assert.Equal(t, "queued", one["status"])
	assert.NotEmpty(t, one["pending"])

	code, out, _ = petite(t, nil, "job", "stop", "wai")
	require.Equal(t, exitOK, code, "a prefix names the job")
	assert.Equal(t, "job wait: cancelled\n", out)

	for _, tc := range []struct {
		args []string
		in   string
		code int
		want string
	}{
		{[]string{"job", "status", "nosuch"}, "", exitError, `no job "nosuch"`},
		{[]string{"job", "run", "-"}, "id: x\ntask:\n  gpus: 1\n  vram: 2\n", exitError, "stdin:4: task.vram: unknown field"},
		{[]string{"job", "run"}, "", exitUsage, "run takes one FILE"},
		{[]string{"job", "status", "a", "b"}, "", exitUsage, "at most one job ID"},
		{[]string{"node", "drain", "nosuch"}, "", exitError, `no node "nosuch"`},
		{[]string{"job", "status", "--address", "127.0.0.1:1"}, "", exitError, "is a server running at http://127.0.0.1:1"},
		{[]string{"operator", "raft", "add-peer"}, "", exitUsage, "needs --id and --address"},
		{[]string{"server", "--dev", "--http", "0.0.0.0:0"}, "", exitUsage, "loopback only"},
		{[]string{"server"}, "", exitUsage, "--data-dir is required"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := petite(t, strings.NewReader(tc.in), tc.args...)
			assert.Equal(t, tc.code, code, errOut)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tc.want)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
		})
	}
}

// add-peer and remove-peer change the raft configuration of a running
// cluster: a second server joins the dev server's cluster and leaves it.
func TestOperatorRaftPeers(t *testing.T) {
	inShippedTree(t)
	t.Setenv("PETITE_ADDR", devServer(t, "server", "--dev", "--http", "127.0.0.1:0"))
	d, err := api.Start(server.Config{ID: "s2", DataDir: t.TempDir(), RaftAddr: "127.0.0.1:0", Fast: true}, "127.0.0.1:0", nil)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })

	code, out, errOut := petite(t, nil, "operator", "raft", "add-peer", "--id", "s2", "--address", d.Server.RaftAddr())
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "s2 ")
	code, out, _ = petite(t, nil, "operator", "raft", "list-peers", "--json")
	require.Equal(t, exitOK, code)
	var peers []api.Peer
	require.NoError(t, json.Unmarshal([]byte(out), &peers))
	require.Len(t, peers, 2)
	assert.Equal(t, "dev", peers[0].ID)
	assert.True(t, peers[0].Leader)

	code, out, errOut = petite(t, nil, "operator", "raft", "remove-peer", "s2")
	require.Equal(t, exitOK, code, errOut)
	assert.NotContains(t, out, "s2 ")
	code, _, errOut = petite(t, nil, "operator", "raft", "remove-peer", "s2")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, `no peer "s2"`)
}

// Three `petite server` processes' worth of commands, bootstrapped with the
// same peers, form a cluster: each prints its API address once a leader is
// known, and a job submitted to one is seen by all.
func TestServerCluster(t *testing.T) {
	inShippedTree(t)
	var raft [3]string
	for i := range raft {
		raft[i] = freeLoopback(t)
	}
	peers := []string{}
	for i, a := range raft {
		peers = append(peers, "--peer", fmt.Sprintf("s%d=%s", i, a))
	}
	var waits []func() string
	for i := range raft {
		args := append([]string{"server", "--id", fmt.Sprintf("s%d", i), "--data-dir", t.TempDir(), "--raft-addr", raft[i],
			"--http", "127.0.0.1:0", "--bootstrap", "--policy", "best-fit"}, peers...)
		waits = append(waits, startServer(t, args...))
	}
	var addrs []string
	for _, w := range waits {
		addrs = append(addrs, w())
	}
	t.Setenv("PETITE_ADDR", addrs[1])
	code, _, errOut := petite(t, strings.NewReader("id: c1\ntask: {gpus: 8, models: [H100]}\n"), "job", "run", "-")
	require.Equal(t, exitOK, code, errOut)
	for _, a := range addrs {
		code, out, errOut := petite(t, nil, "job", "status", "c1", "--address", a, "--json")
		require.Equal(t, exitOK, code, errOut)
		assert.Contains(t, out, `"status": "running"`)
	}
	code, out, _ := petite(t, nil, "operator", "raft", "list-peers", "--json")
	require.Equal(t, exitOK, code)
	var ps []api.Peer
	require.NoError(t, json.Unmarshal([]byte(out), &ps))
	assert.Len(t, ps, 3)
}

// freeLoopback returns a loopback address free now and not handed out before
// by this test binary: the kernel may hand a port just closed out again,
// and two servers of one cluster given the same address refuse to
// bootstrap ("found duplicate address").
func freeLoopback(t *testing.T) string {
	t.Helper()
	givenMu.Lock()
	defer givenMu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		if !given[addr] {
			given[addr] = true
			return addr
		}
	}
}

var (
	givenMu sync.Mutex
	given   = map[string]bool{}
)
