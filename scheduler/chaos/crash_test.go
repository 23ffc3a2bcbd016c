package chaos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// submitN submits n named jobs through server i and returns their ids.
func (c *cluster) submitN(t *testing.T, i int, prefix string, n int) []string {
	t.Helper()
	cl := c.client(i)
	cl.Retry = 30 * time.Second
	var ids []string
	for k := range n {
		id := fmt.Sprintf("%s-%d", prefix, k)
		_, err := cl.SubmitKey(context.Background(), fmt.Appendf(nil, "id: %s\ntask: {gpus: 1, cpu_milli: 10, memory_mib: 10}\n", id), "r-"+id)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	return ids
}

// converged waits until every server serves the same state, and that
// state holds every id.
func (c *cluster) converged(t *testing.T, ids []string) {
	t.Helper()
	var last []string
	ok := assert.Eventually(t, func() bool {
		last = last[:0]
		var first []byte
		for i := range c.srvs {
			b, err := c.get(i, "/v1/snapshot?stale=true")
			if err != nil {
				last = append(last, err.Error())
				return false
			}
			last = append(last, fmt.Sprintf("%x", sha256.Sum256(b))[:12])
			if first == nil {
				first = b
			} else if !bytes.Equal(first, b) {
				return false
			}
		}
		for _, id := range ids {
			if !bytes.Contains(first, []byte(`"id":"`+id+`"`)) {
				last = append(last, "missing "+id)
				return false
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond)
	if !ok {
		for _, s := range c.srvs {
			t.Logf("server %s log:\n%s", s.id, tail(s.log, 15))
		}
		t.Fatalf("servers did not converge on every acknowledged job: %v", last)
	}
}

// One server alone, flooded with submits by eight clients, killed with
// SIGKILL at a random moment (mid-append, mid-fsync, mid-answer) three
// times: every submit it acknowledged is there when it starts again.
func TestCrashKillDuringAppend(t *testing.T) {
	c := newCluster(t, 1)
	rng := rand.New(rand.NewPCG(3, 3))
	var acked []string
	for round := range 3 {
		var mu sync.Mutex
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := c.client(0)
				cl.Retry = time.Millisecond
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					id := fmt.Sprintf("a%d-%d-%d", round, w, k)
					_, err := cl.SubmitKey(context.Background(), fmt.Appendf(nil, "id: %s\ntask: {cpu_milli: 1, memory_mib: 1}\n", id), id)
					if err != nil {
						return // the server died under it
					}
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		c.srvs[0].kill()
		close(stop)
		wg.Wait()
		t.Logf("round %d: %d submits acknowledged so far", round, len(acked))
		require.NoError(t, c.srvs[0].start())
		c.waitHealthy(60 * time.Second)
		c.converged(t, acked)
	}
	assert.Greater(t, len(acked), 20, "the flood ran")
}

// newestSegment returns the raft-wal segment file holding the newest
// entries of a data dir.
func newestSegment(t *testing.T, dataDir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dataDir, "wal", "*.wal"))
	require.NoError(t, err)
	require.NotEmpty(t, segs)
	sort.Strings(segs) // BASEINDEX-ID.wal, zero-padded
	return segs[len(segs)-1]
}

// cutLastRecord truncates a segment file a few bytes into its last record:
// segments are preallocated, so the written part ends at the last
// non-zero byte.
func cutLastRecord(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	require.Greater(t, end, 64, "a segment with records")
	require.NoError(t, os.Truncate(path, int64(end-5)))
}

// A server whose newest log record was torn (the segment file cut inside
// its last record, as a crash between write and fsync leaves it) starts,
// drops the torn record, and catches up from the leader: a follower and
// the leader itself, in turn.
func TestCrashTruncatedLastRecord(t *testing.T) {
	c := newCluster(t, 3)
	ids := c.submitN(t, 0, "t", 10)
	for _, who := range []string{"follower", "leader"} {
		l := c.leader()
		require.GreaterOrEqual(t, l, 0)
		i := l
		if who == "follower" {
			i = (l + 1) % 3
		}
		ids = append(ids, c.submitN(t, (i+1)%3, who, 5)...)
		c.srvs[i].kill()
		cutLastRecord(t, newestSegment(t, c.srvs[i].dataDir()))
		require.NoError(t, c.srvs[i].start())
		c.waitHealthy(60 * time.Second)
		ids = append(ids, c.submitN(t, i, who+"-after", 3)...)
		c.converged(t, ids)
	}
}

// A server started again on a copy of its data dir taken earlier (a
// restore from an older disk image: an older log and snapshot) catches up
// from the others and loses nothing the cluster committed.
func TestCrashOlderDataDir(t *testing.T) {
	c := newCluster(t, 3)
	ids := c.submitN(t, 0, "old", 10)
	c.converged(t, ids)
	i := (c.leader() + 1) % 3
	c.srvs[i].kill()
	saved := filepath.Join(t.TempDir(), "saved")
	require.NoError(t, exec.Command("cp", "-a", c.srvs[i].dataDir(), saved).Run())
	require.NoError(t, c.srvs[i].start())
	c.waitHealthy(60 * time.Second)
	ids = append(ids, c.submitN(t, i, "new", 10)...)
	c.converged(t, ids)
	c.srvs[i].kill()
	require.NoError(t, os.RemoveAll(c.srvs[i].dataDir()))
	require.NoError(t, exec.Command("cp", "-a", saved, c.srvs[i].dataDir()).Run())
	require.NoError(t, c.srvs[i].start())
	c.waitHealthy(60 * time.Second)
	c.converged(t, ids)
}

// canMount says whether this process may mount a tmpfs.
func canMount(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a full disk is a small tmpfs: needs root")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("no mount command")
	}
}

// A server's data dir on a tmpfs too small for its log: it refuses to
// start with one line, no panic. On one that fills while it runs (its log
// cannot rotate to a new segment), the other two go on committing; the
// full one never crashes with a trace, and with room again it catches up
// and loses nothing.
func TestCrashFullDisk(t *testing.T) {
	needBinary(t)
	canMount(t)
	// Too small to start.
	small := t.TempDir()
	require.NoError(t, exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", small).Run())
	defer exec.Command("umount", small).Run()
	out, err := exec.Command(bin, "server", "--id", "x", "--data-dir", small, "--raft-addr", "127.0.0.1:0",
		"--http", "127.0.0.1:0", "--bootstrap").CombinedOutput()
	require.Error(t, err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	assert.Len(t, lines, 1, "one clear line: %s", out)
	assert.Contains(t, string(out), "no space left on device")

	// Full while running: room for the first segment (64 MiB, preallocated)
	// and little else.
	var mnt string
	c := newClusterWith(t, 3, func(i int, dir string) {
		if i == 2 {
			mnt = dir
			require.NoError(t, exec.Command("mount", "-t", "tmpfs", "-o", "size=66m", "tmpfs", dir).Run())
			t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
		}
	})
	// Big jobs fill 64 MiB of log quickly: 4,000 words of 100 bytes each.
	word := strings.Repeat("w", 100)
	cmd := "[" + strings.TrimSuffix(strings.Repeat(word+",", 4000), ",") + "]"
	l := c.leader()
	if l == 2 {
		// The full server should be a follower: move the leadership away.
		c.srvs[2].kill()
		require.NoError(t, c.srvs[2].start())
		c.waitHealthy(60 * time.Second)
		l = c.leader()
	}
	cl := c.client(l)
	cl.Retry = 30 * time.Second
	var ids []string
	for k := range 200 {
		id := fmt.Sprintf("big-%d", k)
		_, err := cl.SubmitKey(context.Background(), fmt.Appendf(nil, "id: %s\ntask: {cpu_milli: 1, memory_mib: 1, command: %s}\n", id, cmd), id)
		require.NoError(t, err, "the two others commit on")
		ids = append(ids, id)
	}
	logText, _ := os.ReadFile(c.srvs[2].log)
	t.Logf("the full server (running: %v) says:\n%s", c.srvs[2].running(), tail(c.srvs[2].log, 5))
	assert.NotContains(t, string(logText), "goroutine ", "no panic trace")
	require.NoError(t, exec.Command("mount", "-o", "remount,size=512m", mnt).Run())
	// With room again it catches up as it runs (raft-wal refused every
	// append until a restart, before the log was opened again).
	require.True(t, c.srvs[2].running(), "the full server did not exit")
	c.waitHealthy(90 * time.Second)
	c.converged(t, ids)
}
