package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A trace file that `sim run` can stream is replayed as it is read, and
// gives the bytes of the same run read whole (forced by --series, which
// needs the whole workload, at a step long enough to cost nothing): the summary, as JSON and as text, and the
// event log, on the repository's traces and with the options that shape a
// run. A trace out of submission order, a bad one and standard input are
// read whole, as before.
func TestSimRunStreamsTrace(t *testing.T) {
	const (
		openb  = "../../traces/samples/openb_pod_list_default.csv"
		philly = "../../traces/testdata/philly/cluster_job_log"
		pai    = "../../traces/testdata/pai/pai_job_table.csv"
		helios = "../../traces/testdata/helios/cluster_log.csv"
	)
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen.csv")
	code, _, errOut := petite(t, nil, "trace", "gen", "--jobs", "1000", "--rate", "600", "--seed", "3", gen)
	require.Equal(t, 0, code, errOut)
	unsorted := filepath.Join(dir, "unsorted.csv")
	require.NoError(t, os.WriteFile(unsorted, []byte("job_id,submit,duration,gpus\na,50,100,1\nb,10,30,2\nc,20,10,1\n"), 0o644))
	for _, tc := range []struct {
		args   []string
		stream bool
	}{
		{[]string{"--fleet", burstFleetFile, "--trace", section7File, "--queue", "backfill", "--json"}, true},
		{[]string{"--fleet", burstFleetFile, "--trace", section7File, "--warmup-jobs", "5"}, true},
		{[]string{"--trace", openb, "--policy", "fgd", "--json", "--default-duration", "1h"}, true},
		{[]string{"--trace", openb, "--default-duration", "30m", "--queue", "fifo-skip", "--json", "--horizon", "3h"}, true},
		{[]string{"--trace", openb, "--default-duration", "2h", "--preempt", "--checkpoint-interval", "10m", "--restart-cost", "1m", "--json"}, true},
		{[]string{"--trace", openb, "--default-duration", "2h", "--scale", "--spot-reclaim", "1h", "--json"}, true},
		{[]string{"--trace", gen, "--fleet", burstFleetFile, "--queue", "fifo-skip", "--policy", "fgd", "--json"}, true},
		{[]string{"--trace", gen, "--fleet", burstFleetFile, "--queue", "backfill", "--warmup-jobs", "100", "--json"}, true},
		{[]string{"--trace", gen, "--policy", "topology", "--horizon", "2h", "--warmup-jobs", "50", "--json"}, true},
		// the repository's Philly, PAI and Helios samples are out of
		// submission order: read whole, as before
		{[]string{"--trace", philly, "--json", "--policy", "spread", "--default-duration", "20m"}, false},
		{[]string{"--trace", pai, "--json", "--default-duration", "10m"}, false},
		{[]string{"--trace", helios, "--json", "--default-duration", "10m", "--policy", "gpu-packing", "--warmup-jobs", "3"}, false},
		{[]string{"--trace", unsorted, "--json"}, false},
		{[]string{"--trace", philly, "--json"}, false}, // jobs without a duration: the error of the whole read
	} {
		name := strings.Join(tc.args, " ")
		ev1, ev2 := filepath.Join(dir, "1.events"), filepath.Join(dir, "2.events")
		before := streamedRuns
		code1, out1, err1 := petite(t, nil, append([]string{"sim", "run", "--events", ev1}, tc.args...)...)
		require.Equal(t, tc.stream, streamedRuns == before+1, "%s: streamed", name)
		before = streamedRuns
		code2, out2, err2 := petite(t, nil, append([]string{"sim", "run", "--events", ev2, "--series", filepath.Join(dir, "s.csv"), "--series-step", "1000h"}, tc.args...)...)
		require.Equal(t, before, streamedRuns, "%s: --series reads the trace whole", name)
		require.Equal(t, code2, code1, "%s: %s", name, err1)
		require.Equal(t, err2, err1, name)
		require.Equal(t, out2, out1, name)
		if code1 == 0 {
			require.NotEmpty(t, out1, name)
			b1, err := os.ReadFile(ev1)
			require.NoError(t, err)
			b2, err := os.ReadFile(ev2)
			require.NoError(t, err)
			require.NotEmpty(t, b1, name)
			require.Equal(t, string(b2), string(b1), "%s: event log", name)
		}
	}
	// Standard input is read whole: it cannot be read twice.
	f, err := os.ReadFile(section7File)
	require.NoError(t, err)
	before := streamedRuns
	code, _, errOut = petite(t, strings.NewReader(string(f)), "sim", "run", "--fleet", burstFleetFile, "--trace", "-", "--json")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, before, streamedRuns)
}
