package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// RetireRequest sets a node's own retirement date (POST
// /v1/nodes/{name}/retire): At is an RFC 3339 date, not in the past, or
// "now"; Cancel withdraws a date not yet reached. One of the two.
type RetireRequest struct {
	At     string `json:"at,omitempty"`
	Cancel bool   `json:"cancel,omitempty"`
}

// routeRetire registers the retirement of single nodes.
func (h *handler) routeRetire() {
	h.route("POST /v1/nodes/{name}/retire", h.retireNode, write)
}

// retireNode commits a node's own retirement date, or withdraws it; the
// leader's drain loop drains the node from server.drain.retire_lead before
// the date and retires it on the date (scheduler/server/drain.go).
func (h *handler) retireNode(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req RetireRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	bad := func(field, format string, args ...any) {
		writeErr(w, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)})
	}
	now := h.s.Now()
	var at int64
	switch {
	case req.Cancel && req.At != "":
		bad("cancel", "give at or cancel, not both")
		return
	case req.Cancel:
	case req.At == "":
		bad("at", `required: an RFC 3339 date (2027-03-01T00:00:00Z) or "now"; or cancel: true`)
		return
	case req.At == "now":
		at = now
	default:
		t, err := time.Parse(time.RFC3339, req.At)
		if err != nil {
			bad("at", `%q is not an RFC 3339 date (2027-03-01T00:00:00Z) or "now"`, req.At)
			return
		}
		if at = t.Unix(); t.Nanosecond() > 0 {
			at++ // the node retires on the date, not before it
		}
		if at < now {
			bad("at", `%s is in the past (now %s); "now" retires the node at once`, req.At, unixRFC3339(now))
			return
		}
	}
	if !h.knownNode(w, r, name) {
		return
	}
	if req.Cancel {
		cur, set := h.s.FSM().RetireDates()[name]
		if !set { // nothing to withdraw: nothing written
			h.getNode(w, r)
			return
		}
		if cur <= now {
			writeErr(w, &Error{Status: http.StatusConflict, Code: CodeConflict, Field: "cancel", Message: fmt.Sprintf("cancel: node %s's retire date %s has passed", name, unixRFC3339(cur))})
			return
		}
	}
	if err := h.s.SetRetire(r.Context(), name, at); err != nil {
		writeErr(w, h.applyError(err))
		return
	}
	h.getNode(w, r)
}

// withRetire sets the nodes' retire_at to their own dates where they have
// one (nodeView gave them their pool's).
func withRetire(nodes []Node, own map[string]int64) {
	for i := range nodes {
		if at, ok := own[nodes[i].Name]; ok {
			nodes[i].RetireAt = unixRFC3339(at)
		}
	}
}

func unixRFC3339(at int64) string { return time.Unix(at, 0).UTC().Format(time.RFC3339) }

// RetireNode sets a node's own retirement date (an RFC 3339 date or
// "now"), or withdraws it with cancel, and returns the node.
func (c *Client) RetireNode(ctx context.Context, name string, req RetireRequest) (Node, error) {
	var out Node
	return out, c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(name)+"/retire", jsonBody(req), &out)
}
