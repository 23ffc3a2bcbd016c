package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
)

// proc is one `petite server` process.
type proc struct {
	cmd  *exec.Cmd
	args []string
	url  string
}

// startProc starts the petite binary with args and waits for its ready
// line.
func startProc(t *testing.T, bin string, args []string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, args: args}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_ = p.cmd.Wait()
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := readyLine.FindStringSubmatch(sc.Text() + "\n"); m != nil {
				ready <- m[1]
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case p.url = <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("petite %s: no ready line; stderr: %s", strings.Join(args, " "), errb.String())
	}
	return p
}

// Three server processes; the leader is killed with SIGKILL (no clean
// shutdown): a new leader is elected, no acknowledged job is lost, and the
// killed server, started again on its data dir, catches up to the same
// state as the others.
func TestServerKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds petite and runs three server processes")
	}
	bin := filepath.Join(t.TempDir(), "petite")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	var raftAddrs [3]string
	peers := []string{}
	for i := range raftAddrs {
		raftAddrs[i] = freeLoopback(t)
		peers = append(peers, "--peer", fmt.Sprintf("s%d=%s", i, raftAddrs[i]))
	}
	procs := make([]*proc, 3)
	started := make(chan int, 3)
	for i := range procs {
		args := append([]string{"server", "--id", fmt.Sprintf("s%d", i), "--data-dir", t.TempDir(),
			"--raft-addr", raftAddrs[i], "--http", freeLoopback(t), "--bootstrap", "--policy", "best-fit"}, peers...)
		go func() { procs[i] = startProc(t, bin, args); started <- i }()
	}
	for range procs {
		<-started
	}
	ctx := context.Background()
	client := func(i int) *api.Client {
		c, err := api.NewClient(procs[i].url)
		require.NoError(t, err)
		return c
	}
	leader := func(via int) int {
		ps, err := client(via).Peers(ctx)
		require.NoError(t, err)
		for _, p := range ps {
			if p.Leader {
				var i int
				_, err := fmt.Sscanf(p.ID, "s%d", &i)
				require.NoError(t, err)
				return i
			}
		}
		t.Fatal("no leader")
		return -1
	}
	old := leader(0)
	var acked []string
	for i := range 5 {
		res, err := client((old+1)%3).Submit(ctx, fmt.Appendf(nil, "id: k%d\ntask: {gpus: 8, models: [H100], command: [sleep, '60']}\n", i))
		require.NoError(t, err)
		acked = append(acked, res.ID)
	}
	require.NoError(t, procs[old].cmd.Process.Kill())
	_ = procs[old].cmd.Wait()

	survivor := (old + 1) % 3
	for _, id := range acked {
		j, err := client(survivor).Job(ctx, id, false) // retries through the election
		require.NoError(t, err, "acknowledged job %s lost", id)
		assert.NotEqual(t, api.StatusFailed, j.Status)
	}
	require.NotEqual(t, old, leader(survivor))

	procs[old] = startProc(t, bin, procs[old].args)
	snap := func(i int) string {
		var b bytes.Buffer
		c := client(i)
		resp, err := c.HTTPClient().Get(c.Base + "/v1/snapshot?stale=true")
		require.NoError(t, err)
		defer resp.Body.Close()
		_, err = io.Copy(&b, resp.Body)
		require.NoError(t, err)
		return b.String()
	}
	require.Eventually(t, func() bool {
		a := snap(old)
		return a == snap((old+1)%3) && a == snap((old+2)%3)
	}, 10*time.Second, 20*time.Millisecond, "the restarted server did not catch up")
	for _, id := range acked {
		assert.Contains(t, snap(old), `"id":"`+id+`"`)
	}
}
