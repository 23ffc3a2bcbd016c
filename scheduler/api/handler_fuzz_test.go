package api

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"petite/scheduler/server"
)

// FuzzParseJobSpec feeds the job-spec decoder arbitrary bytes: it never
// panics, refuses with a *SpecError, and a spec it takes makes a job that
// passes the scheduler's validation (or a SpecError naming why not).
func FuzzParseJobSpec(f *testing.F) {
	for _, s := range []string{
		"name: train\nkind: training\ncount: 2\ntask: {gpus: 8, models: [H100], command: [python, train.py]}\n",
		`{"id":"a","kind":"inference","count":3,"min_replicas":1,"task":{"gpus":1,"gpu_milli":500}}`,
		"task:\n  gpus: 1\n  constraints: [{key: zone, op: in, values: [a]}]\n  residency: [eu]\n",
		"walltime: 2h\npriority: 10\ncheckpointable: true\npreemptible: true\ntask: {cpu_milli: 100}\n",
		"task: {vram: 1}\n", "count: two\n", "a: &a [*a]\n", "---\n---\n", "id: ../x\n", "task: !!binary aGk=\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseJobSpec(bytes.NewReader(data), "fuzz.yaml")
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("not a SpecError: %T %v", err, err)
			}
			return
		}
		job, err := spec.Job()
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("not a SpecError: %T %v", err, err)
			}
			return
		}
		if job.ID == "" {
			job.ID = "named-by-the-server"
		}
		if err := job.Validate(); err != nil {
			t.Fatalf("a job the spec accepted does not validate: %v", err)
		}
	})
}

// fuzzRoutes are the endpoints that read a body. Adding a raft peer is
// left out: a valid body adds a voter that does not exist, and the one
// server loses its quorum (an admin's act, not a decoder's).
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1/jobs"},
	{"POST", "/v1/jobs/plan"},
	{"POST", "/v1/jobs/j0/finish"},
	{"POST", "/v1/nodes/n0/state"},
	{"POST", "/v1/agents/register"},
	{"POST", "/v1/agents/n0/heartbeat"},
	{"POST", "/v1/operator/snapshot"},
	{"POST", "/v1/nodes/n0/retire"},
	{"POST", "/ui/login"},
}

// FuzzHandlerBodies sends arbitrary bodies to every endpoint that reads
// one (the job spec, finish, node state, the agents' registration and
// heartbeat decoders, snapshot restore, a node's retirement date, the web
// page's sign-in form), on a live one-server cluster:
// never a 5xx, never a panic.
func FuzzHandlerBodies(f *testing.F) {
	seeds := []string{
		"id: j0\ntask: {gpus: 1}\n", `{"tasks":[0]}`, `{"failed":true}`, `{"state":"draining"}`, `{"state":"ready"}`,
		`{"node":{"name":"n0","pool":"lab","gpus":[{"model":"H100"}]},"addr":"http://127.0.0.1:1"}`,
		`{"tasks":[{"job":"j0","task":0,"gen":1,"state":"running"}]}`,
		`{"tasks":[{"job":"j0","task":0,"gen":1,"state":"exited","exit_code":0}]}`,
		`{"v":1}`, "", "null", "[]", `{"tasks":null}`,
		`{"at":"now"}`, `{"at":"2099-01-01T00:00:00Z"}`, `{"cancel":true}`, "token=ptk_x",
	}
	for i, s := range seeds {
		for r := range fuzzRoutes {
			if (i+r)%3 == 0 {
				f.Add(uint8(r), []byte(s))
			}
		}
	}
	pools, nodes := testFleet(2)
	d, err := Start(server.Config{ID: "s0", DataDir: f.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true,
		Pools: pools, Nodes: nodes, Policy: "best-fit", Fast: true}, "127.0.0.1:0", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := d.Ready(ctx); err != nil {
		f.Fatal(err)
	}
	h := NewHandler(d.Server, nil)
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		req := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.WithContext(ctx))
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, body, w.Code, w.Body.String())
		}
	})
}
