package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"petite/scheduler/fleet"
	"petite/scheduler/server"
)

// demoDaemon is one server on the embedded demo fleet (1,110 nodes, 6,720
// GPUs) running 300 jobs of three tenants: the size the scrape and the
// page must stay cheap at.
func demoDaemon(b *testing.B) *Daemon {
	b.Helper()
	pools, nodes, err := fleet.Parse(bytes.NewReader(fleet.Demo()), "demo.yaml")
	require.NoError(b, err)
	d, err := Start(server.Config{ID: "s0", DataDir: b.TempDir(), RaftAddr: "127.0.0.1:0", Bootstrap: true,
		Pools: pools, Nodes: nodes, Coalesce: 2 * time.Millisecond, Fast: true}, "127.0.0.1:0", nil)
	require.NoError(b, err)
	b.Cleanup(func() { d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(b, d.Ready(ctx))
	cl, err := NewClient(d.URL)
	require.NoError(b, err)
	tenants := []string{"research", "vision", "serving"}
	for i := range 300 {
		gpus, milli := []int{1, 2, 4, 8, 1}[i%5], []int{1000, 1000, 1000, 1000, 500}[i%5]
		spec := fmt.Sprintf("id: j%d\ntenant: %s\ncount: %d\ntask:\n  gpus: %d\n  gpu_milli: %d\n  cpu_milli: 4000\n  memory_mib: 8192\n  command: [x]\n",
			i, tenants[i%3], 1+i%3, gpus, milli)
		_, err := cl.Submit(ctx, []byte(spec))
		require.NoError(b, err)
	}
	require.Eventually(b, func() bool { return d.Server.Stats().Plans > 0 }, waitFor, 10*time.Millisecond)
	return d
}

func benchGet(b *testing.B, url string) {
	b.Helper()
	var size int
	b.ResetTimer()
	for b.Loop() {
		resp, err := http.Get(url)
		require.NoError(b, err)
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.NoError(b, err)
		require.Equal(b, http.StatusOK, resp.StatusCode)
		size = int(n)
	}
	b.ReportMetric(float64(size), "bytes/op")
}

// BenchmarkMetricsScrape is one scrape of /metrics on the demo fleet.
func BenchmarkMetricsScrape(b *testing.B) { benchGet(b, demoDaemon(b).URL+"/metrics") }

// BenchmarkWebPage is one rendering of /ui/ on the demo fleet.
func BenchmarkWebPage(b *testing.B) { benchGet(b, demoDaemon(b).URL+"/ui/?stale=true") }
