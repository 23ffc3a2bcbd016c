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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to a server's API. Requests that meet no leader (an
// election under way) are retried for a few seconds.
type Client struct {
	// Base is the server's URL, http://127.0.0.1:4646.
	Base string
	// HTTP is the client used; nil takes one with a 30 s timeout.
	HTTP *http.Client
	// Retry is how long to retry while there is no leader (default 5 s).
	Retry time.Duration
	// Token, when set, is sent as Authorization: Bearer (auth.go).
	Token string
}

// NewClient returns a client of the server at addr ("host:port" or a URL).
func NewClient(addr string) (*Client, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server address %q: want http://HOST:PORT", addr)
	}
	return &Client{Base: strings.TrimRight(u.String(), "/")}, nil
}

// HTTPClient returns the HTTP client requests go through.
func (c *Client) HTTPClient() *http.Client { return c.httpClient() }

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// IdempotencyHeader carries a submit's client request id: a retried submit
// with the same id answers the job the first one committed.
const IdempotencyHeader = "Idempotency-Key"

// do sends a request and decodes a JSON answer into out (when non-nil).
// An error answer is returned as *Error.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	return c.doRetry(ctx, method, path, body, nil, out, noLeader)
}

// noLeader says whether an answer is one every request is retried on: no
// leader (an election), over the rate limit, or too many writes in flight.
// None of them served it.
func noLeader(err error) bool {
	var ae *Error
	return errors.As(err, &ae) && (ae.Code == CodeNoLeader || ae.Code == CodeRateLimited || ae.Code == CodeOverloaded)
}

// unanswered says whether a request may have been served without its
// answer reaching the client (the connection broke, the server failed):
// safe to retry only for an idempotent request.
func unanswered(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return noLeader(err) || ae.Status >= 500
	}
	return err != nil
}

// doRetry sends a request with extra headers, retrying while retryable
// says so, for up to c.Retry.
func (c *Client) doRetry(ctx context.Context, method, path string, body []byte, hdr http.Header, out any, retryable func(error) bool) error {
	retry := c.Retry
	if retry == 0 {
		retry = 5 * time.Second
	}
	deadline := time.Now().Add(retry)
	wait := 20 * time.Millisecond
	for {
		err := c.once(ctx, method, path, body, hdr, out)
		if err == nil || !retryable(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		// The server's Retry-After (a rate limit's refill, an overloaded
		// leader) is waited for in full, but never past the deadline.
		pause := wait
		var ae *Error
		if errors.As(err, &ae) && ae.RetryAfter > pause {
			pause = min(ae.RetryAfter, time.Until(deadline))
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

func (c *Client) once(ctx context.Context, method, path string, body []byte, hdr http.Header, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != nil {
			eb.Error.Status = resp.StatusCode
			eb.Error.RetryAfter = retryAfter(resp.Header.Get("Retry-After"))
			return eb.Error
		}
		return &Error{Status: resp.StatusCode, Code: CodeInternal, Message: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))}
	}
	if out == nil {
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err := w.Write(data)
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func jsonBody(v any) []byte {
	b, _ := json.Marshal(v) // the request types always marshal
	return b
}

func stale(path string, ok bool) string {
	if ok {
		return path + "?stale=true"
	}
	return path
}

// Health asks whether the server is ready.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.once(ctx, http.MethodGet, "/v1/health", nil, nil, &h)
}

// Submit sends a job spec (YAML or JSON) and returns the job's ID. It
// sends a new request id and retries with it while the answer may have
// been lost (a broken connection, a leader change, a 5xx): a retry answers
// the job the first attempt committed, never a second job.
func (c *Client) Submit(ctx context.Context, spec []byte) (SubmitResponse, error) {
	return c.SubmitKey(ctx, spec, NewRequestID())
}

// SubmitKey submits a spec under a client request id of the caller's (see
// Submit). A caller whose Submit timed out can resolve it later with
// JobByRequest.
func (c *Client) SubmitKey(ctx context.Context, spec []byte, key string) (SubmitResponse, error) {
	var out SubmitResponse
	hdr := http.Header{IdempotencyHeader: []string{key}}
	return out, c.doRetry(ctx, http.MethodPost, "/v1/jobs", spec, hdr, &out, unanswered)
}

// NewRequestID returns a fresh client request id.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported systems
	return hex.EncodeToString(b[:])
}

// JobByRequest returns the job a submit with this request id committed,
// if any (a linearizable read): how a client resolves a submit whose
// answer it never got.
func (c *Client) JobByRequest(ctx context.Context, key string) (Job, bool, error) {
	var out JobList
	if err := c.do(ctx, http.MethodGet, "/v1/jobs?request_id="+url.QueryEscape(key), nil, &out); err != nil {
		return Job{}, false, err
	}
	for _, j := range out.Jobs {
		if j.RequestID == key {
			return j, true, nil
		}
	}
	return Job{}, false, nil
}

// Plan asks what submitting a spec would do now, changing nothing.
func (c *Client) Plan(ctx context.Context, spec []byte) (PlanResponse, error) {
	var out PlanResponse
	return out, c.do(ctx, http.MethodPost, "/v1/jobs/plan", spec, &out)
}

// Jobs lists the jobs; stale reads what the server asked has applied.
func (c *Client) Jobs(ctx context.Context, staleOK bool) ([]Job, error) {
	var out JobList
	return out.Jobs, c.do(ctx, http.MethodGet, stale("/v1/jobs", staleOK), nil, &out)
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id string, staleOK bool) (Job, error) {
	var out Job
	return out, c.do(ctx, http.MethodGet, stale("/v1/jobs/"+url.PathEscape(id), staleOK), nil, &out)
}

// Cancel stops a job.
func (c *Client) Cancel(ctx context.Context, id string) (Job, error) {
	var out Job
	return out, c.do(ctx, http.MethodDelete, "/v1/jobs/"+url.PathEscape(id), nil, &out)
}

// Finish reports a job, or some of its tasks, ended.
func (c *Client) Finish(ctx context.Context, id string, req FinishRequest) (Job, error) {
	var out Job
	return out, c.do(ctx, http.MethodPost, "/v1/jobs/"+url.PathEscape(id)+"/finish", jsonBody(req), &out)
}

// Nodes lists the nodes, of one pool when pool is set.
func (c *Client) Nodes(ctx context.Context, pool string) ([]Node, error) {
	var out NodeList
	path := "/v1/nodes"
	if pool != "" {
		path += "?pool=" + url.QueryEscape(pool)
	}
	return out.Nodes, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Node returns one node.
func (c *Client) Node(ctx context.Context, name string) (Node, error) {
	var out Node
	return out, c.do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(name), nil, &out)
}

// SetNodeState drains a node ("draining") or makes it ready again.
func (c *Client) SetNodeState(ctx context.Context, name, st string) (Node, error) {
	var out Node
	return out, c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(name)+"/state", jsonBody(NodeStateRequest{State: st}), &out)
}

// Pools lists the pools with their capacity.
func (c *Client) Pools(ctx context.Context) ([]Pool, error) {
	var out PoolList
	return out.Pools, c.do(ctx, http.MethodGet, "/v1/pools", nil, &out)
}

// Peers lists the raft configuration.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var out PeerList
	return out.Peers, c.do(ctx, http.MethodGet, "/v1/operator/raft/peers", nil, &out)
}

// AddPeer adds a voting server.
func (c *Client) AddPeer(ctx context.Context, id, addr string) ([]Peer, error) {
	var out PeerList
	return out.Peers, c.do(ctx, http.MethodPost, "/v1/operator/raft/peers", jsonBody(AddPeerRequest{ID: id, Address: addr}), &out)
}

// RemovePeer removes a server.
func (c *Client) RemovePeer(ctx context.Context, id string) ([]Peer, error) {
	var out PeerList
	return out.Peers, c.do(ctx, http.MethodDelete, "/v1/operator/raft/peers/"+url.PathEscape(id), nil, &out)
}

// Snapshot writes the state machine's snapshot to w.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) error {
	return c.do(ctx, http.MethodGet, "/v1/snapshot", nil, w)
}

// retryAfter reads a Retry-After header in its seconds form (RFC 9110
// §10.2.3); a date, a negative or an absurd value reads as none.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 || n > 3600 {
		return 0
	}
	return time.Duration(n) * time.Second
}
