package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"petite/scheduler/server"
	"petite/scheduler/state"
)

// The agent protocol's bodies (docs/agent.md), as the server defines them.
type (
	// AgentRegistration is the body of POST /v1/agents/register.
	AgentRegistration = server.AgentRegistration
	// Heartbeat is the body of POST /v1/agents/{node}/heartbeat.
	Heartbeat = server.Heartbeat
	// AgentAnswer answers both.
	AgentAnswer = server.AgentAnswer
	// GPUHealth is a GPU its agent reports unhealthy (Node.Unhealthy).
	GPUHealth = server.GPUHealth
)

// Log streams of a task.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// AgentLogsPath is the path under an agent's base URL where it serves a
// task's log: {base}/v1/agent/{node}/logs?job=&task=&stream=&tail=&offset=.
func AgentLogsPath(node string) string { return "/v1/agent/" + url.PathEscape(node) + "/logs" }

// LogsQuery selects a task's log.
type LogsQuery struct {
	Task   int
	Stream string // stdout (default) or stderr
	// Tail, when positive, keeps only the log's last Tail bytes.
	Tail int64
	// Offset, when positive (or FromOffset), reads the log from that byte
	// on, at most the agent's cap (8 MiB) of it, Tail ignored: what a
	// follower has not seen yet.
	Offset int64
	// FromOffset reads from Offset even when it is 0 (the log's start).
	FromOffset bool
}

func (q LogsQuery) values() url.Values {
	v := url.Values{}
	v.Set("task", strconv.Itoa(q.Task))
	if q.Stream != "" {
		v.Set("stream", q.Stream)
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.FormatInt(q.Tail, 10))
	}
	if q.Offset > 0 || q.FromOffset {
		v.Set("offset", strconv.FormatInt(q.Offset, 10))
	}
	return v
}

// AgentDoorbellPath is the path under an agent's base URL that the leader
// posts to when the node's tasks changed: the agent heartbeats at once.
func AgentDoorbellPath(node string) string { return "/v1/agent/" + url.PathEscape(node) + "/doorbell" }

// routeAgents registers the agents' endpoints and the job logs proxy, and
// gives the server its doorbell to the agents.
func (h *handler) routeAgents() {
	h.s.SetDoorbell(h.ringAgent)
	h.route("POST /v1/agents/register", h.registerAgent, write)
	h.route("POST /v1/agents/{node}/heartbeat", h.heartbeat, write)
	h.route("GET /v1/jobs/{id}/logs", h.jobLogs, read)
}

// agentError maps an error of the agent calls.
func (h *handler) agentError(err error) *Error {
	switch {
	case errors.Is(err, server.ErrUnknownAgent):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error() + "; register first"}
	case errors.Is(err, server.ErrAgentRefused):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeRefused, Message: err.Error()}
	}
	return h.commitError(err)
}

func (h *handler) registerAgent(w http.ResponseWriter, r *http.Request) {
	var req AgentRegistration
	if !decodeJSON(w, r, &req) || !CheckNode(w, r, req.Node.Name) {
		return
	}
	ans, err := h.s.RegisterAgent(r.Context(), req)
	if err != nil {
		writeErr(w, h.agentError(err))
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

func (h *handler) heartbeat(w http.ResponseWriter, r *http.Request) {
	var req Heartbeat
	if !decodeJSON(w, r, &req) {
		return
	}
	ans, err := h.s.Heartbeat(r.Context(), r.PathValue("node"), req)
	if err != nil {
		writeErr(w, h.agentError(err))
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// jobLogs proxies a task's log from the agent of the node the task last
// ran on: the agents keep the logs, the servers keep where they are.
func (h *handler) jobLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := LogsQuery{Stream: r.URL.Query().Get("stream")}
	if t := r.URL.Query().Get("task"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "task", Message: fmt.Sprintf("task: want a task index, got %q", t)})
			return
		}
		q.Task = n
	}
	if t := r.URL.Query().Get("tail"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "tail", Message: fmt.Sprintf("tail: want a byte count, got %q", t)})
			return
		}
		q.Tail = n
	}
	if t := r.URL.Query().Get("offset"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "offset", Message: fmt.Sprintf("offset: want a byte count, got %q", t)})
			return
		}
		q.Offset, q.FromOffset = n, true
	}
	if q.Stream != "" && q.Stream != StreamStdout && q.Stream != StreamStderr {
		writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "stream", Message: fmt.Sprintf("stream: want stdout or stderr, got %q", q.Stream)})
		return
	}
	var known bool
	h.s.FSM().Read(func(m *state.Machine, _ map[string]server.JobRecord, _ uint64) { _, known = m.Job(id) })
	if !known {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("no job %q", id)})
		return
	}
	node, ok := h.s.FSM().RanOn(id, q.Task)
	if !ok {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Field: "task", Message: fmt.Sprintf("job %s task %d has not been placed yet: no log", id, q.Task)})
		return
	}
	rec, ok := h.s.FSM().Agent(node)
	if !ok {
		// Placed on a node whose agent has not registered yet: nothing
		// has run, the log is empty.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		return
	}
	if rec.Addr == "" {
		writeErr(w, &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("job %s task %d ran on %s, whose agent serves no logs", id, q.Task, node)})
		return
	}
	cl, err := h.agentClient(rec.Addr) // TLS to an https:// agent (auth.go)
	if err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: fmt.Sprintf("agent of %s: %v", node, err)})
		return
	}
	v := q.values()
	v.Set("job", id)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := cl.once(r.Context(), http.MethodGet, AgentLogsPath(node)+"?"+v.Encode(), nil, nil, w); err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			writeErr(w, ae)
			return
		}
		writeErr(w, &Error{Status: http.StatusBadGateway, Code: CodeUnavailable, Message: fmt.Sprintf("agent of %s at %s: %v", node, rec.Addr, err)})
	}
}

// ringAgent tells a node's agent to heartbeat now. Best effort: a ring
// that fails is made up by the agent's next heartbeat.
func (h *handler) ringAgent(node, addr string) {
	cl, err := h.agentClient(addr) // TLS to an https:// agent (auth.go)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = cl.once(ctx, http.MethodPost, AgentDoorbellPath(node), nil, nil, nil)
}

// RegisterAgent registers a node's agent (the agent's first call).
func (c *Client) RegisterAgent(ctx context.Context, reg AgentRegistration) (AgentAnswer, error) {
	var out AgentAnswer
	return out, c.do(ctx, http.MethodPost, "/v1/agents/register", jsonBody(reg), &out)
}

// Heartbeat sends an agent's heartbeat.
func (c *Client) Heartbeat(ctx context.Context, node string, hb Heartbeat) (AgentAnswer, error) {
	var out AgentAnswer
	return out, c.do(ctx, http.MethodPost, "/v1/agents/"+url.PathEscape(node)+"/heartbeat", jsonBody(hb), &out)
}

// Logs copies a task's log to w. A read: retried on any answer that may
// not have come from a leader (an election, a leadership lost mid-read);
// w is written only once, with the whole answer.
func (c *Client) Logs(ctx context.Context, job string, q LogsQuery, w io.Writer) error {
	return c.doRetry(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(job)+"/logs?"+q.values().Encode(), nil, nil, w, unanswered)
}

// withHealth adds to a node the GPUs its agent reports unhealthy (the
// replicated agent record).
func (h *handler) withHealth(n Node) Node {
	if rec, ok := h.s.FSM().Agent(n.Name); ok {
		n.Unhealthy = rec.Unhealthy
	}
	return n
}
