package server

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

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
	}, 10*time.Second, 10*time.Millisecond)
	return leader
}
