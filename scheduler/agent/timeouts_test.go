package agent

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
)

// TestAgentAPITimeouts: the agent's own API cuts off a client that sends
// its headers a byte at a time (slow loris) and one that holds an idle
// keep-alive connection, as the servers' API does.
func TestAgentAPITimeouts(t *testing.T) {
	var l API
	assert.Equal(t, api.DefaultTimeouts, api.Timeouts{
		ReadHeader: l.Server(api.DefaultTimeouts).ReadHeaderTimeout, Read: l.Server(api.DefaultTimeouts).ReadTimeout,
		Idle: l.Server(api.DefaultTimeouts).IdleTimeout,
	})
	short := api.Timeouts{ReadHeader: 300 * time.Millisecond, Read: time.Second, Idle: 400 * time.Millisecond}
	hs := l.Server(short)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	// closedWithin reads until the server closes the connection.
	closedWithin := func(t *testing.T, c net.Conn, limit time.Duration) time.Duration {
		begin := time.Now()
		_ = c.SetReadDeadline(begin.Add(limit))
		_, err := io.Copy(io.Discard, c)
		require.NoError(t, err, "the server closes the connection before %s", limit)
		return time.Since(begin)
	}

	t.Run("slow loris", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			// A header line a byte every 50 ms, never ended.
			for _, b := range []byte("GET /v1/agent/n0/logs?job=j&task=0 HTTP/1.1\r\nHost: x\r\nX-Slow: " + string(make([]byte, 200))) {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		assert.Less(t, closedWithin(t, c, 5*time.Second), 3*time.Second)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("GET /v1/agent/n0/logs?job=j&task=0 HTTP/1.1\r\nHost: x\r\n\r\n"))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "no agent of n0 here")
		assert.Less(t, closedWithin(t, c, 5*time.Second), 3*time.Second)
	})
}
