package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"time"

	"petite/scheduler"
	"petite/scheduler/server"
	"petite/scheduler/state"
)

// ForwardedHeader marks a request a follower forwarded to the leader; a
// forwarded request is never forwarded again.
const ForwardedHeader = "X-Petite-Forwarded-By"

// maxBody caps every request body.
const maxBody = MaxSpecBytes

// handler serves the API of one server.
type handler struct {
	s   *server.Server
	log *slog.Logger
	mux *routeMux         // every route behind its permission check (auth.go)
	sec *Security         // nil: open
	fwd http.RoundTripper // forwards to the leader; nil: the default
	est estimates         // queued jobs' start estimates (estimate.go)
}

// NewHandler returns the /v1/ API of a server. Writes, and reads without
// ?stale=true, are served by the leader: a follower forwards them.
func NewHandler(s *server.Server, log *slog.Logger, opts ...Option) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := applyOptions(opts)
	h := &handler{s: s, log: log, sec: o.sec, fwd: o.sec.forwardTransport()}
	h.mux = newRouteMux(h)
	h.route("GET /v1/health", h.health, local)
	h.route("GET /v1/jobs", h.listJobs, read)
	h.route("POST /v1/jobs", h.submit, write)
	h.route("POST /v1/jobs/plan", h.plan, write)
	h.route("GET /v1/jobs/{id}", h.getJob, read)
	h.route("DELETE /v1/jobs/{id}", h.cancel, write)
	h.route("POST /v1/jobs/{id}/finish", h.finish, write)
	h.route("GET /v1/nodes", h.listNodes, read)
	h.route("GET /v1/nodes/{name}", h.getNode, read)
	h.route("POST /v1/nodes/{name}/state", h.setNodeState, write)
	h.routeRetire() // retire.go
	h.route("GET /v1/pools", h.listPools, read)
	h.route("GET /v1/operator/raft/peers", h.peers, write) // the leader's view
	h.route("POST /v1/operator/raft/peers", h.addPeer, write)
	h.route("DELETE /v1/operator/raft/peers/{id}", h.removePeer, write)
	h.route("GET /v1/snapshot", h.snapshot, read)
	h.routeAgents()
	h.routeObservability()
	h.operationsRoutes() // backup and restore, history (backup.go, history.go)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
	})
	return h.mux
}

// Where a request is served.
type route int

const (
	local route = iota // by the server asked
	read               // by the leader after a barrier; locally with ?stale=true
	write              // by the leader
)

func (h *handler) route(pattern string, fn func(http.ResponseWriter, *http.Request), where route) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		where := where // this request's: a stale read must not make later ones stale
		if where == read && r.URL.Query().Get("stale") == "true" {
			where = local
		}
		if where != local && !h.s.IsLeader() {
			h.forward(w, r)
			return
		}
		if where == read {
			if err := h.s.Barrier(r.Context()); err != nil {
				writeErr(w, h.commitError(err))
				return
			}
		}
		fn(w, r)
	})
}

// forward sends a request to the leader's API, once.
func (h *handler) forward(w http.ResponseWriter, r *http.Request) {
	if by := r.Header.Get(ForwardedHeader); by != "" {
		writeErr(w, &Error{Status: http.StatusServiceUnavailable, Code: CodeNoLeader, Message: fmt.Sprintf("forwarded by %s to %s, which no longer leads", by, h.s.ID())})
		return
	}
	id, addr, ok := h.s.Leader()
	if !ok {
		writeErr(w, &Error{Status: http.StatusServiceUnavailable, Code: CodeNoLeader, Message: "no leader known; retry shortly"})
		return
	}
	target, err := url.Parse(addr)
	if err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: fmt.Sprintf("leader %s recorded a bad address %q", id, addr)})
		return
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(ForwardedHeader, h.s.ID())
			vouch(pr.In, pr.Out) // the caller authenticated here (auth.go)
		},
		Transport: h.fwd,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeErr(w, &Error{Status: http.StatusServiceUnavailable, Code: CodeNoLeader, Message: fmt.Sprintf("forward to leader %s: %v", id, err)})
		},
	}
	p.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // the client has gone; nothing to do
}

func writeErr(w http.ResponseWriter, e *Error) {
	if e.Status == 0 {
		e.Status = http.StatusInternalServerError
	}
	if e.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		// The cluster's moment (an election, a shutdown, a full queue):
		// worth retrying shortly.
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, e.Status, ErrorBody{Error: e})
}

// The codes of raft's faults: each answered 503 with Retry-After, so that
// clients know the cluster, not the request, failed, and when to retry.
const (
	// CodeLeadershipLost: leadership was lost (or a backup restored) while
	// the write was committing; it may or may not have committed.
	CodeLeadershipLost = "leadership_lost"
	// CodeShuttingDown: the server is shutting down; retry on another.
	CodeShuttingDown = "shutting_down"
	// CodeTimeout: the commit was not confirmed in time; it may still commit.
	CodeTimeout = "timeout"
	// CodeOverloaded: too many writes in flight; nothing was written.
	CodeOverloaded = "overloaded"
)

// commitError maps an error of a raft call to an API error.
func (h *handler) commitError(err error) *Error {
	unavailable := func(code, advice string) *Error {
		return &Error{Status: http.StatusServiceUnavailable, Code: code, Message: err.Error() + "; " + advice}
	}
	switch server.FaultOf(err) {
	case server.FaultNotLeader:
		return unavailable(CodeNoLeader, "retry")
	case server.FaultLeadershipLost:
		return unavailable(CodeLeadershipLost, "it may have committed: look before retrying, or retry with the same request id")
	case server.FaultShutdown:
		return unavailable(CodeShuttingDown, "retry on another server")
	case server.FaultTimeout:
		return unavailable(CodeTimeout, "it may still commit: look before retrying")
	case server.FaultOverloaded:
		return unavailable(CodeOverloaded, "nothing was written; retry after a pause")
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()}
}

// applyError maps an error of Apply: a refusal of the state machine is the
// client's; anything else is the cluster's.
func (h *handler) applyError(err error) *Error {
	if errors.Is(err, server.ErrNotLeader) || errors.Is(err, server.ErrCommit) {
		return h.commitError(err)
	}
	return &Error{Status: http.StatusUnprocessableEntity, Code: CodeRefused, Message: err.Error()}
}

// readBody reads a capped body, answering 413 past the cap.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			writeErr(w, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf("body larger than %d bytes", mb.Limit)})
		} else {
			writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("read body: %v", err)})
		}
		return nil, false
	}
	return b, true
}

// decodeJSON decodes a small JSON body strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	b, ok := readBody(w, r)
	if !ok {
		return false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil || d.More() {
		if err == nil {
			err = errors.New("trailing data")
		}
		writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("body: %v", err)})
		return false
	}
	return true
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	hl := Health{Server: h.s.ID(), State: h.s.State()}
	ctx, cancel := context.WithTimeout(r.Context(), 50*time.Millisecond)
	defer cancel()
	if lid, _, ok := h.s.Leader(); ok && h.s.Ready(ctx) == nil {
		hl.Status, hl.Leader = "ok", lid
		writeJSON(w, http.StatusOK, hl)
		return
	}
	hl.Status = "unavailable"
	writeJSON(w, http.StatusServiceUnavailable, hl)
}

// specJob reads a job spec body into a job and its command. A spec
// without an ID gets one made from its name (newID); base is that name,
// empty when the spec named the job.
func specJob(w http.ResponseWriter, r *http.Request) (job scheduler.Job, command []string, base string, ok bool) {
	b, ok := readBody(w, r)
	if !ok {
		return scheduler.Job{}, nil, "", false
	}
	spec, err := ParseJobSpec(bytes.NewReader(b), "")
	if err == nil {
		job, err = spec.Job()
	}
	if err != nil {
		e := &Error{Status: http.StatusBadRequest, Code: CodeInvalidSpec, Message: err.Error()}
		var se *SpecError
		if errors.As(err, &se) {
			e.Field, e.Line = se.Field, se.Line
		}
		writeErr(w, e)
		return scheduler.Job{}, nil, "", false
	}
	if job.ID == "" {
		base = orElse(spec.Name, job.Kind.String())
		job.ID = newID(base)
	}
	return job, spec.Task.Command, base, true
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// idRandom is where newID draws its suffixes (a test makes them collide).
var idRandom io.Reader = rand.Reader

// maxIDDraws bounds the suffixes a submit tries for a job it names: six
// hex digits collide often enough on a busy cluster (thousands of jobs
// make a repeat likely) that a taken one is drawn again, not refused.
const maxIDDraws = 16

// newID makes a job ID from a name and a random suffix.
func newID(name string) string {
	var b [3]byte
	_, _ = io.ReadFull(idRandom, b[:]) // crypto/rand never fails on supported systems
	return name + "-" + hex.EncodeToString(b[:])
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	rid, ok := requestID(w, r)
	if !ok {
		return
	}
	job, command, base, ok := specJob(w, r)
	if !ok {
		return
	}
	if err := h.s.Barrier(r.Context()); err != nil {
		writeErr(w, h.commitError(err))
		return
	}
	if j, ok := h.s.FSM().JobByRequest(rid); rid != "" && ok {
		h.replay(w, j)
		return
	}
	// A name the server drew that is taken (checked here, or refused by
	// the state machine when a submit got in first) is drawn again.
	for draws := 1; ; draws++ {
		retry := base != "" && draws < maxIDDraws
		var taken bool
		h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
			_, taken = m.Job(job.ID)
		})
		if taken && retry {
			job.ID = newID(base)
			continue
		}
		if taken {
			writeErr(w, &Error{Status: http.StatusConflict, Code: CodeConflict, Field: "id", Message: fmt.Sprintf("job %s exists; choose another id or stop it and wait for it to be pruned", job.ID)})
			return
		}
		if _, err := h.s.Submit(r.Context(), job, server.JobRecord{Command: command, RequestID: rid}); err != nil {
			var dup *server.DuplicateError
			if errors.As(err, &dup) {
				h.replay(w, dup.Job)
				return
			}
			if strings.Contains(err.Error(), "already submitted") {
				if retry {
					job.ID = newID(base)
					continue
				}
				writeErr(w, &Error{Status: http.StatusConflict, Code: CodeConflict, Field: "id", Message: err.Error()})
				return
			}
			writeErr(w, h.applyError(err))
			return
		}
		writeJSON(w, http.StatusCreated, SubmitResponse{ID: job.ID, Status: StatusQueued})
		return
	}
}

// plan is the dry run: the job submitted to a copy of the live state and a
// pass run on it. The live state is never touched.
func (h *handler) plan(w http.ResponseWriter, r *http.Request) {
	job, _, _, ok := specJob(w, r)
	if !ok {
		return
	}
	var snap bytes.Buffer
	if err := h.s.FSM().StateSnapshot(&snap); err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()})
		return
	}
	m, err := state.Restore(&snap)
	if err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()})
		return
	}
	now := h.s.Now()
	if _, err := m.Apply(state.Submit{Job: job, At: now}); err != nil {
		writeErr(w, &Error{Status: http.StatusUnprocessableEntity, Code: CodeRefused, Message: err.Error()})
		return
	}
	plan, err := server.Schedule(m.Freeze(), h.s.Policy(), now, mrand.New(mrand.NewPCG(uint64(now), 1)))
	if err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()})
		return
	}
	out := PlanResponse{Job: job.ID, Evict: plan.Evict}
	for _, p := range plan.Place {
		if p.Job == job.ID {
			out.Placed, out.Tasks = true, p.Tasks
		} else {
			out.Others++
		}
	}
	for _, u := range plan.Unplaced {
		if u.Job == job.ID {
			out.Pending = &Pending{Why: u.Why, Reasons: u.Reasons}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) jobView(info state.JobInfo, rec server.JobRecord) Job {
	j := Job{
		ID: info.Job.ID, Status: StatusName(info.Status), Kind: info.Job.Kind.String(),
		Tenant: info.Job.Tenant, Priority: info.Job.Priority, Count: info.Job.Count,
		Task: info.Job.Task, Command: rec.Command, RequestID: rec.RequestID, Tasks: info.Tasks, Done: info.Done,
		Submitted: info.Job.Submitted, Started: info.Started, Ended: info.Ended, Requeues: info.Requeues,
	}
	if info.Status == state.Pending {
		switch u, ok := h.s.Unplaced(info.Job.ID); {
		case ok:
			j.Pending = &Pending{Why: u.Why, Reasons: u.Reasons}
		case !h.s.IsLeader():
			// A stale read on a follower: the passes run on the leader.
			j.Pending = &Pending{Why: WhyAskLeader}
		default:
			j.Pending = &Pending{Why: WhyNextPass}
		}
	}
	return j
}

func (h *handler) listJobs(w http.ResponseWriter, r *http.Request) {
	var out JobList
	if rid := r.URL.Query().Get("request_id"); rid != "" {
		// The job a submit made, to resolve one whose answer was lost.
		if id, ok := h.s.FSM().JobByRequest(rid); ok {
			h.s.FSM().Read(func(m *state.Machine, recs map[string]server.JobRecord, _ uint64) {
				if info, ok := m.Job(id); ok {
					out.Jobs = append(out.Jobs, h.jobView(info, recs[id]))
				}
			})
		}
		if out.Jobs == nil {
			out.Jobs = []Job{}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	h.s.FSM().Read(func(m *state.Machine, recs map[string]server.JobRecord, _ uint64) {
		for _, info := range m.Jobs() {
			out.Jobs = append(out.Jobs, h.jobView(info, recs[info.Job.ID]))
		}
	})
	if out.Jobs == nil {
		out.Jobs = []Job{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var out Job
	var ok bool
	h.s.FSM().Read(func(m *state.Machine, recs map[string]server.JobRecord, _ uint64) {
		var info state.JobInfo
		if info, ok = m.Job(id); ok {
			out = h.jobView(info, recs[id])
		}
	})
	if !ok {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no job %q", id)})
		return
	}
	h.estimate(r.Context(), &out)
	writeJSON(w, http.StatusOK, out)
}

// jobExists answers 404 for an unknown job, after a barrier so a job just
// submitted through another server is seen.
func (h *handler) jobExists(w http.ResponseWriter, r *http.Request, id string) bool {
	if err := h.s.Barrier(r.Context()); err != nil {
		writeErr(w, h.commitError(err))
		return false
	}
	var ok bool
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) { _, ok = m.Job(id) })
	if !ok {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no job %q", id)})
	}
	return ok
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !h.jobExists(w, r, id) {
		return
	}
	if _, err := h.s.Apply(r.Context(), state.Cancel{Job: id, At: h.s.Now()}); err != nil {
		writeErr(w, h.applyError(err))
		return
	}
	h.getJob(w, r)
}

func (h *handler) finish(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req FinishRequest
	if !decodeJSON(w, r, &req) || !h.jobExists(w, r, id) {
		return
	}
	if _, err := h.s.Apply(r.Context(), state.Finish{Job: id, Tasks: req.Tasks, Failed: req.Failed, At: h.s.Now()}); err != nil {
		writeErr(w, h.applyError(err))
		return
	}
	h.getJob(w, r)
}

func nodeView(v scheduler.View, id scheduler.NodeID) Node {
	n := v.Node(id)
	u := v.Usage(id)
	st, _ := n.State.MarshalText()
	out := Node{
		Name: n.Name, Pool: n.Pool, Rack: n.Rack, State: string(st), GPUs: len(n.GPUs),
		GPUMilliFree: u.GPUFree, GPUMilliCap: u.GPUCap, CPUMilliFree: u.CPUFree, CPUMilliCap: u.CPUCap,
		MemMiBFree: u.MemFree, MemMiBCap: u.MemCap, Withheld: v.UnhealthyDevices(id),
	}
	if len(n.GPUs) > 0 {
		out.Model = n.GPUs[0].Model
	}
	if at := v.PoolOf(id).RetireAt; at > 0 {
		out.RetireAt = unixRFC3339(at) // a node's own date replaces it (retire.go)
	}
	return out
}

func (h *handler) listNodes(w http.ResponseWriter, r *http.Request) {
	out := NodeList{Nodes: []Node{}}
	pool := r.URL.Query().Get("pool")
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
		v := m.Cluster()
		for i := range v.NumNodes() {
			if n := nodeView(v, scheduler.NodeID(i)); pool == "" || n.Pool == pool {
				out.Nodes = append(out.Nodes, n)
			}
		}
	})
	for i := range out.Nodes {
		out.Nodes[i] = h.withHealth(out.Nodes[i]) // agent.go
	}
	withRetire(out.Nodes, h.s.FSM().RetireDates())
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var out Node
	var ok bool
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
		var id scheduler.NodeID
		if id, ok = m.Cluster().NodeByName(name); ok {
			out = nodeView(m.Cluster(), id)
		}
	})
	if !ok {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no node %q", name)})
		return
	}
	out = h.withHealth(out) // agent.go
	one := []Node{out}
	withRetire(one, h.s.FSM().RetireDates())
	writeJSON(w, http.StatusOK, one[0])
}

// knownNode answers 404 and returns false unless the committed state (read
// after a barrier, so a node registered before an election is seen) has
// the node; a failed barrier answers as a commit error.
func (h *handler) knownNode(w http.ResponseWriter, r *http.Request, name string) bool {
	if err := h.s.Barrier(r.Context()); err != nil {
		writeErr(w, h.commitError(err))
		return false
	}
	var ok bool
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) { _, ok = m.Cluster().NodeByName(name) })
	if !ok {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no node %q", name)})
	}
	return ok
}

func (h *handler) setNodeState(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req NodeStateRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	// Down and retired come from agents and the retirement dates, later;
	// an admin drains a node or makes it ready again.
	if req.State != "draining" && req.State != "ready" {
		writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "state", Message: fmt.Sprintf("state: want draining or ready, got %q", req.State)})
		return
	}
	st, err := scheduler.ParseNodeState(req.State)
	if err != nil {
		writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "state", Message: err.Error()})
		return
	}
	if !h.knownNode(w, r, name) {
		return
	}
	if _, err := h.s.Apply(r.Context(), state.SetNodeState{Node: name, State: st, At: h.s.Now()}); err != nil {
		writeErr(w, h.applyError(err))
		return
	}
	h.getNode(w, r)
}

func (h *handler) listPools(w http.ResponseWriter, r *http.Request) {
	out := PoolList{Pools: []Pool{}}
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) {
		v := m.Cluster()
		idx := map[string]int{}
		for _, p := range v.Pools() {
			idx[p.Name] = len(out.Pools)
			out.Pools = append(out.Pools, Pool{Name: p.Name, Kind: p.Kind.String(), Region: p.Region, Zone: p.Zone})
		}
		for i := range v.NumNodes() {
			n := nodeView(v, scheduler.NodeID(i))
			j, ok := idx[n.Pool]
			if !ok {
				continue
			}
			p := &out.Pools[j]
			p.Nodes++
			if n.State == "ready" {
				p.Ready++
			}
			p.GPUs += n.GPUs
			p.GPUMilliFree += n.GPUMilliFree
			p.GPUMilliCap += n.GPUMilliCap
		}
	})
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) peers(w http.ResponseWriter, r *http.Request) {
	ps, err := h.s.Peers()
	if err != nil {
		writeErr(w, h.commitError(err))
		return
	}
	out := PeerList{Peers: []Peer{}}
	for _, p := range ps {
		out.Peers = append(out.Peers, Peer(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) addPeer(w http.ResponseWriter, r *http.Request) {
	var req AddPeerRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.ID == "" || req.Address == "" {
		writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "id", Message: "a peer needs an id and an address (host:port of its raft listener)"})
		return
	}
	if err := h.s.AddPeer(r.Context(), req.ID, req.Address); err != nil {
		writeErr(w, h.commitError(err))
		return
	}
	h.peers(w, r)
}

func (h *handler) removePeer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ps, err := h.s.Peers()
	if err != nil {
		writeErr(w, h.commitError(err))
		return
	}
	if !slices.ContainsFunc(ps, func(p server.PeerStatus) bool { return p.ID == id }) {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no peer %q", id)})
		return
	}
	if err := h.s.RemovePeer(r.Context(), id); err != nil {
		writeErr(w, h.commitError(err))
		return
	}
	h.peers(w, r)
}

// snapshot writes the state machine's own snapshot: the form the
// simulator can start from.
func (h *handler) snapshot(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := h.s.FSM().StateSnapshot(&b); err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes())
}
