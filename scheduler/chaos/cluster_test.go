package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"petite/scheduler/api"
)

// bin is the petite binary, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() && !listOnly() {
		dir, err := os.MkdirTemp("", "petite-chaos-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "chaos: temp dir:", err)
			os.Exit(1)
		}
		bin = filepath.Join(dir, "petite")
		build := exec.Command("go", "build", "-o", bin, "petite/cmd/petite")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: build petite:", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// listOnly reports whether the test binary was asked only to list tests
// (make fuzz lists the fuzz targets of every package).
func listOnly() bool {
	f := flag.Lookup("test.list")
	return f != nil && f.Value.String() != ""
}

// needBinary skips a test in -short mode, where no binary was built.
func needBinary(t *testing.T) {
	t.Helper()
	if testing.Short() || bin == "" {
		t.Skip("runs petite server processes; not in -short")
	}
}

// fleetYAML is a small fleet: few GPUs, so that jobs queue, preempt and
// contend for the same devices.
const fleetYAML = `pools:
  - name: lab
    kind: onprem
    region: r1
    nodes:
      - {count: 3, prefix: h100, cpu_milli: 64000, memory_mib: 524288,
         gpus: {count: 8, model: H100, memory_mib: 81920}}
      - {count: 2, prefix: a10, cpu_milli: 32000, memory_mib: 262144,
         gpus: {count: 4, model: A10, memory_mib: 24576}}
`

// netLab is the network the servers run in: with root and ip netns, one
// namespace per server joined by veth pairs to a bridge (taking a veth down
// cuts the server off from every other and from the clients); elsewhere,
// loopback and no partitions.
type netLab struct {
	tag    string // short, unique to this process: device names are <= 15 bytes
	subnet string // "10.231.X"
	ok     bool   // namespaces in use
	why    string // why not
}

// labs counts the networks made by this process.
var labs atomic.Int32

// newNetLab sets the bridge up, or says why partitions are unavailable.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	pid, n := os.Getpid(), labs.Add(1)
	// Names new to each cluster: a namespace's veth outlives its deletion
	// for a moment.
	l := &netLab{tag: fmt.Sprintf("pc%d-%d", pid%100000, n%100), subnet: fmt.Sprintf("10.231.%d", (pid+int(n))%250)}
	switch {
	case os.Geteuid() != 0:
		l.why = "not root"
	default:
		if _, err := exec.LookPath("ip"); err != nil {
			l.why = "no ip command (iproute2)"
		}
	}
	if l.why == "" {
		err := l.run("link", "add", "name", l.tag+"b", "type", "bridge")
		if err == nil {
			err = errors.Join(l.run("addr", "add", l.subnet+".1/24", "dev", l.tag+"b"), l.run("link", "set", l.tag+"b", "up"))
		}
		if err != nil {
			l.why = fmt.Sprintf("cannot make a bridge: %v", err)
			_ = l.run("link", "del", l.tag+"b")
		}
	}
	if l.why == "" {
		sweepStale(l)
	}
	if l.why != "" {
		t.Logf("chaos: partitions skipped (%s): they need root and ip netns; kills and pauses still run", l.why)
		return l
	}
	l.ok = true
	t.Cleanup(func() { _ = l.run("link", "del", l.tag+"b") })
	return l
}

// staleNS matches the namespaces and bridges of this harness: pc, the
// process id, a counter.
var staleNS = regexp.MustCompile(`^pc(\d+)-\d+[nb]\d*$`)

// sweepStale removes the namespaces and bridges a killed run left behind
// (its process is gone).
func sweepStale(l *netLab) {
	out, _ := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output()
	ns, _ := exec.Command("ip", "netns", "list").Output()
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	for _, line := range strings.Split(string(ns), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	for _, n := range names {
		m := staleNS.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue // a live run's (or a pid taken again: leave it)
		}
		if strings.Contains(n, "b") && !strings.Contains(n[2:], "n") {
			_ = l.run("link", "del", n)
		} else {
			_ = l.run("netns", "del", n)
		}
	}
}

func (l *netLab) run(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *netLab) ns(i int) string   { return fmt.Sprintf("%sn%d", l.tag, i) }
func (l *netLab) host(i int) string { return fmt.Sprintf("%sh%d", l.tag, i) }
func (l *netLab) ip(i int) string   { return fmt.Sprintf("%s.%d", l.subnet, 10+i) }

// addServer makes server i's namespace and its link to the bridge.
func (l *netLab) addServer(t *testing.T, i int) {
	t.Helper()
	ns, h := l.ns(i), l.host(i)
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", h, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"link", "set", h, "master", l.tag + "b", "up"},
		{"-n", ns, "addr", "add", l.ip(i) + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	}
	t.Cleanup(func() { _ = l.run("link", "del", h); _ = l.run("netns", "del", ns) })
	for _, s := range steps {
		if err := l.run(s...); err != nil {
			t.Fatalf("chaos: network namespace of server %d: %v", i, err)
		}
	}
}

// cut takes server i's link down (true) or up again (false).
func (l *netLab) cut(i int, down bool) error {
	st := "up"
	if down {
		st = "down"
	}
	return l.run("link", "set", l.host(i), st)
}

// srv is one petite server process.
type srv struct {
	id       string
	ns       string // network namespace, "" on loopback
	args     []string
	url      string
	log      string // its stdout and stderr, appended across restarts
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	paused   bool
	isolated bool
}

// cluster is n petite server processes, each with its own data dir.
type cluster struct {
	t    *testing.T
	lab  *netLab
	srvs []*srv
	// agents run in namespace slots 10, 11, ... (agent_test.go).
	agents []*srv
}

// newCluster starts n servers bootstrapping one cluster and waits until
// every one answers its health check.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return newClusterWith(t, n, nil)
}

// newClusterWith is newCluster with prepare called on each server's data
// dir (made, empty) before it starts.
func newClusterWith(t *testing.T, n int, prepare func(i int, dataDir string)) *cluster {
	t.Helper()
	return newClusterOpts(t, n, clusterOpts{prepare: prepare})
}

// clusterOpts shape a cluster: a hook on each data dir, another fleet,
// more server flags.
type clusterOpts struct {
	prepare func(i int, dataDir string)
	fleet   string
	args    []string
}

func newClusterOpts(t *testing.T, n int, o clusterOpts) *cluster {
	t.Helper()
	prepare := o.prepare
	needBinary(t)
	dir := t.TempDir()
	fleet := filepath.Join(dir, "fleet.yaml")
	if o.fleet == "" {
		o.fleet = fleetYAML
	}
	if err := os.WriteFile(fleet, []byte(o.fleet), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, lab: newNetLab(t)}
	raft := make([]string, n)
	https := make([]string, n)
	for i := range n {
		if c.lab.ok {
			c.lab.addServer(t, i)
			raft[i], https[i] = c.lab.ip(i)+":4647", c.lab.ip(i)+":4646"
		} else {
			raft[i], https[i] = freePort(t), freePort(t)
		}
	}
	var peers []string
	for i := range n {
		peers = append(peers, "--peer", fmt.Sprintf("s%d=%s", i, raft[i]))
	}
	for i := range n {
		s := &srv{id: fmt.Sprintf("s%d", i), url: "http://" + https[i], log: filepath.Join(dir, fmt.Sprintf("s%d.log", i))}
		s.args = append([]string{"server", "--id", s.id, "--data-dir", filepath.Join(dir, s.id),
			"--raft-addr", raft[i], "--http", https[i], "--bootstrap", "--fleet", fleet,
			"--policy", "best-fit", "--log-level", "warn"}, peers...)
		s.args = append(s.args, o.args...)
		if c.lab.ok {
			// Off loopback the API would be open to anyone: the harness's
			// namespaces are reachable from this machine only.
			s.ns = c.lab.ns(i)
			s.args = append(s.args, "--insecure")
		}
		c.srvs = append(c.srvs, s)
	}
	t.Cleanup(c.stop)
	for i, s := range c.srvs {
		if prepare != nil {
			if err := os.MkdirAll(s.dataDir(), 0o755); err != nil {
				t.Fatal(err)
			}
			prepare(i, s.dataDir())
		}
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
	}
	c.waitHealthy(60 * time.Second)
	return c
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// dataDir is the server's --data-dir.
func (s *srv) dataDir() string {
	for i, a := range s.args {
		if a == "--data-dir" {
			return s.args[i+1]
		}
	}
	return ""
}

// start runs the server process on its data dir.
func (s *srv) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("server %s log: %w", s.id, err)
	}
	var cmd *exec.Cmd
	if s.ns != "" {
		// ip netns exec execs the binary: the process is petite itself.
		cmd = exec.Command("ip", append([]string{"netns", "exec", s.ns, bin}, s.args...)...)
	} else {
		cmd = exec.Command(bin, s.args...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start server %s: %w", s.id, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	s.cmd, s.done, s.paused = cmd, done, false
	return nil
}

// kill sends SIGKILL: no clean shutdown, the data dir as the crash left it.
func (s *srv) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// running reports whether the process is up (paused counts as up).
func (s *srv) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false // it exited on its own
	default:
		return true
	}
}

// pause stops (true) or continues (false) the process.
func (s *srv) pause(stop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.paused == stop {
		return
	}
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	_ = s.cmd.Process.Signal(sig)
	s.paused = stop
}

// stop kills every server (continuing paused ones first).
func (c *cluster) stop() {
	for _, s := range c.srvs {
		s.pause(false)
		s.kill()
	}
}

// heal ends every fault: links up, paused servers continued, killed ones
// started again.
func (c *cluster) heal() {
	for i, s := range c.srvs {
		if s.isolated {
			if err := c.lab.cut(i, false); err != nil {
				c.t.Errorf("heal: %v", err)
			}
			s.isolated = false
		}
		s.pause(false)
		if !s.running() {
			if err := s.start(); err != nil {
				c.t.Errorf("heal: %v", err)
			}
		}
	}
	for k, a := range c.agents {
		if a.isolated {
			if err := c.lab.cut(10+k, false); err != nil {
				c.t.Errorf("heal: %v", err)
			}
			a.isolated = false
		}
		if !a.running() {
			if err := a.start(); err != nil {
				c.t.Errorf("heal: %v", err)
			}
		}
	}
}

// httpClient is the harness's HTTP client: short timeouts, so that a
// request to a cut-off or paused server ends as an unknown outcome.
var httpClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
	DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
	MaxIdleConnsPerHost: 16,
}}

func (c *cluster) client(i int) *api.Client {
	cl, err := api.NewClient(c.srvs[i].url)
	if err != nil {
		c.t.Fatal(err)
	}
	cl.HTTP, cl.Retry = httpClient, 500*time.Millisecond
	return cl
}

// health returns what server i says of itself, or an error.
func (c *cluster) health(i int) (api.Health, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.client(i).Health(ctx)
}

// leader returns the index of the server most servers name as leader, or
// -1 when none is known.
func (c *cluster) leader() int {
	votes := map[string]int{}
	for i := range c.srvs {
		if h, err := c.health(i); err == nil && h.Leader != "" {
			votes[h.Leader]++
		}
	}
	best, n := -1, 0
	for i, s := range c.srvs {
		if votes[s.id] > n {
			best, n = i, votes[s.id]
		}
	}
	return best
}

// waitHealthy waits until every server answers 200 on /v1/health.
func (c *cluster) waitHealthy(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		bad := -1
		for i := range c.srvs {
			if h, err := c.health(i); err != nil || h.Status != "ok" {
				bad = i
				break
			}
		}
		if bad < 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("server %s not healthy after %s; its log:\n%s", c.srvs[bad].id, d, tail(c.srvs[bad].log, 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get reads a path of server i into out (a []byte pointer or JSON target).
func (c *cluster) get(i int, path string) ([]byte, error) {
	resp, err := httpClient.Get(c.srvs[i].url + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s on %s: %s: %s", path, c.srvs[i].id, resp.Status, b)
	}
	return b, nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
