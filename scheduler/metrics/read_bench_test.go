package metrics

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"petite/scheduler/fleet"
	"petite/scheduler/server"
)

// BenchmarkStateRead is the part of a scrape that holds the FSM's lock,
// on the demo fleet (1,110 nodes, 6,720 GPUs) with nothing running: what
// a scrape makes the log's applies wait for at most.
func BenchmarkStateRead(b *testing.B) {
	pools, nodes, err := fleet.Parse(bytes.NewReader(fleet.Demo()), "demo.yaml")
	require.NoError(b, err)
	s, err := server.New(server.Config{ID: "s0", DataDir: b.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true,
		Pools: pools, Nodes: nodes, Fast: true})
	require.NoError(b, err)
	b.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(b, s.Ready(ctx))
	c := newStateCollector(s, Options{})
	require.Len(b, c.read().devices, 6720)
	for b.Loop() {
		c.read()
	}
}
