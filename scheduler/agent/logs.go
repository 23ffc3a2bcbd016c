package agent

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"petite/scheduler/api"
	"petite/scheduler/server"
)

// maxLog caps what one logs request returns: the log's last bytes.
const maxLog = 8 << 20

// API is the agents' HTTP API, which the servers call:
//
//   - GET /v1/agent/{node}/logs?job=&task=&stream=&tail=&offset= answers a task's
//     log from the node's data dir (the latest run of the task kept there);
//   - POST /v1/agent/{node}/doorbell: the node's tasks changed, heartbeat
//     now (the answer says what changed).
//
// One API serves any number of agents (a dev server runs many in one
// process); a lone agent serves its own.
type API struct {
	mu     sync.Mutex
	agents map[string]*Agent
}

// Add serves an agent's logs.
func (l *API) Add(a *Agent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.agents == nil {
		l.agents = map[string]*Agent{}
	}
	l.agents[a.node] = a
}

// Handler returns the HTTP handler of the agents' API.
func (l *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/agent/{node}/logs", l.serve)
	mux.HandleFunc("POST /v1/agent/{node}/doorbell", l.doorbell)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpErr(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Server returns an HTTP server of the agents' API with the timeouts t
// (api.DefaultTimeouts, the API server's): a client that sends its request
// slowly, or holds an idle connection, is cut off.
func (l *API) Server(t api.Timeouts) *http.Server {
	return t.Apply(&http.Server{Handler: l.Handler()})
}

func httpErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := jsonMarshal(api.ErrorBody{Error: &api.Error{Code: code, Message: msg}})
	_, _ = w.Write(b)
}

func (l *API) agent(w http.ResponseWriter, node string) (*Agent, bool) {
	l.mu.Lock()
	a, ok := l.agents[node]
	l.mu.Unlock()
	if !ok {
		httpErr(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no agent of node %q here", node))
	}
	return a, ok
}

func (l *API) doorbell(w http.ResponseWriter, r *http.Request) {
	if a, ok := l.agent(w, r.PathValue("node")); ok {
		a.Ring()
		w.WriteHeader(http.StatusNoContent)
	}
}

func (l *API) serve(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	a, ok := l.agent(w, node)
	if !ok {
		return
	}
	q := r.URL.Query()
	job := q.Get("job")
	task, err := strconv.Atoi(q.Get("task"))
	if job == "" || err != nil || task < 0 {
		httpErr(w, http.StatusBadRequest, api.CodeBadRequest, "want job=ID&task=N")
		return
	}
	if err := checkKey(server.TaskKey{Job: job, Task: task}); err != nil {
		httpErr(w, http.StatusBadRequest, api.CodeBadRequest, err.Error())
		return
	}
	stream := q.Get("stream")
	switch stream {
	case "", api.StreamStdout:
		stream = fileStdout
	case api.StreamStderr:
		stream = fileStderr
	default:
		httpErr(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("stream: want stdout or stderr, got %q", stream))
		return
	}
	tail, _ := strconv.ParseInt(q.Get("tail"), 10, 64)
	if tail <= 0 || tail > maxLog {
		tail = maxLog
	}
	// offset, when given, reads from that byte on instead of the tail:
	// what a follower has not seen yet (at most maxLog of it).
	offset, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if q.Get("offset") != "" && (err != nil || offset < 0) {
		httpErr(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("offset: want a byte count, got %q", q.Get("offset")))
		return
	}
	dir, ok := latestRun(a.cfg.DataDir, job, task)
	if !ok {
		// Placed, not started yet (or never: its job ended first): an
		// empty log, as for a run that has written nothing.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		return
	}
	f, err := os.Open(filepath.Join(dir, stream))
	if err != nil {
		// A run that has not written yet, or a placeholder: an empty log.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		return
	}
	defer f.Close()
	switch st, err := f.Stat(); {
	case err != nil:
	case q.Has("offset"):
		if offset >= st.Size() {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			return // nothing new
		}
		_, _ = f.Seek(offset, io.SeekStart)
		tail = maxLog
	case st.Size() > tail:
		_, _ = f.Seek(st.Size()-tail, io.SeekStart)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.Copy(w, io.LimitReader(f, tail))
}

// latestRun finds the directory of a task's latest run on this node: the
// one whose key file was written last.
func latestRun(data, job string, task int) (string, bool) {
	dirs, _ := filepath.Glob(filepath.Join(data, "tasks", jobDir(job), strconv.Itoa(task)+"-*"))
	best, bestT := "", int64(-1)
	for _, d := range dirs {
		st, err := os.Stat(filepath.Join(d, fileKey))
		if err != nil {
			continue
		}
		if t := st.ModTime().UnixNano(); t > bestT {
			best, bestT = d, t
		}
	}
	return best, best != ""
}
