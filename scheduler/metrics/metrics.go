// Package metrics exports a scheduler server's state and work to
// Prometheus: each server has its own registry, served at /metrics. Gauges
// are read from the committed state when scraped; counters and histograms
// are fed by the leader's scheduling loop. docs/metrics.md lists them.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"petite/scheduler"
	"petite/scheduler/server"
)

// Namespace prefixes every metric petite exports.
const Namespace = "petite"

// Options tune what a server exports.
type Options struct {
	// Devices returns the device UUIDs an agent reported for a node, in
	// device order, for petite_gpu_info; a shorter list leaves the uuid
	// label empty. It is called outside the state's lock. nil reads the
	// agents' records the server keeps.
	Devices func(node string) []string
}

// Metrics is one server's registry: the scrape-time view of its state and
// the counters of the leader's work.
type Metrics struct {
	reg *prometheus.Registry

	placements  prometheus.Counter
	preemptions prometheus.Counter
	plans       *prometheus.CounterVec
	passSeconds prometheus.Histogram
	commitSecs  prometheus.Histogram
}

// latencyBuckets span half a millisecond to about 8 s, doubling: a pass on
// a small fleet takes well under a millisecond, a commit on a slow disk
// seconds.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 15)

// New builds the registry of server s, with the Go runtime's and the
// process's own collectors, and makes it hear of the leader's work.
func New(s *server.Server, o Options) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		placements: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "placements_total",
			Help: "Tasks placed by plans this server committed while it led.",
		}),
		preemptions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "preemptions_total",
			Help: "Tasks evicted (preempted) by plans this server committed while it led.",
		}),
		plans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "plans_total",
			Help: "Plans this server sent to the log while it led, by result: committed, or refused (made on a state that had moved on, or leadership lost).",
		}, []string{"result"}),
		passSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "scheduling_pass_duration_seconds",
			Help:    "Time the leader spent planning one scheduling pass on its frozen state.",
			Buckets: latencyBuckets,
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "plan_commit_duration_seconds",
			Help:    "Time from sending a plan to the log to its result (committed and applied, or refused).",
			Buckets: latencyBuckets,
		}),
	}
	if o.Devices == nil {
		o.Devices = func(node string) []string {
			rec, _ := s.FSM().Agent(node)
			return rec.Devices
		}
	}
	// Both results are exported from the start, at zero.
	m.plans.WithLabelValues("committed")
	m.plans.WithLabelValues("refused")
	m.reg.MustRegister(
		m.placements, m.preemptions, m.plans, m.passSeconds, m.commitSecs,
		newStateCollector(s, o),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s.SetObserver(m)
	return m
}

// Registry is the server's registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus's text (or negotiated) format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Planned implements server.Observer.
func (m *Metrics) Planned(took time.Duration) { m.passSeconds.Observe(took.Seconds()) }

// Committed implements server.Observer: a committed plan counts its tasks
// placed and evicted.
func (m *Metrics) Committed(took time.Duration, plan *scheduler.Plan, err error) {
	m.commitSecs.Observe(took.Seconds())
	if err != nil {
		m.plans.WithLabelValues("refused").Inc()
		return
	}
	m.plans.WithLabelValues("committed").Inc()
	var placed, evicted int
	for _, p := range plan.Place {
		placed += len(p.Tasks)
	}
	for _, e := range plan.Evict {
		evicted += len(e.Seen) // Seen holds every evicted task's placement
	}
	m.placements.Add(float64(placed))
	m.preemptions.Add(float64(evicted))
}

// raftGauges are the numeric keys of raft.Stats exported as gauges.
var raftGauges = []struct{ key, name, help string }{
	{"term", "raft_term", "The raft term this server is in."},
	{"commit_index", "raft_commit_index", "The highest log index this server knows committed."},
	{"applied_index", "raft_applied_index", "The highest log index applied to this server's state machine."},
	{"last_log_index", "raft_last_log_index", "The last index in this server's log."},
	{"last_snapshot_index", "raft_last_snapshot_index", "The log index of this server's last snapshot."},
	{"fsm_pending", "raft_fsm_pending", "Committed entries waiting to be applied to the state machine."},
	{"num_peers", "raft_peers", "Other voting servers in the configuration this server knows."},
}

// raftStates are raft's roles, one series each in petite_raft_state.
var raftStates = []string{"Leader", "Follower", "Candidate", "Shutdown"}

// lastContact reads raft's last_contact: "0" on the leader, "never", or a
// duration.
func lastContact(v string) (float64, bool) {
	if v == "never" || v == "" {
		return 0, false
	}
	if v == "0" {
		return 0, true
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, false
	}
	return d.Seconds(), true
}

func parseUint(v string) (float64, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	return float64(n), err == nil
}

// Names lists the metric families petite exports (the Go runtime's and
// the process's aside), sorted: what dashboards may query.
func Names() []string {
	names := []string{
		"placements_total", "preemptions_total", "plans_total",
		"scheduling_pass_duration_seconds", "plan_commit_duration_seconds",
		"queued_jobs", "pending_gpus", "running_jobs", "running_gpus",
		"gpus_capacity", "gpus_allocated", "gpus_free", "gpus_unhealthy", "stranded_gpus", "nodes", "gpu_info",
		"state_applied_commands", "raft_state", "raft_last_contact_seconds",
	}
	for _, g := range raftGauges {
		names = append(names, g.name)
	}
	for i := range names {
		names[i] = Namespace + "_" + names[i]
	}
	slices.Sort(names)
	return names
}
