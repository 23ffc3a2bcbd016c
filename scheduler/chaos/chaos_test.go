package chaos

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"petite/scheduler/api"
)

var (
	long   = flag.Bool("chaos.long", false, "the long run: 20 seeds of 10,000 operations (make chaos)")
	seeds  = flag.Int("chaos.seeds", 0, "number of seeds (default 3, 20 with -chaos.long)")
	ops    = flag.Int("chaos.ops", 0, "operations per seed (default: as many as 15 s allow; 10,000 and at least 60 s with -chaos.long)")
	first  = flag.Uint64("chaos.seed", 1, "the first seed")
	outDir = flag.String("chaos.out", "", "where a failing seed's history (porcupine HTML) goes (default: the temp dir)")
)

// clients is how many clients run operations concurrently.
const clients = 8

// runConfig is one seed's run.
type runConfig struct {
	seed    uint64
	servers int
	ops     int
	// minTime and maxTime bound the run: it lasts at least minTime (for
	// faults to happen) and at most maxTime (the short run stays near its
	// budget on a loaded machine), between them until ops are done.
	minTime, maxTime time.Duration
}

// TestChaos runs the daemon's servers as processes under a nemesis while
// eight clients submit, cancel, finish and read jobs and drain nodes, then
// checks the history for linearizability and the invariants. Odd seeds run
// three servers, even seeds five.
func TestChaos(t *testing.T) {
	needBinary(t)
	n, perSeed, minTime, maxTime := 3, 100000, 0*time.Second, 15*time.Second
	if *long {
		n, perSeed, minTime, maxTime = 20, 10000, 60*time.Second, 30*time.Minute
	}
	if *seeds > 0 {
		n = *seeds
	}
	if *ops > 0 {
		perSeed = *ops
	}
	for s := *first; s < *first+uint64(n); s++ {
		cfg := runConfig{seed: s, servers: 3, ops: perSeed, minTime: minTime, maxTime: maxTime}
		if s%2 == 0 {
			cfg.servers = 5
		}
		t.Run(fmt.Sprintf("seed=%d/servers=%d", s, cfg.servers), func(t *testing.T) { runChaos(t, cfg) })
	}
}

// faultKinds are what the nemesis does, one at a time.
var faultKinds = []string{"partition-leader", "isolate-minority", "kill-leader", "pause-server", "kill-agent", "cut-agent"}

// run is the state of one seed's run.
type run struct {
	t     *testing.T
	cfg   runConfig
	c     *cluster
	start time.Time

	mu      sync.Mutex
	history []porcupine.Operation
	jobs    []string // job ids clients may act on
	named   int      // submits so far
	faults  map[string]int

	opsDone atomic.Int64
}

func (r *run) now() int64 { return int64(time.Since(r.start)) }

func (r *run) record(op porcupine.Operation) {
	r.mu.Lock()
	r.history = append(r.history, op)
	r.mu.Unlock()
	r.opsDone.Add(1)
}

func runChaos(t *testing.T, cfg runConfig) {
	hb := filepath.Join(t.TempDir(), "petite.yaml")
	if err := os.WriteFile(hb, []byte(heartbeatConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newClusterOpts(t, cfg.servers, clusterOpts{args: []string{"--config", hb}})
	if c.lab.ok {
		// Two mock DGX H100 nodes with agents; their jobs (no command) are
		// placeholders the agents hold. The node operations stay on the
		// nodes without agents, whose state only clients change.
		c.startAgent(t, 0, "ag-0")
		c.startAgent(t, 1, "ag-1")
	} else {
		t.Log("chaos: agents skipped: cutting an agent off needs network namespaces")
	}
	r := &run{t: t, cfg: cfg, c: c, start: time.Now(), faults: map[string]int{}}
	nodes := []string{"h100-0000", "h100-0001", "a10-0000"}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(i, rand.New(rand.NewPCG(cfg.seed, uint64(i))), nodes, stop)
		}()
	}
	nemDone := make(chan struct{})
	go func() {
		defer close(nemDone)
		r.nemesis(rand.New(rand.NewPCG(cfg.seed, 0xfa17)), stop)
	}()
	capDone := make(chan struct{})
	go func() {
		defer close(capDone)
		r.watchCapacity(stop)
	}()
	deadline := time.After(cfg.maxTime)
	for r.opsDone.Load() < int64(cfg.ops) || time.Since(r.start) < cfg.minTime {
		select {
		case <-deadline:
			t.Logf("time budget of %s reached at %d operations", cfg.maxTime, r.opsDone.Load())
			goto stopped
		case <-time.After(50 * time.Millisecond):
		}
	}
stopped:
	close(stop)
	wg.Wait()
	<-nemDone
	<-capDone
	c.heal()
	c.waitHealthy(90 * time.Second)

	r.resolve()
	r.check()
	r.invariants()
	kinds := make([]string, 0, len(r.faults))
	for _, k := range faultKinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, r.faults[k]))
	}
	t.Logf("seed %d, %d servers: %d operations in %s; faults: %s", cfg.seed, cfg.servers, len(r.history),
		time.Since(r.start).Round(time.Second), strings.Join(kinds, ", "))
}

// client runs operations until stop: each picks a server at random and, on
// no answer, tries others until its deadline; what it never learns is an
// unknown outcome, resolved after the run.
func (r *run) client(id int, rng *rand.Rand, nodes []string, stop <-chan struct{}) {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		var in Input
		switch x := rng.IntN(100); {
		case x < 35:
			in = Input{Kind: OpSubmit, RequestID: fmt.Sprintf("s%d-c%d-%d", r.cfg.seed, id, n)}
			if rng.IntN(3) > 0 {
				in.Key = "j-" + in.RequestID // a third of the jobs are named by the server
			}
		case x < 60:
			in = Input{Kind: OpStatus, Key: r.pickJob(rng)}
		case x < 75:
			in = Input{Kind: OpCancel, Key: r.pickJob(rng)}
		case x < 85:
			in = Input{Kind: OpFinish, Key: r.pickJob(rng)}
		case x < 92:
			in = Input{Kind: OpSetNode, Key: nodes[rng.IntN(len(nodes))], Arg: []string{"draining", "ready"}[rng.IntN(2)]}
		default:
			in = Input{Kind: OpGetNode, Key: nodes[rng.IntN(len(nodes))]}
		}
		if in.Key == "" && in.Kind != OpSubmit {
			in = Input{Kind: OpGetNode, Key: nodes[rng.IntN(len(nodes))]}
		}
		call := r.now()
		out, key := r.do(rng, in)
		ret := r.now()
		if out.Result == ResUnknown {
			ret = math.MaxInt64 / 2 // may take effect any time after its call
		}
		if in.Kind == OpSubmit {
			if key != "" {
				in.Key = key
			}
			if in.Key != "" { // acknowledged, or unknown and named: it may exist
				r.mu.Lock()
				r.jobs = append(r.jobs, in.Key)
				r.mu.Unlock()
			}
		}
		r.record(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
	}
}

func (r *run) pickJob(rng *rand.Rand) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.jobs) == 0 {
		return ""
	}
	// Mostly recent jobs: those still live, where operations race.
	k := len(r.jobs) - 1 - min(rng.IntN(len(r.jobs)), rng.IntN(40))
	return r.jobs[k]
}

// opDeadline is how long a client tries one operation.
const opDeadline = 6 * time.Second

// do runs one operation, retrying on other servers while there is no
// answer. It returns the answer and, for a submit, the job's id.
func (r *run) do(rng *rand.Rand, in Input) (Output, string) {
	ctx, cancel := context.WithTimeout(context.Background(), opDeadline)
	defer cancel()
	for {
		cl := r.c.client(rng.IntN(len(r.c.srvs)))
		var status, key string
		var err error
		switch in.Kind {
		case OpSubmit:
			var res api.SubmitResponse
			res, err = cl.SubmitKey(ctx, jobSpec(rng, in.Key), in.RequestID)
			status, key = res.Status, res.ID
		case OpStatus:
			if rng.IntN(8) == 0 {
				// Through the list, the route the capacity watcher reads
				// stale: a stale read must stay that one request's.
				status, err = listStatus(ctx, cl, in.Key)
				break
			}
			var j api.Job
			j, err = cl.Job(ctx, in.Key, false)
			status = j.Status
		case OpCancel:
			var j api.Job
			j, err = cl.Cancel(ctx, in.Key)
			status = j.Status
		case OpFinish:
			var j api.Job
			j, err = cl.Finish(ctx, in.Key, api.FinishRequest{})
			status = j.Status
		case OpSetNode:
			var n api.Node
			n, err = cl.SetNodeState(ctx, in.Key, in.Arg)
			status = n.State
		case OpGetNode:
			var n api.Node
			n, err = cl.Node(ctx, in.Key)
			status = n.State
		}
		var ae *api.Error
		switch {
		case err == nil:
			return Output{Result: ResOK, Status: status}, key
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
			return Output{Result: ResNotFound}, ""
		case errors.As(err, &ae) && ae.Status == http.StatusConflict:
			return Output{Result: ResConflict, Status: ae.Message}, ""
		case errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
			return Output{Result: ResRefused, Status: ae.Message}, ""
		case errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusTooManyRequests:
			// A request the harness made right refused as malformed: the
			// model knows no such answer, so the check fails on it.
			return Output{Result: "bad:" + ae.Code, Status: ae.Message}, ""
		}
		if ctx.Err() != nil {
			return Output{Result: ResUnknown, Status: err.Error()}, ""
		}
		if (in.Kind == OpFinish || in.Kind == OpSetNode) && !notSent(err) {
			// The attempt may still take effect later (a paused server
			// holding it, a forward in flight): a retry could be followed
			// by this one, out of order. Submits carry a request id, and a
			// late cancel or a late read changes nothing, so those retry.
			return Output{Result: ResUnknown, Status: err.Error()}, ""
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listStatus reads a job's status from the list of all jobs, answering
// not found as the job endpoint does.
func listStatus(ctx context.Context, cl *api.Client, id string) (string, error) {
	jobs, err := cl.Jobs(ctx, false)
	if err != nil {
		return "", err
	}
	for _, j := range jobs {
		if j.ID == id {
			return j.Status, nil
		}
	}
	return "", &api.Error{Status: http.StatusNotFound, Code: api.CodeNotFound}
}

// notSent says whether a failed request surely did nothing: it never
// reached a server, or a server turned it away unread (the rate limit).
func notSent(err error) bool {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Status == http.StatusTooManyRequests
	}
	msg := err.Error()
	return strings.Contains(msg, "connect: connection refused") || strings.Contains(msg, "connect: no route to host") ||
		strings.Contains(msg, "connect: network is unreachable")
}

// jobSpec is a random job: whole GPUs or a share, a gang of one or two, a
// priority that lets some preempt others.
func jobSpec(rng *rand.Rand, id string) []byte {
	var b strings.Builder
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	} else {
		b.WriteString("name: anon\n")
	}
	fmt.Fprintf(&b, "count: %d\npriority: %d\ncheckpointable: true\n", 1+rng.IntN(2), 10*rng.IntN(2))
	if rng.IntN(3) == 0 {
		fmt.Fprintf(&b, "task: {gpus: 1, gpu_milli: %d, cpu_milli: 500, memory_mib: 1024}\n", []int{250, 500}[rng.IntN(2)])
	} else {
		fmt.Fprintf(&b, "task: {gpus: %d, cpu_milli: 1000, memory_mib: 4096}\n", []int{1, 2, 4, 8}[rng.IntN(4)])
	}
	return []byte(b.String())
}

// nemesis injects one fault every 2-5 s and heals it before the next.
func (r *run) nemesis(rng *rand.Rand, stop <-chan struct{}) {
	c := r.c
	sleep := func(lo, hi time.Duration) bool {
		select {
		case <-stop:
			return false
		case <-time.After(lo + time.Duration(rng.Int64N(int64(hi-lo)))):
			return true
		}
	}
	for sleep(2*time.Second, 5*time.Second) {
		kind := faultKinds[rng.IntN(len(faultKinds))]
		if !c.lab.ok && (kind == "partition-leader" || kind == "isolate-minority") {
			kind = []string{"kill-leader", "pause-server"}[rng.IntN(2)]
		}
		if len(c.agents) == 0 && (kind == "kill-agent" || kind == "cut-agent") {
			kind = "pause-server"
		}
		l := c.leader()
		if l < 0 {
			l = rng.IntN(len(c.srvs))
		}
		switch kind {
		case "partition-leader":
			r.isolate(l)
		case "isolate-minority":
			perm := rng.Perm(len(c.srvs))
			for _, i := range perm[:1+rng.IntN((len(c.srvs)-1)/2)] {
				r.isolate(i)
			}
		case "kill-leader":
			c.srvs[l].kill()
		case "kill-agent":
			c.agents[rng.IntN(len(c.agents))].kill()
		case "cut-agent":
			k := rng.IntN(len(c.agents))
			if err := c.lab.cut(10+k, true); err != nil {
				r.t.Errorf("nemesis: %v", err)
			} else {
				c.agents[k].isolated = true
			}
		case "pause-server":
			if rng.IntN(2) == 0 {
				l = rng.IntN(len(c.srvs))
			}
			c.srvs[l].pause(true)
		}
		r.mu.Lock()
		r.faults[kind]++
		r.mu.Unlock()
		sleep(time.Second, 3*time.Second)
		c.heal()
	}
}

func (r *run) isolate(i int) {
	if err := r.c.lab.cut(i, true); err != nil {
		r.t.Errorf("nemesis: %v", err)
		return
	}
	r.c.srvs[i].isolated = true
}

// watchCapacity reads every server's committed state (stale reads: what it
// has applied) through the run and checks no device is held beyond its
// capacity at any of them.
func (r *run) watchCapacity(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(700 * time.Millisecond):
		}
		for i := range r.c.srvs {
			jobs, nodes, err := r.readState(i)
			if err != nil {
				continue // cut off, paused or down: nothing to read now
			}
			if err := checkCapacity(r.c.srvs[i].id, jobs, nodes); err != nil {
				r.t.Error(err)
			}
		}
	}
}

// readState reads the jobs and nodes server i has applied.
func (r *run) readState(i int) ([]api.Job, []api.Node, error) {
	jb, err := r.c.get(i, "/v1/jobs?stale=true")
	if err != nil {
		return nil, nil, err
	}
	nb, err := r.c.get(i, "/v1/nodes?stale=true")
	if err != nil {
		return nil, nil, err
	}
	var jobs api.JobList
	var nodes api.NodeList
	if err := errors.Join(json.Unmarshal(jb, &jobs), json.Unmarshal(nb, &nodes)); err != nil {
		return nil, nil, fmt.Errorf("server %s: %w", r.c.srvs[i].id, err)
	}
	return jobs.Jobs, nodes.Nodes, nil
}

// checkCapacity checks the jobs a server has applied against its nodes:
// per device at most 1000 milli-GPU (so whole devices are not shared), and
// no node's free amount below zero or above its capacity.
func checkCapacity(server string, jobs []api.Job, nodes []api.Node) error {
	held := map[string]int32{}
	for _, j := range jobs {
		if j.Status != api.StatusRunning {
			continue
		}
		for _, tp := range j.Tasks {
			for _, g := range tp.GPUs {
				held[fmt.Sprintf("%s/%d", tp.Node, g)] += tp.GPUMilli
			}
		}
	}
	for dev, m := range held {
		if m > 1000 {
			return fmt.Errorf("server %s: device %s holds %d milli-GPU", server, dev, m)
		}
	}
	for _, n := range nodes {
		if n.GPUMilliFree < 0 || n.GPUMilliFree > n.GPUMilliCap || n.CPUMilliFree < 0 || n.MemMiBFree < 0 {
			return fmt.Errorf("server %s: node %s free %+v", server, n.Name, n)
		}
	}
	return nil
}

// resolve settles the submits whose answer was lost against the committed
// state: one that made a job took effect (its return stays open: when is
// not known); one that made none never will, and leaves the history.
func (r *run) resolve() {
	cl := r.c.client(0)
	cl.Retry = 10 * time.Second
	kept := r.history[:0]
	for _, op := range r.history {
		in, out := op.Input.(Input), op.Output.(Output)
		switch {
		case out.Result != ResUnknown:
		case in.Kind == OpSubmit:
			j, ok, err := cl.JobByRequest(context.Background(), in.RequestID)
			if err != nil {
				r.t.Fatalf("resolve submit %s: %v", in.RequestID, err)
			}
			if !ok {
				continue
			}
			in.Key = j.ID
			op.Input, op.Output = in, Output{Result: ResOK, Status: "resolved after the run"}
		case in.Kind == OpStatus || in.Kind == OpGetNode:
			continue // a read without an answer says nothing
		}
		kept = append(kept, op)
	}
	r.history = kept
}

// check runs porcupine over the history; a failure writes the
// visualisation to a file the error names.
func (r *run) check() {
	model := Model()
	res, info := porcupine.CheckOperationsVerbose(model, r.history, 2*time.Minute)
	if res == porcupine.Ok {
		return
	}
	dir := *outDir
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("petite-chaos-seed%d.html", r.cfg.seed))
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		r.t.Errorf("write the visualisation: %v", err)
	}
	r.t.Errorf("seed %d: history of %d operations is %s (porcupine); visualisation in %s", r.cfg.seed, len(r.history), res, path)
	// Name the first object whose history fails, operation by operation.
	for _, part := range partition(r.history) {
		if porcupine.CheckOperationsTimeout(model, part, 10*time.Second) == porcupine.Ok {
			continue
		}
		sort.Slice(part, func(a, b int) bool { return part[a].Call < part[b].Call })
		var b strings.Builder
		for _, op := range part {
			ret := "open"
			if op.Return < math.MaxInt64/2 {
				ret = time.Duration(op.Return).String()
			}
			fmt.Fprintf(&b, "\n  client %d [%s, %s] %s", op.ClientId, time.Duration(op.Call), ret, model.DescribeOperation(op.Input, op.Output))
		}
		r.t.Errorf("%s: not linearizable:%s", part[0].Input.(Input).Key, b.String())
		break
	}
}

// invariants checks the final state: every server the same, every device
// within capacity, every acknowledged submit placed, queued with a reason
// or ended, one job per request id.
func (r *run) invariants() {
	c := r.c
	var hashes []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		hashes = hashes[:0]
		for i := range c.srvs {
			b, err := c.get(i, "/v1/snapshot?stale=true")
			if err != nil {
				hashes = append(hashes, err.Error())
				continue
			}
			hashes = append(hashes, fmt.Sprintf("%x", sha256.Sum256(b))[:16])
		}
		same := true
		for _, h := range hashes {
			same = same && h == hashes[0]
		}
		if same {
			break
		}
		if time.Now().After(deadline) {
			r.t.Errorf("servers did not converge: state hashes %v", hashes)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range c.srvs {
		jobs, nodes, err := r.readState(i)
		if err == nil {
			err = checkCapacity(c.srvs[i].id, jobs, nodes)
		}
		if err != nil {
			r.t.Error(err)
		}
	}

	acked := map[string]string{} // job -> request id
	for _, op := range r.history {
		in, out := op.Input.(Input), op.Output.(Output)
		if in.Kind == OpSubmit && out.Result == ResOK {
			acked[in.Key] = in.RequestID
		}
	}
	cl := c.client(0)
	cl.Retry = 10 * time.Second
	deadline = time.Now().Add(30 * time.Second)
	for {
		jobs, err := cl.Jobs(context.Background(), false)
		if err != nil {
			r.t.Fatalf("list jobs: %v", err)
		}
		problems := r.jobProblems(jobs, acked)
		if len(problems) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(problems)
			for i := range c.srvs {
				h, err := c.health(i)
				r.t.Logf("server %s: %+v %v", c.srvs[i].id, h, err)
			}
			r.t.Errorf("%d problems with jobs, first: %s", len(problems), strings.Join(problems[:min(5, len(problems))], "; "))
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *run) jobProblems(jobs []api.Job, acked map[string]string) []string {
	var out []string
	byID := map[string]api.Job{}
	perReq := map[string]int{}
	for _, j := range jobs {
		byID[j.ID] = j
		perReq[j.RequestID]++
		if j.RequestID == "" {
			out = append(out, fmt.Sprintf("job %s has no request id", j.ID))
		}
	}
	for rid, n := range perReq {
		if n > 1 && rid != "" {
			out = append(out, fmt.Sprintf("request %s made %d jobs", rid, n))
		}
	}
	for id, rid := range acked {
		j, ok := byID[id]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("acknowledged job %s (request %s) lost", id, rid))
		case j.Status == api.StatusRunning && len(j.Tasks) == 0:
			out = append(out, fmt.Sprintf("job %s running without placements", id))
		case j.Status == api.StatusQueued && (j.Pending == nil || j.Pending.Why == "" || j.Pending.Why == api.WhyNextPass || j.Pending.Why == api.WhyAskLeader):
			out = append(out, fmt.Sprintf("job %s queued without a reason (%+v)", id, j.Pending))
		}
	}
	return out
}
