package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A server that refuses with a code, then serves: the client retries the
// codes that wrote nothing and waits the Retry-After it was given.
func TestClientRetriesWhatWroteNothing(t *testing.T) {
	for _, c := range []struct {
		code       string
		status     int
		retryAfter string
		retried    bool
		minWait    time.Duration
	}{
		{CodeNoLeader, http.StatusServiceUnavailable, "", true, 0},
		{CodeOverloaded, http.StatusServiceUnavailable, "1", true, 900 * time.Millisecond},
		{CodeRateLimited, http.StatusTooManyRequests, "1", true, 900 * time.Millisecond},
		{CodeTimeout, http.StatusServiceUnavailable, "1", false, 0},
		{CodeLeadershipLost, http.StatusServiceUnavailable, "1", false, 0},
		{CodeRefused, http.StatusUnprocessableEntity, "", false, 0},
	} {
		t.Run(c.code, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					if c.retryAfter != "" {
						w.Header().Set("Retry-After", c.retryAfter)
					}
					writeJSON(w, c.status, ErrorBody{Error: &Error{Code: c.code, Message: "no"}})
					return
				}
				writeJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
			}))
			defer srv.Close()
			cl, err := NewClient(srv.URL)
			require.NoError(t, err)
			var out map[string]string
			t0 := time.Now()
			err = cl.do(context.Background(), http.MethodPost, "/v1/x", []byte("{}"), &out)
			if !c.retried {
				var ae *Error
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, c.code, ae.Code)
				assert.EqualValues(t, 1, calls.Load(), "a write that may have committed is not sent again")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "yes", out["ok"])
			assert.EqualValues(t, 2, calls.Load())
			assert.GreaterOrEqual(t, time.Since(t0), c.minWait, "the server's Retry-After is waited for")
		})
	}
}

// The pause never runs past the client's retry window: a Retry-After longer
// than the window gives up at the window's end with the server's answer.
func TestClientRetryAfterBoundedByWindow(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "30")
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: &Error{Code: CodeOverloaded, Message: "busy"}})
	}))
	defer srv.Close()
	cl, err := NewClient(srv.URL)
	require.NoError(t, err)
	cl.Retry = 300 * time.Millisecond
	t0 := time.Now()
	err = cl.do(context.Background(), http.MethodGet, "/v1/x", nil, nil)
	var ae *Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, CodeOverloaded, ae.Code)
	assert.Equal(t, 30*time.Second, ae.RetryAfter)
	assert.Less(t, time.Since(t0), 5*time.Second)
	assert.GreaterOrEqual(t, calls.Load(), int32(2))
}

func TestRetryAfterHeader(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1": time.Second, " 7 ": 7 * time.Second, "": 0, "0": 0, "-3": 0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0, "99999": 0, "x": 0,
	} {
		assert.Equal(t, want, retryAfter(in), "Retry-After %q", in)
	}
}
