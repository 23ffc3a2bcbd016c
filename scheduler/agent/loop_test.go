package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/api"
	"petite/scheduler/server"
)

// fakeServer answers an agent's calls with a fixed interval and the
// tasks given, and records the heartbeats.
type fakeServer struct {
	mu       sync.Mutex
	interval time.Duration
	tasks    []server.Assignment
	beats    []time.Time
	reports  [][]server.TaskReport
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter) {
		f.mu.Lock()
		defer f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(server.AgentAnswer{
			NodeState: "ready", Tasks: f.tasks, IntervalMS: f.interval.Milliseconds(),
			WindowMS: time.Hour.Milliseconds(), GraceMS: 1000,
		})
	}
	mux.HandleFunc("POST /v1/agents/register", func(w http.ResponseWriter, _ *http.Request) { answer(w) })
	mux.HandleFunc("POST /v1/agents/{node}/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		var hb server.Heartbeat
		_ = json.NewDecoder(r.Body).Decode(&hb)
		f.mu.Lock()
		f.beats = append(f.beats, time.Now())
		f.reports = append(f.reports, hb.Tasks)
		f.mu.Unlock()
		answer(w)
	})
	return mux
}

func (f *fakeServer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.beats)
}

// runAgent runs an agent of node n0 against fs, as petite runs it (the
// test binary supervises its tasks, see TestMain), with cfg's other
// settings; its data dir is new. It returns the agent, its data dir and
// when it started; the agent stops and its tasks are killed when the test
// ends.
func runAgent(t *testing.T, fs *fakeServer, cfg Config) (*Agent, string, time.Time) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	srv := httptest.NewServer(fs.handler())
	t.Cleanup(srv.Close)
	cl, err := api.NewClient(srv.URL)
	require.NoError(t, err)
	data := t.TempDir()
	t.Cleanup(func() { killTasks(data) })
	cfg.Servers, cfg.DataDir, cfg.Supervisor = []*api.Client{cl}, data, []string{exe, "supervise"}
	cfg.Registration = server.AgentRegistration{Node: scheduler.Node{Name: "n0"}}
	a, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, data, started
}

// TestHeartbeatInterval: the agent heartbeats at the interval the servers
// set, not more often; a task's end is reported at once all the same.
func TestHeartbeatInterval(t *testing.T) {
	fs := &fakeServer{interval: 3 * time.Second, tasks: []server.Assignment{
		{TaskKey: server.TaskKey{Job: "j"}, Command: []string{"sh", "-c", "sleep 0.3"}},
	}}
	runAgent(t, fs, Config{})

	// The task ends after 0.3 s: its end goes out at once, not at 3 s.
	require.Eventually(t, func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		for _, r := range fs.reports {
			if len(r) == 1 && r[0].State == server.TaskExited {
				return true
			}
		}
		return false
	}, 2*time.Second, 10*time.Millisecond, "the task's end reported at once")
	n := fs.count()
	time.Sleep(2500 * time.Millisecond)
	assert.LessOrEqual(t, fs.count()-n, 1, "at most one heartbeat in 2.5 s at a 3 s interval")
}

// TestCrashBackoff: a run that fails at once is reported after the crash
// backoff, not at once: a service whose command cannot start does not
// loop as fast as heartbeats go.
func TestCrashBackoff(t *testing.T) {
	fs := &fakeServer{interval: 100 * time.Millisecond, tasks: []server.Assignment{
		{TaskKey: server.TaskKey{Job: "crash"}, Command: []string{"sh", "-c", "exit 1"}},
	}}
	_, _, begin := runAgent(t, fs, Config{CrashBackoff: 800 * time.Millisecond})
	var reported time.Time
	require.Eventually(t, func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		for i, r := range fs.reports {
			if len(r) == 1 && r[0].State == server.TaskExited {
				assert.Equal(t, 1, r[0].ExitCode)
				reported = fs.beats[i]
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "the crash is reported")
	assert.GreaterOrEqual(t, reported.Sub(begin), 800*time.Millisecond, "held for the backoff")
}

// TestTaskDirStaysInside: a job ID is the servers' to choose, not a path:
// whatever it holds, a run's directory is one level under DATA/tasks, and
// distinct IDs get distinct directories.
func TestTaskDirStaysInside(t *testing.T) {
	data := t.TempDir()
	seen := map[string]string{}
	for _, id := range []string{"train-llm-1a2b3c", "../../evil", "..", ".", "a/b", "a%2Fb", "x-612f62", "", "ünï"} {
		dir := taskDir(data, server.TaskKey{Job: id, Task: 1, Gen: 2})
		rel, err := filepath.Rel(filepath.Join(data, "tasks"), dir)
		require.NoError(t, err)
		parts := strings.Split(rel, string(filepath.Separator))
		require.Len(t, parts, 2, "%q: %s", id, rel)
		assert.NotContains(t, []string{".", ".."}, parts[0], id)
		if other, ok := seen[parts[0]]; ok {
			t.Errorf("%q and %q share the directory %s", id, other, parts[0])
		}
		seen[parts[0]] = id
	}
	assert.Contains(t, seen, "train-llm-1a2b3c", "a plain ID is its own name")
}

// TestPrune: only runs the servers took long enough ago go, with their
// job's directory once empty.
func TestPrune(t *testing.T) {
	data := t.TempDir()
	now := time.Now()
	mk := func(job, run string, acked time.Duration) string {
		dir := filepath.Join(data, "tasks", job, run)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, fileStdout), []byte("log"), 0o644))
		if acked > 0 {
			p := filepath.Join(dir, fileAcked)
			require.NoError(t, os.WriteFile(p, nil, 0o644))
			require.NoError(t, os.Chtimes(p, now.Add(-acked), now.Add(-acked)))
		}
		return dir
	}
	old := mk("a", "0-0", 10*24*time.Hour)
	recent := mk("b", "0-0", time.Hour)
	unacked := mk("c", "0-0", 0)
	oldToo := mk("b", "1-0", 9*24*time.Hour)
	assert.Equal(t, 2, prune(data, 7*24*time.Hour, now))
	for dir, kept := range map[string]bool{old: false, recent: true, unacked: true, oldToo: false} {
		_, err := os.Stat(dir)
		assert.Equal(t, kept, err == nil, dir)
	}
	_, err := os.Stat(filepath.Join(data, "tasks", "a"))
	assert.True(t, os.IsNotExist(err), "an emptied job directory goes")
	_, err = os.Stat(filepath.Join(data, "tasks", "b"))
	assert.NoError(t, err, "a job directory with a run left stays")
}
