package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler"
	"petite/traces"
)

// listSource hands out jobs in order, then err (io.EOF when nil). It notes
// the most jobs it has handed out ahead of the arrivals seen by arrived.
type listSource struct {
	jobs    []Job
	next    int
	err     error
	arrived *int
	ahead   int
}

func (s *listSource) Next() (Job, error) {
	if s.next == len(s.jobs) {
		return Job{}, cmpErr(s.err)
	}
	s.next++
	if s.arrived != nil {
		s.ahead = max(s.ahead, s.next-*s.arrived)
	}
	return s.jobs[s.next-1], nil
}

func cmpErr(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}

// runBytes runs cfg and returns the result and the event log as JSON.
func runBytes(t *testing.T, cfg Config) ([]byte, []byte, error) {
	t.Helper()
	log := collect(&cfg)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		return nil, nil, err
	}
	r, err := json.Marshal(res)
	require.NoError(t, err)
	l, err := json.Marshal(*log)
	require.NoError(t, err)
	return r, l, nil
}

// A streamed workload gives the bytes the same workload gives as a slice:
// records, summary and event log, over the options that touch the books
// (horizon, warm-up window, node events and added nodes, moves, queues,
// preemption, checkpoints), and holds no more than W + 1 jobs ahead of the
// arrivals.
func TestSourceMatchesSlice(t *testing.T) {
	add := gpuNode("n9", "onprem", 64000, 8)
	elastic := func() ([]scheduler.Pool, []scheduler.Node) {
		pools, nodes := ownedFleet(2, 8)
		pools = append(pools,
			scheduler.Pool{Name: "od", Kind: scheduler.PoolCloud, PricePerGPUHour: 3, MaxNodes: 3, ProvisionDelaySec: 120},
			scheduler.Pool{Name: "sp", Kind: scheduler.PoolCloud, Pricing: scheduler.Spot, PricePerGPUHour: 1, MaxNodes: 2, ProvisionDelaySec: 60})
		return pools, append(nodes, gpuNode("od-0", "od", 64000, 8), gpuNode("sp-0", "sp", 64000, 8))
	}
	scale := Config{Seed: 5, WarmupJobs: 3, Scale: &Scale{IdleRelease: 300 * Second, SpotReclaim: 900 * Second},
		Checkpoint: Checkpoint{Interval: 300 * Second}, PriceEvents: []PriceEvent{{At: 500 * Second, Pool: "od", PricePerGPUHour: 4}}}
	scaleCut := scale
	scaleCut.Horizon = 2000 * Second
	for _, c := range []struct {
		name  string
		cfg   Config
		fleet func() ([]scheduler.Pool, []scheduler.Node)
	}{
		{"best-fit", Config{Policy: "best-fit"}, nil},
		{"fgd backfill warm-up", Config{Policy: "fgd", Queue: QueueBackfill, WarmupJobs: 7}, nil},
		{"random fifo-skip", Config{Policy: "random", Queue: QueueFIFOSkip, Seed: 3}, nil},
		{"preempt checkpoints runs", Config{Preempt: true, Checkpoint: Checkpoint{Interval: 60 * Second, Restart: 5 * Second}, RecordRuns: true}, nil},
		{"horizon warm-up", Config{Horizon: 1500 * Second, WarmupJobs: 20}, nil},
		{"node events", Config{WarmupJobs: 2, NodeEvents: []NodeEvent{
			{At: 300 * Second, Node: "n0", State: scheduler.NodeDown}, {At: 900 * Second, Node: "n0", State: scheduler.NodeReady},
			{At: 400 * Second, Node: "n9", State: scheduler.NodeReady, Add: &add}}}, nil},
		{"move", Config{MoveEvents: []MoveEvent{{At: 600 * Second, Tenant: "b", Pools: []string{"onprem"}}}}, nil},
		{"scaling spot price", scale, elastic},
		{"scaling to a horizon", scaleCut, elastic},
	} {
		t.Run(c.name, func(t *testing.T) {
			pools, nodes := ownedFleet(3, 8)
			if c.fleet != nil {
				pools, nodes = c.fleet()
			}
			js := randomWorkload(11, 300)
			slice := c.cfg
			slice.Pools, slice.Nodes, slice.Jobs = pools, nodes, js
			want, wantLog, err := runBytes(t, slice)
			require.NoError(t, err)

			stream := c.cfg
			stream.Pools, stream.Nodes = pools, nodes
			arrived := 0
			src := &listSource{jobs: js, arrived: &arrived}
			stream.Source = src
			log := collect(&stream)
			res, err := Run(context.Background(), stream)
			require.NoError(t, err)
			got, err := json.Marshal(res)
			require.NoError(t, err)
			gotLog, err := json.Marshal(*log)
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got))
			assert.Equal(t, string(wantLog), string(gotLog))
			if c.cfg.Scale != nil {
				assert.Positive(t, res.Summary.Scaling["od"].Provisioned, "the cloud pools scaled")
				assert.Positive(t, res.Summary.Scaling["sp"].Reclaimed, "spot nodes were taken back")
			}
			// arrivals counted from the log as it is written: the source was
			// never more than W + 1 jobs ahead, or the arrivals warmed at
			// once (warmArrivals), the one being pulled included
			arrived = 0
			src.next, src.ahead = 0, 0
			stream.Observe = func(e Event) {
				if e.Kind == EventArrive {
					arrived++
				}
			}
			_, err = Run(context.Background(), stream)
			require.NoError(t, err)
			if c.cfg.Horizon == 0 {
				assert.LessOrEqual(t, src.ahead, max(c.cfg.WarmupJobs+1, arrivalWarm)+1)
			}

			// without records: the same summary, no per-job list
			stream.NoRecords, src.next = true, 0
			res2, err := Run(context.Background(), stream)
			require.NoError(t, err)
			assert.Nil(t, res2.Jobs)
			assert.Equal(t, res.Summary, res2.Summary)
		})
	}
}

// A `trace gen` workload streamed through TraceSource replays as FromTrace's
// slice of it does.
func TestTraceSourceMatchesFromTrace(t *testing.T) {
	spec := traces.DefaultSpec()
	spec.Jobs, spec.Seed, spec.Arrival.RatePerHour = 400, 4, 600
	gen, err := traces.NewGenerator(spec)
	require.NoError(t, err)
	var all []traces.Job
	for {
		j, err := gen.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		all = append(all, j)
	}
	js, err := FromTrace(all, "gen.csv", 0)
	require.NoError(t, err)
	pools, nodes := ownedFleet(4, 8)
	want, wantLog, err := runBytes(t, Config{Pools: pools, Nodes: nodes, Jobs: js, Policy: "fgd", WarmupJobs: 10})
	require.NoError(t, err)
	gen, err = traces.NewGenerator(spec)
	require.NoError(t, err)
	got, gotLog, err := runBytes(t, Config{Pools: pools, Nodes: nodes, Source: TraceSource(gen.Next, "gen.csv", 0), Policy: "fgd", WarmupJobs: 10})
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	assert.Equal(t, string(wantLog), string(gotLog))

	// read into one job, its task list reused
	gen, err = traces.NewGenerator(spec)
	require.NoError(t, err)
	got, gotLog, err = runBytes(t, Config{Pools: pools, Nodes: nodes, Source: TraceSourceInto(gen.NextInto, "gen.csv", 0), Policy: "fgd", WarmupJobs: 10})
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	assert.Equal(t, string(wantLog), string(gotLog))
}

// A streamed workload must come in submission order (a slice is sorted; a
// stream cannot be), and errors of the source or of a job surface where
// they happen, naming the job.
func TestSourceErrors(t *testing.T) {
	pools, nodes := ownedFleet(2, 8)
	js := jobsOf([]tj{{0, 10, 1}, {5, 10, 1}, {20, 10, 1}, {15, 10, 1}, {30, 10, 1}})
	boom := errors.New("disk on fire")
	big := jobsOf([]tj{{0, 10, 1}, {5, 10, 1}, {20, 10, 9}})
	for _, c := range []struct {
		name string
		src  Source
		cfg  Config
		want []string
		is   error
	}{
		{"out of order", &listSource{jobs: js}, Config{}, []string{"test job 3: field submit: 15000000000 ns is before the job before it (20000000000 ns)"}, nil},
		{"source error", &listSource{jobs: js[:2], err: boom}, Config{}, []string{"workload: job 2: disk on fire"}, boom},
		{"a job that fits nowhere", &listSource{jobs: big}, Config{}, []string{"test job 2: a task of 9 GPUs"}, nil},
		{"a trace record that fits nowhere", TraceSource(func() func() (traces.Job, error) {
			n := 0
			return func() (traces.Job, error) {
				n++
				if n > 3 {
					return traces.Job{}, io.EOF
				}
				return traces.Job{ID: fmt.Sprint("t/", n), Submit: int64(n), Duration: 5, Tasks: []traces.Task{
					{Name: "ps", Count: 1, CPUMilli: 1000}, {Name: "w", Count: 1, GPUs: 3 * n, GPUMilli: 1000}}}, nil
			}
		}(), "t.csv", 0), Config{}, []string{"t.csv: record 3 (job t/3): a task of 9 GPUs"}, nil},
		{"no jobs", &listSource{}, Config{}, []string{"workload: no jobs"}, nil},
		{"too few for the window", &listSource{jobs: js[:2]}, Config{WarmupJobs: 1}, []string{"workload: 2 jobs leave no measurement window with 1 warm-up jobs"}, nil},
		{"series", &listSource{jobs: js[:2]}, Config{SeriesStep: Second}, []string{"series:", "give the jobs as Config.Jobs"}, nil},
		{"burst", &listSource{jobs: js[:2]}, Config{Burst: &Burst{}}, []string{"the burst method replays Config.Jobs"}, nil},
		{"both", &listSource{jobs: js[:2]}, Config{Jobs: js[:1]}, []string{"not both"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Pools, cfg.Nodes, cfg.Source = pools, nodes, c.src
			_, err := Run(context.Background(), cfg)
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
			if c.is != nil {
				assert.ErrorIs(t, err, c.is)
			}
		})
	}
}

// TraceSource names the record a reader's error or a bad record comes from.
func TestTraceSourceErrors(t *testing.T) {
	boom := errors.New("bad quote")
	n := 0
	next := func() (traces.Job, error) {
		n++
		switch n {
		case 1:
			return traces.Job{ID: "a", Submit: 1, Duration: 5, Tasks: []traces.Task{{Count: 1, GPUs: 1, GPUMilli: 1000}}}, nil
		case 2:
			return traces.Job{}, boom
		}
		return traces.Job{}, io.EOF
	}
	src := TraceSource(next, "jobs.csv", 0)
	j, err := src.Next()
	require.NoError(t, err)
	assert.Equal(t, "jobs.csv: record 1 (job a)", where(&j, 0), "spelled out on an error only")
	_, err = src.Next()
	require.ErrorIs(t, err, boom)
	assert.EqualError(t, err, "jobs.csv: record 2: bad quote")
	_, err = src.Next()
	require.ErrorIs(t, err, boom, "the error stays")

	n = 0
	next2 := func() (traces.Job, error) {
		n++
		if n == 1 {
			return traces.Job{ID: "x", Submit: 1, Duration: -1, Tasks: []traces.Task{{Count: 1, GPUs: 1, GPUMilli: 1000}}}, nil
		}
		return traces.Job{}, io.EOF
	}
	_, err = TraceSource(next2, "jobs.csv", 0).Next()
	assert.ErrorContains(t, err, "jobs.csv: record 1 (job x): field duration")
	n = 0
	j, err = TraceSource(next2, "jobs.csv", 30*Second).Next()
	if assert.NoError(t, err) {
		assert.Equal(t, 30*Second, j.Duration)
	}
	// several task groups of one record come out one after another
	n = 0
	next3 := func() (traces.Job, error) {
		n++
		if n <= 2 {
			return traces.Job{ID: fmt.Sprint("g", n), Submit: int64(n), Duration: 5, Tasks: []traces.Task{
				{Name: "ps", Count: 1, CPUMilli: 1000}, {Name: "w", Count: 2, GPUs: 1, GPUMilli: 1000}}}, nil
		}
		return traces.Job{}, io.EOF
	}
	src = TraceSource(next3, "t", 0)
	var ids []string
	for {
		j, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		ids = append(ids, j.Job.ID)
	}
	assert.Equal(t, []string{"g1/ps", "g1/w", "g2/ps", "g2/w"}, ids)
}

// A job the core refuses is checked under a stand-in id, and the error
// then names it by its own id, as the state machine would know it.
func TestBadJobNamedByItsID(t *testing.T) {
	pools, nodes := ownedFleet(2, 8)
	js := jobsOf([]tj{{0, 10, 1}, {5, 10, 2}})
	js[1].Job.Task.GPUMilli = 500
	for _, q := range []Queue{QueueFIFO, QueueFIFOSkip} {
		_, err := Run(context.Background(), Config{Pools: pools, Nodes: nodes, Jobs: js, Queue: q})
		assert.EqualError(t, err, "test job 1: job 1: field task.gpu_milli: a task of 2 GPUs takes whole GPUs (1000), got 500")
		_, err = Run(context.Background(), Config{Pools: pools, Nodes: nodes, Source: &listSource{jobs: js}, Queue: q})
		assert.EqualError(t, err, "test job 1: job 000000000001: field task.gpu_milli: a task of 2 GPUs takes whole GPUs (1000), got 500")
	}
}

// chunked keeps what was added at its index across chunk boundaries,
// never moves an entry, and leaves less than a chunk unused.
func TestChunked(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 65, tiered - 1, tiered, tiered + 1, tiered + 3*chunkLen + 7} {
		var a chunked[int64]
		var first *int64
		for i := range n {
			a.add(int64(i) * 3)
			if i == 0 {
				first = a.at(0)
			}
		}
		require.Equal(t, n, a.n)
		for i := range n {
			require.Equal(t, int64(i)*3, *a.at(i), "n %d, i %d", n, i)
		}
		if n > 0 {
			assert.Same(t, first, a.at(0), "entries never move")
			assert.Len(t, a.c[0], 64, "a small array stays small")
		}
		room := 0
		for _, c := range a.c {
			assert.LessOrEqual(t, len(c), chunkLen)
			room += len(c)
		}
		if n > 0 {
			assert.Less(t, room-n, len(a.c[len(a.c)-1]), "n %d: no chunk left wholly unused", n)
		}
	}
}

// A trace file streamed through its reader replays as the slice read from
// it does (the §7 trace is in submission order).
func TestTraceFileStreamed(t *testing.T) {
	path := filepath.Join("testdata", "section7.csv")
	pools, nodes := burstFleet([]string{"n0", "n1", "n2", "n3"}, nil)
	r, err := traces.Open(path, traces.Options{})
	require.NoError(t, err)
	var all []traces.Job
	for {
		j, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		all = append(all, j)
	}
	require.NoError(t, r.Close())
	js, err := FromTrace(all, path, 0)
	require.NoError(t, err)
	want, wantLog, err := runBytes(t, Config{Pools: pools, Nodes: nodes, Jobs: js, Queue: QueueBackfill, WarmupJobs: 5})
	require.NoError(t, err)
	r, err = traces.Open(path, traces.Options{})
	require.NoError(t, err)
	defer r.Close()
	got, gotLog, err := runBytes(t, Config{Pools: pools, Nodes: nodes, Source: TraceSource(r.Next, path, 0), Queue: QueueBackfill, WarmupJobs: 5})
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	assert.Equal(t, string(wantLog), string(gotLog))
}

// A run stopped by its horizon pulls the rest of a Source to count it, and
// keeps none of those jobs but their figures.
func TestDrainKeepsNoJobs(t *testing.T) {
	pools, nodes := ownedFleet(3, 8)
	js := randomWorkload(11, 3000)
	cfg := Config{Pools: pools, Nodes: nodes, Source: &listSource{jobs: js}, Horizon: 600 * Second, WarmupJobs: 4}
	e, err := newEngine(&cfg)
	require.NoError(t, err)
	require.NoError(t, e.run(context.Background()))
	assert.Equal(t, len(js), e.figs.n, "every job counted")
	assert.Less(t, e.arrived, len(js)/2, "the horizon stopped the arrivals")
	assert.LessOrEqual(t, len(e.feed.ahead), cfg.WarmupJobs+1)
	assert.Equal(t, len(js)-e.arrived, e.result().Summary.Future)
}

// A run keeps a book for each job live at once, not for every job: ended
// jobs' books are reused, and only their figures stay.
func TestBooksOnlyForLiveJobs(t *testing.T) {
	pools, nodes := ownedFleet(20, 8)
	js := randomWorkload(12, 3000)
	live, most := 0, 0
	cfg := Config{Pools: pools, Nodes: nodes, Source: &listSource{jobs: js}, NoRecords: true, Observe: func(ev Event) {
		switch ev.Kind {
		case EventArrive:
			live++
			most = max(most, live)
		case EventFinish, EventCloudEnd:
			live--
		}
	}}
	e, err := newEngine(&cfg)
	require.NoError(t, err)
	require.NoError(t, e.run(context.Background()))
	require.Zero(t, live)
	assert.Equal(t, most, e.live.n, "one book per job live at once")
	assert.Less(t, most, len(js)/4)
	assert.Equal(t, len(js), e.figs.n)
	assert.Nil(t, e.recs)
}
