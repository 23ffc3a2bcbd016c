package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/server"
	"petite/scheduler/state"
)

// hostile is one hostile request and the answers it may get: never a 5xx,
// never a hang, and (Reject) nothing written to the log.
type hostile struct {
	name   string
	method string
	path   string
	header map[string]string
	body   func() []byte
	// want lists the statuses allowed.
	want []int
	// field, when set, must be named by the error.
	field string
}

func repeat(s string, n int) func() []byte {
	return func() []byte { return []byte(strings.Repeat(s, n)) }
}

func text(s string) func() []byte { return func() []byte { return []byte(s) } }

// nested is depth opening brackets, a value and as many closing ones.
func nested(prefix, open, close, suffix string, depth int) func() []byte {
	return func() []byte {
		return []byte(prefix + strings.Repeat(open, depth) + "1" + strings.Repeat(close, depth) + suffix)
	}
}

// aliasBomb is YAML whose aliases expand to 9^9 strings.
func aliasBomb() []byte {
	var b strings.Builder
	b.WriteString("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("task: {gpus: 1, command: *a8}\n")
	return []byte(b.String())
}

func ints(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "0"
	}
	return strings.Join(parts, ",")
}

var (
	bad      = []int{http.StatusBadRequest}
	tooLarge = []int{http.StatusRequestEntityTooLarge}
	notFound = []int{http.StatusNotFound}
	oversize = repeat("x", MaxSpecBytes+1)
)

// hostileCases are the requests the suite sends. Every one is refused:
// none may change the state.
func hostileCases() []hostile {
	cs := []hostile{
		// Oversize bodies, on every endpoint that reads one.
		{name: "oversize spec", method: "POST", path: "/v1/jobs", body: oversize, want: tooLarge},
		{name: "oversize plan", method: "POST", path: "/v1/jobs/plan", body: oversize, want: tooLarge},
		{name: "oversize finish", method: "POST", path: "/v1/jobs/j/finish", body: oversize, want: tooLarge},
		{name: "oversize node state", method: "POST", path: "/v1/nodes/n0/state", body: oversize, want: tooLarge},
		{name: "oversize add peer", method: "POST", path: "/v1/operator/raft/peers", body: oversize, want: tooLarge},
		{name: "oversize agent register", method: "POST", path: "/v1/agents/register", body: oversize, want: tooLarge},
		{name: "oversize heartbeat", method: "POST", path: "/v1/agents/n0/heartbeat", body: oversize, want: tooLarge},
		// The snapshot restore's cap (MaxBackupBytes, 256 MiB) is the same
		// MaxBytesReader; a body that size is too much for a unit test.
		{name: "snapshot restore of garbage", method: "POST", path: "/v1/operator/snapshot", body: repeat("x", 4096), want: bad},
		{name: "oversize spec, chunked", method: "POST", path: "/v1/jobs", header: map[string]string{"Transfer-Encoding": "chunked"}, body: oversize, want: tooLarge},

		// Malformed or unknown-field specs name the field.
		{name: "unknown field", method: "POST", path: "/v1/jobs", body: text("task: {gpus: 1, vram: 3}\n"), want: bad, field: "task.vram"},
		{name: "unknown top-level field, JSON", method: "POST", path: "/v1/jobs", body: text(`{"task":{"gpus":1},"bogus":1}`), want: bad, field: "bogus"},
		{name: "wrong type", method: "POST", path: "/v1/jobs", body: text("count: two\ntask: {gpus: 1}\n"), want: bad, field: "count"},
		{name: "negative GPUs", method: "POST", path: "/v1/jobs", body: text("task: {gpus: -1}\n"), want: bad, field: "task.gpus"},
		{name: "GPUs beyond int", method: "POST", path: "/v1/jobs", body: text("task: {gpus: 99999999999999999999}\n"), want: bad, field: "task.gpus"},
		{name: "priority beyond int32", method: "POST", path: "/v1/jobs", body: text("priority: 1099511627776\ntask: {gpus: 1}\n"), want: bad, field: "priority"},
		{name: "repeated field", method: "POST", path: "/v1/jobs", body: text("count: 1\ncount: 2\ntask: {gpus: 1}\n"), want: bad, field: "count"},
		{name: "second document", method: "POST", path: "/v1/jobs", body: text("task: {gpus: 1}\n---\ntask: {gpus: 2}\n"), want: bad},
		{name: "empty body", method: "POST", path: "/v1/jobs", body: text(""), want: bad},
		{name: "binary body", method: "POST", path: "/v1/jobs", body: text("\x00\xff\xfe\x01garbage\x00"), want: bad},
		{name: "invalid UTF-8 in a name", method: "POST", path: "/v1/jobs", body: text("name: \"\xff\xfe\"\ntask: {gpus: 1}\n"), want: bad},
		{name: "id with a path", method: "POST", path: "/v1/jobs", body: text("id: ../../etc/passwd\ntask: {gpus: 1}\n"), want: bad, field: "id"},
		{name: "YAML alias bomb", method: "POST", path: "/v1/jobs", body: aliasBomb, want: bad},
		{name: "YAML tag to a Go type", method: "POST", path: "/v1/jobs", body: text("task: !!python/object:os.system {gpus: 1}\n"), want: bad},

		// Deep nesting and huge arrays.
		{name: "deep JSON nesting", method: "POST", path: "/v1/jobs", body: nested(`{"task":{"gpus":1,"command":`, "[", "]", "}}", 200000), want: bad},
		{name: "deep YAML nesting", method: "POST", path: "/v1/jobs", body: nested("task:\n  command: ", "[", "]", "\n", 200000), want: bad},
		{name: "deep JSON nesting, finish", method: "POST", path: "/v1/jobs/j/finish", body: nested(`{"tasks":`, "[", "]", "}", 200000), want: bad},
		{name: "deep JSON nesting, heartbeat", method: "POST", path: "/v1/agents/n0/heartbeat", body: nested(`{"x":`, "[", "]", "}", 200000), want: []int{http.StatusBadRequest, http.StatusNotFound}},
		{name: "huge model list", method: "POST", path: "/v1/jobs", body: func() []byte {
			return []byte("task: {gpus: 1, models: [" + strings.TrimSuffix(strings.Repeat("Z1,", 300000), ",") + "]}\n")
		}, want: bad, field: "task.models"},
		{name: "huge command", method: "POST", path: "/v1/jobs", body: func() []byte {
			return []byte(`{"task":{"gpus":1,"command":[` + strings.TrimSuffix(strings.Repeat(`"x",`, 100000), ",") + `]}}`)
		}, want: bad, field: "task.command"},
		{name: "huge constraint values", method: "POST", path: "/v1/jobs", body: func() []byte {
			return []byte(`{"task":{"gpus":1,"constraints":[{"key":"zone","values":[` + strings.TrimSuffix(strings.Repeat(`"z",`, 100000), ",") + `]}]}}`)
		}, want: bad, field: "task.constraints[0].values"},
		{name: "huge gang", method: "POST", path: "/v1/jobs", body: text("count: 100000000\ntask: {gpus: 1}\n"), want: bad, field: "count"},
		{name: "huge task list, finish of an unknown job", method: "POST", path: "/v1/jobs/nobody/finish", body: func() []byte {
			return []byte(`{"tasks":[` + ints(400000) + `]}`)
		}, want: notFound},

		// Wrong content types and methods.
		{name: "form body", method: "POST", path: "/v1/jobs", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: text("task=gpus&count=1"), want: bad},
		{name: "multipart body", method: "POST", path: "/v1/jobs", header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, body: text("--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--x--\r\n"), want: bad},
		{name: "XML node state", method: "POST", path: "/v1/nodes/n0/state", header: map[string]string{"Content-Type": "application/xml"}, body: text("<state>down</state>"), want: bad},
		{name: "node state down", method: "POST", path: "/v1/nodes/n0/state", body: text(`{"state":"down"}`), want: bad, field: "state"},
		{name: "node state unknown field", method: "POST", path: "/v1/nodes/n0/state", body: text(`{"state":"ready","force":true}`), want: bad},
		{name: "peer without address", method: "POST", path: "/v1/operator/raft/peers", body: text(`{"id":"x"}`), want: bad, field: "id"},
		{name: "PUT on jobs", method: "PUT", path: "/v1/jobs", body: text("{}"), want: notFound},
		{name: "TRACE", method: "TRACE", path: "/v1/jobs", want: notFound},
		{name: "id with a control character", method: "POST", path: "/v1/jobs", body: text("id: \"a\\u0000b\"\ntask: {gpus: 1}\n"), want: bad, field: "id"},
		{name: "name with a slash", method: "POST", path: "/v1/jobs", body: text("name: a/b\ntask: {gpus: 1}\n"), want: bad, field: "name"},
		{name: "id of dots", method: "POST", path: "/v1/jobs", body: text("id: ..\ntask: {gpus: 1}\n"), want: bad, field: "id"},
		{name: "bad idempotency key", method: "POST", path: "/v1/jobs", header: map[string]string{IdempotencyHeader: strings.Repeat("k", 1000)}, body: text("task: {gpus: 1}\n"), want: bad, field: IdempotencyHeader},
		{name: "idempotency key with spaces", method: "POST", path: "/v1/jobs", header: map[string]string{IdempotencyHeader: "a b"}, body: text("task: {gpus: 1}\n"), want: bad, field: IdempotencyHeader},

		// Path and query tricks in the log, snapshot and job endpoints.
		{name: "job id traversal", method: "GET", path: "/v1/jobs/..%2F..%2Fetc%2Fpasswd", want: notFound},
		{name: "job logs traversal", method: "GET", path: "/v1/jobs/..%2F..%2Fetc%2Fpasswd/logs", want: notFound},
		{name: "job logs task traversal", method: "GET", path: "/v1/jobs/j/logs?task=../../etc/passwd", want: bad, field: "task"},
		{name: "job logs stream traversal", method: "GET", path: "/v1/jobs/j/logs?stream=../../etc/passwd", want: bad, field: "stream"},
		{name: "job logs negative tail", method: "GET", path: "/v1/jobs/j/logs?tail=-1", want: bad, field: "tail"},
		{name: "job logs huge task", method: "GET", path: "/v1/jobs/j/logs?task=99999999999999999999999", want: bad, field: "task"},
		{name: "snapshot with a path", method: "GET", path: "/v1/snapshot/../../etc/passwd", want: []int{http.StatusMovedPermanently, http.StatusNotFound}},
		{name: "snapshot, encoded dots", method: "GET", path: "/v1/snapshot/%2e%2e/%2e%2e/etc/passwd", want: notFound},
		{name: "operator snapshot with a path", method: "GET", path: "/v1/operator/snapshot/..%2f..%2fetc%2fpasswd", want: []int{http.StatusNotFound, http.StatusMethodNotAllowed}},
		{name: "NUL in a job id", method: "GET", path: "/v1/jobs/a%00b", want: notFound},
		{name: "long path", method: "GET", path: "/v1/jobs/" + strings.Repeat("a", 100000), want: notFound},
		{name: "history with a bad since", method: "GET", path: "/v1/history?since=yesterday", want: bad},
		{name: "history with an unknown format", method: "GET", path: "/v1/history?format=../../etc/passwd", want: bad},
		{name: "huge request id query", method: "GET", path: "/v1/jobs?request_id=" + strings.Repeat("r", 20000), want: []int{http.StatusOK}},
		{name: "headers over the cap", method: "GET", path: "/v1/jobs", header: map[string]string{"X-Junk": strings.Repeat("h", 2<<20)}, want: []int{http.StatusRequestHeaderFieldsTooLarge}},
	}
	return cs
}

// appliedIndex is the raft index the server's state machine applied.
func appliedIndex(d *Daemon) uint64 {
	var at uint64
	d.Server.FSM().Read(func(_ *state.Machine, _ map[string]server.JobRecord, i uint64) { at = i })
	return at
}

// startOne starts a one-server cluster with the API options given.
func startOne(t *testing.T, opts ...Option) *Daemon {
	t.Helper()
	pools, nodes := testFleet(2)
	d, err := Start(server.Config{ID: "s0", DataDir: t.TempDir(), RaftAddr: freeAddr(t), Bootstrap: true,
		Pools: pools, Nodes: nodes, Policy: "best-fit", Fast: true}, freeAddr(t), nil, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, d.Ready(ctx))
	return d
}

// Every hostile request gets a 4xx with a JSON error (naming the field
// where one is at fault), in bounded time; the server stays healthy and
// writes nothing to its log for any of them.
func TestHostileRequests(t *testing.T) {
	d := startOne(t)
	cl := &http.Client{Timeout: 10 * time.Second}
	// Settle: the leader's own entries (its address, the fleet) are in.
	require.Eventually(t, func() bool {
		a := appliedIndex(d)
		time.Sleep(100 * time.Millisecond)
		return a == appliedIndex(d)
	}, waitFor, 10*time.Millisecond)
	before := appliedIndex(d)
	counts := map[int]int{}
	for _, hc := range hostileCases() {
		t.Run(hc.name, func(t *testing.T) {
			var body io.Reader
			if hc.body != nil {
				body = bytes.NewReader(hc.body())
			}
			req, err := http.NewRequest(hc.method, d.URL+hc.path, body)
			require.NoError(t, err)
			for k, v := range hc.header {
				if k == "Transfer-Encoding" {
					req.ContentLength = -1
					req.TransferEncoding = []string{v}
					continue
				}
				req.Header.Set(k, v)
			}
			start := time.Now()
			resp, err := cl.Do(req)
			require.NoError(t, err, "no answer (a hang or a dropped connection)")
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			counts[resp.StatusCode]++
			assert.Less(t, resp.StatusCode, 500, "%s", b)
			assert.Contains(t, hc.want, resp.StatusCode, "%s", b)
			assert.Less(t, time.Since(start), 5*time.Second)
			if resp.StatusCode >= 400 && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				var eb ErrorBody
				require.NoError(t, decodeStrictJSON(b, &eb), "error body: %s", b)
				require.NotNil(t, eb.Error)
				assert.NotEmpty(t, eb.Error.Code)
				if hc.field != "" {
					assert.Equal(t, hc.field, eb.Error.Field, "%s", eb.Error.Message)
				}
			}
		})
	}
	assert.Equal(t, before, appliedIndex(d), "a refused request wrote to the log")
	h, err := NewClient(d.URL)
	require.NoError(t, err)
	_, err = h.Health(context.Background())
	require.NoError(t, err, "the server is still healthy")
	t.Logf("%d hostile requests: answers by status %v", len(hostileCases()), counts)
}

// decodeStrictJSON decodes an error body, refusing anything else.
func decodeStrictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// A slow-loris client, dribbling its headers or its body, is cut off by
// the server's timeouts; the server keeps serving others and writes
// nothing.
func TestHostileSlowClients(t *testing.T) {
	saved := DefaultTimeouts
	DefaultTimeouts = Timeouts{ReadHeader: 300 * time.Millisecond, Read: 600 * time.Millisecond, Idle: 600 * time.Millisecond}
	d := startOne(t)
	DefaultTimeouts = saved
	host := strings.TrimPrefix(d.URL, "http://")
	before := appliedIndex(d)

	for _, tc := range []struct {
		name  string
		first string // sent at once
		drip  string // then a byte every 100 ms
	}{
		{"slow headers", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n", strings.Repeat("X-A: b\r\n", 100)},
		{"slow body", "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", strings.Repeat("t", 1000)},
		{"idle keep-alive", "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", host)
			require.NoError(t, err)
			defer conn.Close()
			start := time.Now()
			_, err = conn.Write([]byte(tc.first))
			require.NoError(t, err)
			closed := make(chan struct{})
			go func() {
				// Read until the server closes the connection.
				_, _ = io.Copy(io.Discard, bufio.NewReader(conn))
				close(closed)
			}()
			for i := 0; i < len(tc.drip); i++ {
				select {
				case <-closed:
					i = len(tc.drip)
					continue
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := conn.Write([]byte{tc.drip[i]}); err != nil {
					break
				}
			}
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("the server kept a slow client's connection open")
			}
			assert.Less(t, time.Since(start), 3*time.Second)
		})
	}
	h, err := NewClient(d.URL)
	require.NoError(t, err)
	_, err = h.Health(context.Background())
	require.NoError(t, err)
	assert.Equal(t, before, appliedIndex(d))
}

// A flood from one client is answered 429 with Retry-After, never a 5xx;
// another client is served meanwhile, and the flooder again once it waits.
func TestHostileFlood(t *testing.T) {
	d := startOne(t, WithRateLimit(RateLimit{PerSecond: 20, Burst: 20}))
	var mu sync.Mutex
	counts := map[int]int{}
	retryAfter := ""
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				resp, err := http.Get(d.URL + "/v1/health")
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				counts[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests {
					retryAfter = resp.Header.Get("Retry-After")
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("flood of 200 requests: %v", counts)
	assert.Positive(t, counts[http.StatusTooManyRequests])
	assert.Positive(t, counts[http.StatusOK])
	assert.Equal(t, 200, counts[http.StatusOK]+counts[http.StatusTooManyRequests], "only 200 and 429")
	assert.Equal(t, "1", retryAfter)

	// Another address is another client: 127.0.0.2 is loopback too.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	resp, err := other.Get(d.URL + "/v1/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "another client is not limited")

	time.Sleep(time.Second)
	resp, err = http.Get(d.URL + "/v1/health")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "served again after Retry-After")
}
