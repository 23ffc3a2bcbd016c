package server

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitFor bounds every wait of these tests: an election and a commit take
// milliseconds idle, but seconds on a loaded 2-core machine, and a wait
// that ends early is a spurious failure.
const waitFor = 30 * time.Second

// freeAddr returns a loopback address free now and not handed out before
// by this test binary: the kernel may hand a port just closed out again,
// and two servers of one cluster given the same address refuse to
// bootstrap ("found duplicate address").
func freeAddr(t *testing.T) string {
	t.Helper()
	givenMu.Lock()
	defer givenMu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		if !given[addr] {
			given[addr] = true
			return addr
		}
	}
}

var (
	givenMu sync.Mutex
	given   = map[string]bool{}
)

func waitLeader(t *testing.T, servers []*Server) *Server {
	t.Helper()
	var leader *Server
	require.Eventually(t, func() bool {
		for _, s := range servers {
			if s.IsLeader() {
				leader = s
				return true
			}
		}
		return false
	}, waitFor, 10*time.Millisecond)
	return leader
}
