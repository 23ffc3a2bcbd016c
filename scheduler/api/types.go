package api

import (
	"time"

	"petite/scheduler"
	"petite/scheduler/state"
)

// The stable error codes of the API.
const (
	CodeBadRequest  = "bad_request"    // malformed body or parameter
	CodeInvalidSpec = "invalid_spec"   // a job spec that does not decode or validate
	CodeTooLarge    = "body_too_large" // a body over the cap
	CodeNotFound    = "not_found"      // no such job, node or peer
	CodeConflict    = "conflict"       // a job ID already taken
	CodeRefused     = "refused"        // the state machine refused the command
	CodeNoLeader    = "no_leader"      // no leader to forward to (election under way)
	CodeUnavailable = "unavailable"    // the server is not ready
	CodeInternal    = "internal"       // a fault of the server
)

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field and Line locate a spec error.
	Field string `json:"field,omitempty"`
	Line  int    `json:"line,omitempty"`
	// Status is the HTTP status the error came with (not on the wire).
	Status int `json:"-"`
	// RetryAfter is the pause the answer's Retry-After header asked for
	// (not in the body; zero when absent).
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string { return e.Message + " (" + e.Code + ")" }

// ErrorBody wraps Error on the wire: {"error": {...}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Job statuses as the API shows them. A pending job is "queued".
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// StatusName is the API's name of a job status.
func StatusName(s state.JobStatus) string {
	if s == state.Pending {
		return StatusQueued
	}
	return s.String()
}

// Job is a job as the API shows it.
type Job struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Kind   string `json:"kind"`
	Tenant string `json:"tenant,omitempty"`
	// Priority, Count and the task's asks, as submitted.
	Priority int32          `json:"priority,omitempty"`
	Count    int            `json:"count"`
	Task     scheduler.Task `json:"task"`
	Command  []string       `json:"command,omitempty"`
	// RequestID is the client request id the job was submitted under.
	RequestID string `json:"request_id,omitempty"`
	// Tasks are where the running tasks are placed.
	Tasks []scheduler.TaskPlacement `json:"tasks,omitempty"`
	// Done lists the tasks of a running gang that ended well.
	Done      []int `json:"done,omitempty"`
	Submitted int64 `json:"submitted"`
	Started   int64 `json:"started,omitempty"`
	Ended     int64 `json:"ended,omitempty"`
	Requeues  int   `json:"requeues,omitempty"`
	// Pending says why a queued job waits: the leader's last scheduling
	// pass's note and its reasons counted over the nodes.
	Pending *Pending `json:"pending,omitempty"`
	// EstimatedStart is when a queued job is expected to start (RFC 3339),
	// by a replay of the live queue (GET /v1/jobs/{id} only); EstimateNote
	// says what the replay assumed, or why there is no estimate.
	EstimatedStart string `json:"estimated_start,omitempty"`
	EstimateNote   string `json:"estimate_note,omitempty"`
}

// Notes of a queued job that no scheduling pass has explained yet.
const (
	// WhyNextPass: submitted since the leader's last pass.
	WhyNextPass = "waits for the next scheduling pass"
	// WhyAskLeader: a stale read on a follower, which runs no pass.
	WhyAskLeader = "the leader's scheduling pass knows why; read without stale"
)

// Pending is why a queued job is not placed.
type Pending struct {
	Why     string         `json:"why,omitempty"`
	Reasons map[string]int `json:"reasons,omitempty"`
}

// JobList is the body of GET /v1/jobs.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// SubmitResponse is the body of a job submitted.
type SubmitResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// PlanResponse is a dry run: what a pass on the live state would do if the
// job were submitted now. It changes nothing.
type PlanResponse struct {
	Job    string `json:"job"`
	Placed bool   `json:"placed"`
	// Tasks are where the job's tasks would go.
	Tasks []scheduler.TaskPlacement `json:"tasks,omitempty"`
	// Evict are the running jobs the pass would preempt.
	Evict []scheduler.Eviction `json:"evict,omitempty"`
	// Pending says why the job would wait.
	Pending *Pending `json:"pending,omitempty"`
	// Others is how many other queued jobs the same pass would start.
	Others int `json:"others"`
}

// FinishRequest ends a running job or some of its tasks, as an agent will
// report it (an admin or test endpoint until agents exist).
type FinishRequest struct {
	Tasks  []int `json:"tasks,omitempty"`
	Failed bool  `json:"failed,omitempty"`
}

// Node is a node as the API shows it.
type Node struct {
	Name         string `json:"name"`
	Pool         string `json:"pool"`
	Rack         string `json:"rack,omitempty"`
	State        string `json:"state"`
	Model        string `json:"model,omitempty"`
	GPUs         int    `json:"gpus"`
	GPUMilliFree int64  `json:"gpu_milli_free"`
	GPUMilliCap  int64  `json:"gpu_milli_cap"`
	CPUMilliFree int64  `json:"cpu_milli_free"`
	CPUMilliCap  int64  `json:"cpu_milli_cap"`
	MemMiBFree   int64  `json:"memory_mib_free"`
	MemMiBCap    int64  `json:"memory_mib_cap"`
	// Unhealthy are the GPUs the node's agent reports unhealthy (XID).
	Unhealthy []GPUHealth `json:"unhealthy,omitempty"`
	// Withheld are the GPUs (device indexes) the scheduler keeps out of
	// placement as unhealthy: they take no new work.
	Withheld []int `json:"withheld,omitempty"`
	// RetireAt is when the node retires (RFC 3339): its own date, else
	// its pool's retire_at; empty when neither is set.
	RetireAt string `json:"retire_at,omitempty"`
}

// NodeList is the body of GET /v1/nodes.
type NodeList struct {
	Nodes []Node `json:"nodes"`
}

// NodeStateRequest sets a node's state: ready or draining.
type NodeStateRequest struct {
	State string `json:"state"`
}

// Pool is a pool as the API shows it, with its capacity summed.
type Pool struct {
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	Region       string `json:"region,omitempty"`
	Zone         string `json:"zone,omitempty"`
	Nodes        int    `json:"nodes"`
	Ready        int    `json:"ready"`
	GPUs         int    `json:"gpus"`
	GPUMilliFree int64  `json:"gpu_milli_free"`
	GPUMilliCap  int64  `json:"gpu_milli_cap"`
}

// PoolList is the body of GET /v1/pools.
type PoolList struct {
	Pools []Pool `json:"pools"`
}

// Peer is one server of the raft configuration.
type Peer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

// PeerList is the body of GET /v1/operator/raft/peers.
type PeerList struct {
	Peers []Peer `json:"peers"`
}

// AddPeerRequest adds a voting server.
type AddPeerRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

// Health is the body of GET /v1/health.
type Health struct {
	Status string `json:"status"`
	Server string `json:"server"`
	State  string `json:"state"`
	Leader string `json:"leader,omitempty"`
}
