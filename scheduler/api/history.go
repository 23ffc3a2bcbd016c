package api

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"petite/scheduler"
	"petite/scheduler/server"
	"petite/scheduler/state"
	"petite/traces"
)

// historyRoutes registers GET /v1/history: the jobs the cluster has seen,
// in petite's canonical trace format, for the simulator to replay.
func (h *handler) historyRoutes() {
	h.route("GET /v1/history", h.history, read)
}

// HistoryQuery selects what GET /v1/history writes.
type HistoryQuery struct {
	// Since keeps the jobs submitted at or after it (Unix seconds; 0: all).
	Since int64
	// Live adds the jobs still queued or running (status pending or
	// running, no end): a replay needs --default-duration for them.
	Live bool
	// Format is traces.FormatCSV (the default) or traces.FormatJSONL.
	Format traces.Format
}

func (q HistoryQuery) values() url.Values {
	v := url.Values{}
	if q.Since != 0 {
		v.Set("since", strconv.FormatInt(q.Since, 10))
	}
	if q.Live {
		v.Set("live", "true")
	}
	if q.Format != "" {
		v.Set("format", string(q.Format))
	}
	return v
}

// parseHistoryQuery reads ?since= (Unix seconds or RFC 3339), ?live= and
// ?format=.
func parseHistoryQuery(v url.Values) (HistoryQuery, *Error) {
	q := HistoryQuery{Format: traces.FormatCSV}
	if s := v.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			q.Since = t.Unix()
		} else if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			q.Since = n
		} else {
			return q, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "since", Message: fmt.Sprintf("since: want Unix seconds or an RFC 3339 time, got %q", s)}
		}
	}
	switch s := v.Get("live"); s {
	case "", "false":
	case "true":
		q.Live = true
	default:
		return q, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "live", Message: fmt.Sprintf("live: want true or false, got %q", s)}
	}
	switch f := traces.Format(v.Get("format")); f {
	case "":
	case traces.FormatCSV, traces.FormatJSONL:
		q.Format = f
	default:
		return q, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: "format", Message: fmt.Sprintf("format: want %s or %s, got %q", traces.FormatCSV, traces.FormatJSONL, f)}
	}
	return q, nil
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	q, e := parseHistoryQuery(r.URL.Query())
	if e != nil {
		writeErr(w, e)
		return
	}
	var jobs []traces.Job
	h.s.FSM().History(func(hist []server.HistoryRecord, m *state.Machine) {
		jobs = historyJobs(hist, m, q)
	})
	var b bytes.Buffer
	if err := writeTrace(&b, jobs, q.Format); err != nil {
		writeErr(w, &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: err.Error()})
		return
	}
	ct := "text/csv"
	if q.Format == traces.FormatJSONL {
		ct = "application/jsonl"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(b.Bytes())
}

// historyJobs is the history as trace jobs, in submission order: the ended
// jobs the FSM keeps, and with q.Live the jobs still queued or running. An
// ID used again after its first job was pruned gets a suffix (~2, ~3, ...):
// a trace names each job once.
func historyJobs(hist []server.HistoryRecord, m *state.Machine, q HistoryQuery) []traces.Job {
	var out []traces.Job
	for i := range hist {
		rec := &hist[i]
		if rec.Job.Submitted >= q.Since {
			out = append(out, traceJob(rec.Job, rec.Status, rec.Started, rec.Ended))
		}
	}
	if q.Live {
		for _, info := range m.Jobs() {
			if !info.Status.Ended() && info.Job.Submitted >= q.Since {
				out = append(out, traceJob(info.Job, info.Status, info.Started, 0))
			}
		}
	}
	slices.SortStableFunc(out, func(a, b traces.Job) int { return cmp.Compare(a.Submit, b.Submit) })
	seen := make(map[string]int, len(out))
	for i := range out {
		id := out[i].ID
		seen[id]++
		if n := seen[id]; n > 1 {
			out[i].ID = fmt.Sprintf("%s~%d", id, n)
		}
	}
	return out
}

// traceJob is one job in the canonical trace's terms. Start is when the job
// last started and the duration its last run: what a replay must place and
// run again (a requeued job's earlier runs were lost work). A job ended
// before it ever ran has a duration of 0.
func traceJob(j scheduler.Job, st state.JobStatus, started, ended int64) traces.Job {
	tj := traces.Job{
		ID: j.ID, Tenant: j.Tenant, Submit: j.Submitted, Start: traces.NoTime, End: traces.NoTime,
		Duration: traces.NoTime, Priority: int(j.Priority),
	}
	switch j.Kind {
	case scheduler.Training:
		tj.Kind = traces.KindTraining
	case scheduler.Inference:
		tj.Kind = traces.KindInference
	}
	switch st {
	case state.Succeeded:
		tj.Status = traces.StatusSucceeded
	case state.Failed:
		tj.Status = traces.StatusFailed
	case state.Cancelled:
		tj.Status = traces.StatusKilled
	case state.Running:
		tj.Status = traces.StatusRunning
	case state.Pending:
		tj.Status = traces.StatusPending
	}
	if started > 0 {
		tj.Start = started
	}
	if st.Ended() {
		tj.End = ended
		tj.Duration = 0
		if started > 0 && ended >= started {
			tj.Duration = ended - started
		}
	}
	t := traces.Task{Count: j.Count, GPUs: j.Task.GPUs, CPUMilli: j.Task.CPUMilli, MemoryMiB: j.Task.MemoryMiB, GPUModels: slices.Clone(j.Task.Models)}
	if t.GPUs > 0 {
		t.GPUMilli = int64(cmp.Or(j.Task.GPUMilli, scheduler.MilliPerGPU))
	}
	tj.Tasks = []traces.Task{t}
	return tj
}

// writeTrace writes jobs with the traces package's canonical writer.
func writeTrace(w io.Writer, jobs []traces.Job, f traces.Format) error {
	tw, err := traces.NewWriter(w, f, traces.Meta{Clock: traces.ClockUnix, Zone: "UTC"})
	if err != nil {
		return err
	}
	for i := range jobs {
		if err := tw.Write(&jobs[i]); err != nil {
			return fmt.Errorf("history: job %s: %w", jobs[i].ID, err)
		}
	}
	return tw.Close()
}

// History writes the cluster's job history as a canonical trace to w.
func (c *Client) History(ctx context.Context, q HistoryQuery, w io.Writer) error {
	path := "/v1/history"
	if v := q.values(); len(v) > 0 {
		path += "?" + v.Encode()
	}
	return c.do(ctx, http.MethodGet, path, nil, w)
}
