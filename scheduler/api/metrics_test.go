package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/scheduler/metrics"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// scrapeText fetches a server's /metrics in the text format.
func scrapeText(t *testing.T, base string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	return body
}

func parseFamilies(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	require.NoError(t, err)
	return fams
}

// sample finds the value of a series by its labels (name=value pairs);
// ok is false when there is no such series.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// must is sample that fails the test for a missing series.
func must(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	v, ok := sample(fams, name, labels...)
	require.True(t, ok, "no series %s%v", name, labels)
	return v
}

// Jobs submitted through a real server: the scrape lints clean, counts
// the tasks its leader placed, and its gauges agree with the state the
// API reports (GPUs allocated and free, the queue, node states) and with
// the core's own fragmentation measure of that state.
func TestMetricsFollowTheState(t *testing.T) {
	c := newCluster(t, 1, 4) // 4 nodes of 8 H100
	cl := c.client(0)
	ctx := context.Background()
	for _, s := range [][]byte{
		spec("gang", 2, 8), // two whole nodes
		spec("half", 1, 4), // half of a third
		[]byte("id: share\ntenant: vision\ncount: 3\ntask:\n  gpus: 1\n  gpu_milli: 500\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [x]\n"),
	} {
		_, err := cl.Submit(ctx, s)
		require.NoError(t, err)
	}
	waitStatus(t, cl, "gang", StatusRunning)
	waitStatus(t, cl, "half", StatusRunning)
	waitStatus(t, cl, "share", StatusRunning)
	// Two whole nodes more, once the others run (submitted with them, it
	// might go first): one is left, so it waits.
	_, err := cl.Submit(ctx, spec("big", 2, 8))
	require.NoError(t, err)
	_, err = cl.SetNodeState(ctx, "n3", "draining")
	require.NoError(t, err)

	// The leader counts a plan just after it committed: wait for that.
	var fams map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		fams = parseFamilies(t, scrapeText(t, c.ds[0].URL))
		v, _ := sample(fams, "petite_placements_total")
		return v >= 6
	}, waitFor, 5*time.Millisecond, "petite_placements_total never reached the 6 tasks placed")
	problems, err := testutil.GatherAndLint(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, f := range fams {
			out = append(out, f)
		}
		return out, nil
	}))
	require.NoError(t, err)
	assert.Empty(t, problems)

	// The leader's work: 2 + 1 + 3 tasks placed, nothing preempted.
	assert.Equal(t, 6.0, must(t, fams, "petite_placements_total"))
	assert.Equal(t, 0.0, must(t, fams, "petite_preemptions_total"))
	assert.GreaterOrEqual(t, must(t, fams, "petite_plans_total", "result", "committed"), 1.0)
	assert.GreaterOrEqual(t, must(t, fams, "petite_scheduling_pass_duration_seconds"), 1.0)
	assert.GreaterOrEqual(t, must(t, fams, "petite_plan_commit_duration_seconds"), 1.0)

	// The queue, by tenant: big waits for 16 GPUs.
	assert.Equal(t, 1.0, must(t, fams, "petite_queued_jobs", "tenant", ""))
	assert.Equal(t, 16.0, must(t, fams, "petite_pending_gpus", "tenant", ""))
	assert.Equal(t, 2.0, must(t, fams, "petite_running_jobs", "tenant", ""))
	assert.Equal(t, 20.0, must(t, fams, "petite_running_gpus", "tenant", ""))
	assert.Equal(t, 1.5, must(t, fams, "petite_running_gpus", "tenant", "vision"))

	// GPUs as the API reports the nodes.
	nodes, err := cl.Nodes(ctx, "")
	require.NoError(t, err)
	var capMilli, usedMilli, freeReady int64
	for _, n := range nodes {
		capMilli += n.GPUMilliCap
		usedMilli += n.GPUMilliCap - n.GPUMilliFree
		if n.State == "ready" {
			freeReady += n.GPUMilliFree
		}
	}
	assert.Equal(t, float64(capMilli)/1000, must(t, fams, "petite_gpus_capacity", "pool", "lab", "model", "H100"))
	assert.Equal(t, 21.5, must(t, fams, "petite_gpus_allocated", "pool", "lab", "model", "H100"))
	assert.Equal(t, float64(usedMilli)/1000, must(t, fams, "petite_gpus_allocated", "pool", "lab", "model", "H100"))
	assert.Equal(t, float64(freeReady)/1000, must(t, fams, "petite_gpus_free", "pool", "lab", "model", "H100"))
	assert.Less(t, must(t, fams, "petite_gpus_free", "pool", "lab", "model", "H100"), float64(capMilli-usedMilli)/1000,
		"the draining node's free GPUs are not offered")
	assert.Equal(t, 3.0, must(t, fams, "petite_nodes", "pool", "lab", "state", "ready"))
	assert.Equal(t, 1.0, must(t, fams, "petite_nodes", "pool", "lab", "state", "draining"))
	assert.Equal(t, 0.0, must(t, fams, "petite_nodes", "pool", "lab", "state", "down"))
	assert.Len(t, fams["petite_gpu_info"].GetMetric(), 32)
	assert.Equal(t, 1.0, must(t, fams, "petite_gpu_info", "node", "n2", "index", "7", "model", "H100", "pool", "lab"))

	// Stranded capacity: the core's measure of the ready nodes, summed.
	var want float64
	c.ds[0].Server.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
		v := m.Cluster()
		var f scheduler.FGD
		for i := range v.NumNodes() {
			if v.Node(scheduler.NodeID(i)).State == scheduler.NodeReady {
				want += v.Frag(&f, scheduler.NodeID(i)) / 1000
			}
		}
	})
	assert.Greater(t, want, 0.0, "the test's state strands nothing: it checks too little")
	assert.InDelta(t, want, must(t, fams, "petite_stranded_gpus", "pool", "lab"), 1e-9)

	// Raft as the server sees it.
	assert.Equal(t, 1.0, must(t, fams, "petite_raft_state", "state", "leader"))
	assert.Equal(t, 0.0, must(t, fams, "petite_raft_state", "state", "follower"))
	assert.GreaterOrEqual(t, must(t, fams, "petite_raft_term"), 1.0)
	commit := must(t, fams, "petite_raft_commit_index")
	assert.Greater(t, commit, 0.0)
	assert.LessOrEqual(t, must(t, fams, "petite_raft_applied_index"), commit)
	assert.Equal(t, 0.0, must(t, fams, "petite_raft_last_contact_seconds"))
}

// A job of higher priority evicts a preemptible gang: the leader counts
// the gang's tasks as preempted, and the placements of both.
func TestMetricsCountPreemptions(t *testing.T) {
	c := newCluster(t, 1, 2)
	cl := c.client(0)
	ctx := context.Background()
	_, err := cl.Submit(ctx, []byte("id: low\npreemptible: true\ncount: 2\ntask:\n  gpus: 8\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [x]\n"))
	require.NoError(t, err)
	waitStatus(t, cl, "low", StatusRunning)
	_, err = cl.Submit(ctx, []byte("id: high\npriority: 10\ncount: 1\ntask:\n  gpus: 8\n  cpu_milli: 1000\n  memory_mib: 1024\n  command: [x]\n"))
	require.NoError(t, err)
	waitStatus(t, cl, "high", StatusRunning)
	waitStatus(t, cl, "low", StatusQueued) // the gang waits for two whole nodes again
	var fams map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		fams = parseFamilies(t, scrapeText(t, c.ds[0].URL))
		v, _ := sample(fams, "petite_placements_total")
		return v >= 3
	}, waitFor, 5*time.Millisecond, "petite_placements_total never reached the 3 tasks placed")
	assert.Equal(t, 3.0, must(t, fams, "petite_placements_total"))
	assert.Equal(t, 2.0, must(t, fams, "petite_preemptions_total"))
	assert.Equal(t, 1.0, must(t, fams, "petite_queued_jobs", "tenant", ""))
	assert.Equal(t, 16.0, must(t, fams, "petite_pending_gpus", "tenant", ""))
}

// petite_gpu_info carries the device UUIDs an agent registered, so that
// dashboards can join DCGM's series; before that the label is empty.
func TestMetricsGPUInfoUUID(t *testing.T) {
	c := newCluster(t, 1, 2)
	fams := parseFamilies(t, scrapeText(t, c.ds[0].URL))
	assert.Equal(t, 1.0, must(t, fams, "petite_gpu_info", "node", "n1", "index", "3", "uuid", ""))
	_, nodes := testFleet(2)
	uuids := make([]string, len(nodes[1].GPUs))
	for g := range uuids {
		uuids[g] = fmt.Sprintf("GPU-test-n1-%d", g)
	}
	_, err := c.ds[0].Server.RegisterAgent(context.Background(), server.AgentRegistration{Node: nodes[1], Devices: uuids})
	require.NoError(t, err)
	fams = parseFamilies(t, scrapeText(t, c.ds[0].URL))
	assert.Equal(t, 1.0, must(t, fams, "petite_gpu_info", "node", "n1", "index", "3", "model", "H100", "uuid", "GPU-test-n1-3"))
	assert.Equal(t, 1.0, must(t, fams, "petite_gpu_info", "node", "n0", "index", "3", "uuid", ""))
	assert.Len(t, fams["petite_gpu_info"].GetMetric(), 16)
}

// Each server serves its own /metrics (never forwarded): one says it
// leads, the others follow and heard from it lately; the placements are
// counted once, by the server that led when it placed them; every server
// reports the same GPUs. An election on a loaded machine may move the
// leader: the servers are scraped until they agree on one.
func TestMetricsPerServer(t *testing.T) {
	c := newCluster(t, 3, 2)
	cl := c.client(c.follower())
	_, err := cl.Submit(context.Background(), spec("gang", 2, 4))
	require.NoError(t, err)
	waitStatus(t, cl, "gang", StatusRunning)
	c.converged()
	var all []map[string]*dto.MetricFamily
	var leaders, placed float64
	require.Eventually(t, func() bool {
		all, leaders, placed = nil, 0, 0
		for i := range c.ds {
			fams := parseFamilies(t, scrapeText(t, c.ds[i].URL))
			all = append(all, fams)
			v, _ := sample(fams, "petite_raft_state", "state", "leader")
			leaders += v
			v, _ = sample(fams, "petite_placements_total")
			placed += v
		}
		return leaders == 1 && placed >= 2
	}, waitFor, 10*time.Millisecond, "the servers never agreed on one leader with the placements counted (leaders %v, placed %v)", leaders, placed)
	assert.Equal(t, 2.0, placed, "placements counted once over the servers")
	for i, fams := range all {
		assert.Equal(t, 8.0, must(t, fams, "petite_gpus_allocated", "pool", "lab", "model", "H100"), "server %d", i)
		assert.Equal(t, 2.0, must(t, fams, "petite_raft_peers"), "server %d", i)
		if must(t, fams, "petite_raft_state", "state", "leader") == 0 {
			assert.Equal(t, 1.0, must(t, fams, "petite_raft_state", "state", "follower"), "server %d", i)
			assert.Less(t, must(t, fams, "petite_raft_last_contact_seconds"), 30.0, "server %d", i)
		}
	}
}

// promtool, Prometheus's own checker, finds nothing wrong with a real
// scrape (Debian package prometheus; skipped where it is not installed).
func TestMetricsPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus): the scrape is not checked by it here")
	}
	c := newCluster(t, 1, 2)
	cl := c.client(0)
	_, err = cl.Submit(context.Background(), spec("gang", 1, 4))
	require.NoError(t, err)
	waitStatus(t, cl, "gang", StatusRunning)
	text := scrapeText(t, c.ds[0].URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
	// Our own families are all there (promtool checks only what it sees).
	fams := parseFamilies(t, text)
	var ours []string
	for name := range fams {
		if strings.HasPrefix(name, "petite_") {
			ours = append(ours, name)
		}
	}
	sort.Strings(ours)
	assert.Equal(t, metrics.Names(), ours, "metrics.Names lists what is exported")
}
