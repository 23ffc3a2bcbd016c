package bench

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"petite/scheduler"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// raftCluster starts 3 servers bootstrapped together on loopback TCP, each
// with its raft-wal log and snapshots in a temp dir (durable: the log is
// fsynced before an entry counts), the leader's own scheduling off so
// that the benchmark's plans are the only ones.
func raftCluster(b *testing.B, pools []scheduler.Pool, nodes []scheduler.Node) (leader *server.Server, all []*server.Server, stop func()) {
	b.Helper()
	peers := make([]server.Peer, 3)
	for i := range peers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		peers[i] = server.Peer{ID: fmt.Sprintf("s%d", i), Addr: ln.Addr().String()}
		ln.Close()
	}
	var servers []*server.Server
	for _, p := range peers {
		s, err := server.New(server.Config{
			ID: p.ID, DataDir: b.TempDir(), RaftAddr: p.Addr, Bootstrap: true, Peers: peers,
			Pools: pools, Nodes: nodes, NoScheduling: true, // raft's default timeouts: a busy leader keeps its lease
		})
		if err != nil {
			b.Fatal(err)
		}
		servers = append(servers, s)
	}
	stop = func() {
		for _, s := range servers {
			s.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Ready(ctx); err != nil {
			stop()
			b.Fatal(err)
		}
	}
	for {
		for _, s := range servers {
			if s.IsLeader() {
				var n int
				s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) { n = m.Cluster().NumNodes() })
				if n == len(nodes) {
					return s, servers, stop
				}
			}
		}
		if ctx.Err() != nil {
			stop()
			b.Fatal("no leader with the fleet registered")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const (
	raftNodes    = 256
	raftGPUs     = 8
	raftShare    = 100                                                        // milli-GPU a task takes
	raftRound    = raftNodes * raftGPUs * (scheduler.MilliPerGPU / raftShare) // decisions that fill the fleet
	raftInFlight = 64                                                         // log entries in flight
)

// BenchmarkRaftCommit measures committed placement decisions through the
// replicated log: 3 servers on loopback with durable raft-wal stores; each
// op is one task placed (a tenth of a GPU), committed by a quorum and
// applied by the leader's state machine, which checks it against the
// committed state. "batched" is the shape the daemon's leader commits in:
// plans of server.DefaultPlanEntry placements (1,000), one log entry each,
// one entry in flight; "unbatched" one placement per entry, 64 entries in
// flight. Between rounds that fill the fleet, the timer stops while the
// jobs are submitted, then finished and pruned; a first round, untimed,
// warms the cluster up. Beside decisions/s and the
// commit latency it reports the process's CPU time per decision (the three
// servers together), which the machine's load moves far less than the
// wall clock. -raft.shapes adds runs of other entry sizes and depths.
func BenchmarkRaftCommit(b *testing.B) {
	// The servers set the process's collector (server.GC); the benchmarks
	// after this one in the binary run with the runtime's own setting.
	prev := debug.SetGCPercent(100)
	debug.SetGCPercent(prev)
	b.Cleanup(func() { debug.SetGCPercent(prev) })
	for _, per := range []int{server.DefaultPlanEntry, 1} {
		// The daemon's leader commits a pass's plan one entry at a time,
		// each of at most DefaultPlanEntry placements: a plan is made on
		// the state the previous one left.
		name, inFlight := "batched", 1
		if per == 1 {
			name, inFlight = "unbatched", raftInFlight
		}
		b.Run(name, func(b *testing.B) { benchRaftCommit(b, per, inFlight) })
	}
	for _, sh := range strings.Split(*raftShapes, ",") {
		var per, inFlight int
		if sh == "" {
			continue
		}
		if _, err := fmt.Sscanf(sh, "%d:%d", &per, &inFlight); err != nil || per < 1 || inFlight < 1 {
			b.Fatalf("-raft.shapes: %q is not PER:IN-FLIGHT", sh)
		}
		b.Run(fmt.Sprintf("per=%d/in-flight=%d", per, inFlight), func(b *testing.B) { benchRaftCommit(b, per, inFlight) })
	}
}

var (
	raftShapes  = flag.String("raft.shapes", "", "more BenchmarkRaftCommit runs, comma-separated PER:IN-FLIGHT (placements per log entry, entries in flight), e.g. 250:2,1000:1")
	raftCPUProf = flag.String("raft.cpuprofile", "", "BenchmarkRaftCommit: write a CPU profile of each round's timed part to `PREFIX`-N.pprof (go tool pprof takes them all)")
	raftTrace   = flag.String("raft.trace", "", "BenchmarkRaftCommit: write an execution trace of the first timed round to `FILE`")
	raftMemProf = flag.String("raft.memprofile", "", "BenchmarkRaftCommit: write the heap profile before and after each round's timed part to `PREFIX`-N-{0,1}.pprof (go tool pprof -diff_base 0 1: what it allocated)")
)

// raftProfile starts the profiles -raft.cpuprofile and -raft.trace ask for
// over one round's timed part, so that they hold none of the setup
// between rounds; the returned func stops them.
func raftProfile(b *testing.B, name string, round int) (stop func()) {
	var stops []func()
	tag := strings.NewReplacer("/", "_", "=", "").Replace(name)
	if *raftCPUProf != "" {
		f, err := os.Create(fmt.Sprintf("%s-%s-%d.pprof", *raftCPUProf, tag, round))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	if *raftTrace != "" && round == 1 {
		f, err := os.Create(fmt.Sprintf("%s-%s", *raftTrace, tag))
		if err != nil {
			b.Fatal(err)
		}
		if err := trace.Start(f); err != nil {
			b.Fatal(err)
		}
		stops = append(stops, func() { trace.Stop(); f.Close() })
	}
	if *raftMemProf != "" {
		heap := func(i int) {
			f, err := os.Create(fmt.Sprintf("%s-%s-%d-%d.pprof", *raftMemProf, tag, round, i))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			runtime.GC() // the profile is as of the last collection
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				b.Fatal(err)
			}
		}
		heap(0)
		stops = append(stops, func() { heap(1) })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

func benchRaftCommit(b *testing.B, perEntry, inFlight int) {
	pools := []scheduler.Pool{{Name: "p", Kind: scheduler.PoolOnPrem}}
	nodes := make([]scheduler.Node, raftNodes)
	for i := range nodes {
		gpus := make([]scheduler.GPU, raftGPUs)
		for g := range gpus {
			gpus[g] = scheduler.GPU{Model: "H100", MemoryMiB: 81920}
		}
		nodes[i] = scheduler.Node{Name: fmt.Sprintf("n%04d", i), Pool: "p", CPUMilli: 1 << 20, MemoryMiB: 1 << 30, GPUs: gpus}
	}
	leader, servers, stop := raftCluster(b, pools, nodes)
	defer stop()
	// One round first, untimed: the first entries after a cluster starts
	// commit slower (fresh log segments and heap), and a daemon runs for
	// months; in runs of two rounds they made the p99 alone. The short
	// runs that size b.N go without.
	if b.N >= raftRound {
		ids := submitRound(b, leader, 0, raftRound)
		commitRound(b, leader, planEntries(ids, perEntry), inFlight)
		finishRound(b, leader, ids, 0)
	}
	var lat []time.Duration
	done, round := 0, 1
	var cpu float64 // process CPU time while timed: all three servers
	var ms runtime.MemStats
	var gcs uint32 // garbage collections while timed
	nEntries := 0
	snaps := raftSnapshots(servers)
	b.ResetTimer()
	for done < b.N {
		n := min(raftRound, b.N-done)
		b.StopTimer()
		ids := submitRound(b, leader, round, n)
		entries := planEntries(ids, perEntry)
		// The followers apply the submits before the clock starts: their
		// work is the setup's, not the plans'.
		caughtUp(b, leader, servers)
		runtime.ReadMemStats(&ms)
		gcs -= ms.NumGC
		prof := raftProfile(b, b.Name(), round)
		cpu -= raftCPU()
		b.StartTimer()
		lat = append(lat, commitRound(b, leader, entries, inFlight)...)
		b.StopTimer()
		caughtUp(b, leader, servers)
		cpu += raftCPU()
		prof()
		runtime.ReadMemStats(&ms)
		gcs += ms.NumGC
		nEntries += len(entries)
		finishRound(b, leader, ids, int64(round))
		b.StartTimer()
		done += n
		round++
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	// CPU per decision does not swing with the machine's load as the
	// wall-clock figures do: it is what a quieter machine would go faster by.
	b.ReportMetric(cpu*1e6/float64(b.N), "cpu-us/decision")
	b.ReportMetric(float64(gcs)/float64(nEntries), "gc/entry")
	// A snapshot taken mid-run (raft's own, after SnapshotThreshold
	// entries) would stall the applies of its server: count the servers
	// that took one.
	took := 0
	for i, idx := range raftSnapshots(servers) {
		if idx != snaps[i] {
			took++
		}
	}
	b.ReportMetric(float64(took), "snapshotted")
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	}
}

// commitRound commits the entries through the leader, inFlight at a time,
// and returns how long each took from Apply to its result.
func commitRound(b *testing.B, leader *server.Server, entries []state.ApplyPlan, inFlight int) []time.Duration {
	ctx := context.Background()
	var lat []time.Duration
	var latMu sync.Mutex
	work := make(chan state.ApplyPlan)
	var wg sync.WaitGroup
	for range min(inFlight, len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for p := range work {
				t0 := time.Now()
				if _, err := leader.Apply(ctx, p); err != nil {
					b.Error(err)
				}
				mine = append(mine, time.Since(t0))
			}
			latMu.Lock()
			lat = append(lat, mine...)
			latMu.Unlock()
		}()
	}
	for _, e := range entries {
		work <- e
	}
	close(work)
	wg.Wait()
	return lat
}

// raftSnapshots returns each server's last snapshot index, as raft
// reports it.
func raftSnapshots(servers []*server.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.RaftStats()["last_snapshot_index"])
	}
	return out
}

// raftCPU is the CPU time the process has used, user and system, in
// seconds.
func raftCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// caughtUp waits until every server has applied what the leader has, so
// that the followers' share of the work is counted with the round's.
func caughtUp(b *testing.B, leader *server.Server, servers []*server.Server) {
	index := func(s *server.Server) (i uint64) {
		s.FSM().Read(func(_ *state.Machine, _ map[string]server.JobRecord, at uint64) { i = at })
		return i
	}
	want := index(leader)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		behind := false
		for _, s := range servers {
			behind = behind || index(s) < want
		}
		if !behind {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("followers did not catch up")
		}
	}
}

// submitRound queues n one-task jobs, a thousand per log entry.
func submitRound(b *testing.B, s *server.Server, round, n int) []string {
	ids := make([]string, n)
	task := scheduler.Task{GPUs: 1, GPUMilli: raftShare}
	for lo := 0; lo < n; lo += 1000 {
		var cmds []state.Command
		for i := lo; i < min(lo+1000, n); i++ {
			ids[i] = fmt.Sprintf("r%d-%06d", round, i)
			cmds = append(cmds, state.Submit{Job: scheduler.Job{ID: ids[i], Kind: scheduler.Training, Count: 1, Task: task}, At: int64(round)})
		}
		if err := s.ApplyBatch(context.Background(), cmds); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}

// planEntries places job i on slot i of the fleet: node, GPU, share.
func planEntries(ids []string, per int) []state.ApplyPlan {
	slots := scheduler.MilliPerGPU / raftShare
	var out []state.ApplyPlan
	for lo := 0; lo < len(ids); lo += per {
		p := state.ApplyPlan{At: 1}
		for i := lo; i < min(lo+per, len(ids)); i++ {
			gpu := i / slots
			p.Place = append(p.Place, scheduler.JobPlacement{Job: ids[i], Tasks: []scheduler.TaskPlacement{{
				Task: 0, Node: fmt.Sprintf("n%04d", gpu/raftGPUs), GPUs: []int{gpu % raftGPUs}, GPUMilli: raftShare,
			}}})
		}
		out = append(out, p)
	}
	return out
}

// finishRound ends the round's jobs and forgets them, freeing the fleet.
func finishRound(b *testing.B, s *server.Server, ids []string, round int64) {
	for lo := 0; lo < len(ids); lo += 1000 {
		var cmds []state.Command
		for _, id := range ids[lo:min(lo+1000, len(ids))] {
			cmds = append(cmds, state.Finish{Job: id, At: round + 1})
		}
		if err := s.ApplyBatch(context.Background(), cmds); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.ApplyBatch(context.Background(), []state.Command{state.Prune{Before: round + 2}}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPlanEntry measures what each server does per placement decision
// of a batched plan entry, on one state machine without raft: decoding the
// entry (state.Decode) and applying it (state.Machine.Apply, which checks
// every placement against the state). It is the floor under
// BenchmarkRaftCommit: every server of the cluster applies every decision,
// and the followers decode it (the leader applies the plan it encoded
// without decoding it). One op is one decision.
func BenchmarkPlanEntry(b *testing.B) {
	pools := []scheduler.Pool{{Name: "p", Kind: scheduler.PoolOnPrem}}
	var decode, apply time.Duration
	m := state.New()
	if _, err := m.Apply(state.RegisterPool{Pool: pools[0]}); err != nil {
		b.Fatal(err)
	}
	for i := range raftNodes {
		gpus := make([]scheduler.GPU, raftGPUs)
		for g := range gpus {
			gpus[g] = scheduler.GPU{Model: "H100", MemoryMiB: 81920}
		}
		n := scheduler.Node{Name: fmt.Sprintf("n%04d", i), Pool: "p", CPUMilli: 1 << 20, MemoryMiB: 1 << 30, GPUs: gpus}
		if _, err := m.Apply(state.RegisterNode{Node: n}); err != nil {
			b.Fatal(err)
		}
	}
	task := scheduler.Task{GPUs: 1, GPUMilli: raftShare}
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		n := min(raftRound, b.N-done)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("r%d-%06d", round, i)
			if _, err := m.Apply(state.Submit{Job: scheduler.Job{ID: ids[i], Kind: scheduler.Training, Count: 1, Task: task}, At: int64(round)}); err != nil {
				b.Fatal(err)
			}
		}
		for _, p := range planEntries(ids, 1000) {
			raw, err := state.Encode(p)
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			cmd, err := state.Decode(raw)
			t1 := time.Now()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Apply(cmd); err != nil {
				b.Fatal(err)
			}
			decode, apply = decode+t1.Sub(t0), apply+time.Since(t1)
		}
		for _, id := range ids {
			if _, err := m.Apply(state.Finish{Job: id, At: int64(round) + 1}); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := m.Apply(state.Prune{Before: int64(round) + 2}); err != nil {
			b.Fatal(err)
		}
		done += n
	}
	b.ReportMetric(float64(decode.Nanoseconds())/float64(b.N), "decode-ns/decision")
	b.ReportMetric(float64(apply.Nanoseconds())/float64(b.N), "apply-ns/decision")
	b.ReportMetric(float64(b.N)/(decode+apply).Seconds(), "decisions/s")
}
