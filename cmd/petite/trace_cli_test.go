package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/traces/samples"
)

// Wrong calls of the trace commands exit 2 with one line, and nothing is
// silently ignored: input flags without the --fit trace they describe, a
// --pai-jobs that joins nothing.
func TestTraceUsageErrorsExit2(t *testing.T) {
	pods := writeTemp(t, "pods.csv", samples.OpenbDefaultPods())
	jobs := writeTemp(t, "pai_job_table.csv", []byte("j1,i1,u1,Terminated,100.0,200.0\n"))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"gen", "--arrival", "bursty"}, `--arrival "bursty": want poisson or diurnal`},
		{[]string{"gen", "--format", "openb"}, "--format, --strict and --pai-jobs describe the --fit trace"},
		{[]string{"gen", "--strict", "-"}, "--format, --strict and --pai-jobs describe the --fit trace"},
		{[]string{"gen", "--pai-jobs", jobs}, "--format, --strict and --pai-jobs describe the --fit trace"},
		{[]string{"gen", "--to", "parquet"}, `--to "parquet": want petite-csv or petite-jsonl`},
		{[]string{"gen", "--jobs", "9000000000000000000", "--rate", "1e-6"}, "spec:"},
		{[]string{"gen", "--fit", "-", "--spec", "-"}, "--fit and --spec exclude each other"},
		{[]string{"convert", "--pai-jobs", jobs, pods, "-"}, "--pai-jobs joins a PAI task table, and " + pods + " is openb"},
		{[]string{"stats", "--pai-jobs", jobs, pods}, "--pai-jobs joins a PAI task table"},
		{[]string{"stats", "-o", "yaml", pods}, `--output: want table or json, got "yaml"`},
		{[]string{"stats", "--json", "-o", "table", pods}, "--json and --output table exclude each other"},
		{[]string{"head", "--pai-jobs", "-", "-"}, "cannot both be standard input"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := petite(t, nil, append([]string{"trace"}, tc.args...)...)
			assert.Equal(t, exitUsage, code, errOut)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

// A --pai-jobs file that is not there is an error, not a read of the task
// table alone; "-" reads the job table from standard input.
func TestTracePAIJobs(t *testing.T) {
	tasks := "../../traces/testdata/pai/pai_task_table.csv"
	code, _, errOut := petite(t, nil, "trace", "convert", "--pai-jobs", "no-such-jobs.csv", tasks, "-")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "--pai-jobs: stat no-such-jobs.csv: no such file or directory")

	jobTable, err := os.ReadFile("../../traces/testdata/pai/pai_job_table.csv")
	require.NoError(t, err)
	code, viaStdin, errOut := petite(t, strings.NewReader(string(jobTable)), "trace", "convert", "--pai-jobs", "-", tasks, "-")
	require.Equal(t, exitOK, code, errOut)
	code, beside, _ := petite(t, nil, "trace", "convert", tasks, "-")
	require.Equal(t, exitOK, code)
	assert.Equal(t, beside, viaStdin, "the same join as with the job table beside the task table")
}

// Every file argument reads "-" as standard input.
func TestTraceStdin(t *testing.T) {
	pods := string(samples.OpenbDefaultPods())
	nodes := string(samples.OpenbGPUNodes())
	code, spec, _ := petite(t, nil, "trace", "gen", "--jobs", "5", "--print-spec")
	require.Equal(t, exitOK, code)
	tests := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"stats of a job trace", pods, []string{"stats", "-"}, "8152 (7064 use GPUs"},
		{"stats of a machine list", nodes, []string{"stats", "-"}, "openb-nodes"},
		{"stats of a machine list, JSON", nodes, []string{"stats", "--json", "-"}, `"machines": 1213`},
		{"head", pods, []string{"head", "-n", "1", "-"}, "openb-pod-0000"},
		{"sample", pods, []string{"sample", "--jobs", "3", "-", "-"}, "#petite-trace end rows=3"},
		{"convert", pods, []string{"convert", "-", "-"}, "#petite-trace end rows=8152"},
		{"gen --fit", pods, []string{"gen", "--fit", "-", "--print-spec"}, `"jobs": 8152`},
		{"gen --spec", spec, []string{"gen", "--spec", "-"}, "#petite-trace end rows=5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := petite(t, strings.NewReader(tc.stdin), append([]string{"trace"}, tc.args...)...)
			require.Equal(t, exitOK, code, errOut)
			assert.Contains(t, out, tc.want)
		})
	}
}

// stats -o json is --json; the table is the default.
func TestTraceStatsOutput(t *testing.T) {
	path := "../../traces/testdata/helios/cluster_log.csv"
	_, viaOutput, _ := petite(t, nil, "trace", "stats", "-o", "json", path)
	_, viaJSON, _ := petite(t, nil, "trace", "stats", "--json", path)
	assert.Equal(t, viaJSON, viaOutput)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(viaOutput), &st))
	_, table, _ := petite(t, nil, "trace", "stats", "-o", "table", path)
	_, plain, _ := petite(t, nil, "trace", "stats", path)
	assert.Equal(t, plain, table)
	assert.True(t, strings.HasPrefix(table, "trace "), table)
}

// Helios GPU numbers are virtual clusters with a busiest day, not
// machines; a Philly machine list's GPUs are of an unknown model.
func TestTraceStatsFleetWords(t *testing.T) {
	code, out, _ := petite(t, nil, "trace", "stats", "../../traces/testdata/helios/earth_cluster_gpu_number.csv")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "virtual clusters  25 (GPUs per virtual cluster per day")
	assert.Contains(t, out, "GPUs              784 at most, on 2020-04-01 (784 on the last day, 2020-04-03)")
	assert.NotRegexp(t, "(?m)^machines", out, "no machines row")

	code, out, _ = petite(t, nil, "trace", "stats", "../../traces/testdata/philly/cluster_machine_list")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "unknown model")
	assert.NotContains(t, out, "no GPU model")
}

// head prints its columns, not whole fields: a half-megabyte tenant makes
// a short line.
func TestTraceHeadCellsBounded(t *testing.T) {
	in := "job_id,submit,tenant\nj1,1," + strings.Repeat("t", 500_000) + "\nj2,2,bob\n"
	code, out, errOut := petite(t, strings.NewReader(in), "trace", "head", "-")
	require.Equal(t, exitOK, code, errOut)
	assert.Less(t, len(out), 1000)
	assert.Contains(t, out, strings.Repeat("t", 39)+"…")
	assert.Contains(t, out, "bob")
}

// A canonical file without its trailer reads with a warning that stats and
// convert print; under --strict it is an error.
func TestTraceWarnsWithoutTrailer(t *testing.T) {
	in := "job_id,submit\na,1\nb,2\n"
	code, out, _ := petite(t, strings.NewReader(in), "trace", "stats", "-")
	require.Equal(t, exitOK, code)
	assert.Regexp(t, "(?m)^warning +stdin: no trailer line", out)
	code, _, errOut := petite(t, strings.NewReader(in), "trace", "convert", "-", "-")
	require.Equal(t, exitOK, code)
	assert.Contains(t, errOut, "warning: stdin: no trailer line")
	code, _, errOut = petite(t, strings.NewReader(in), "trace", "stats", "--strict", "-")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "stdin:4: no trailer line")
}

// A failed write to standard output fails every trace command with one
// line and exit 1.
func TestTraceWriteErrorsExit1(t *testing.T) {
	pods := "../../traces/samples/openb_pod_list_default.csv"
	for _, args := range [][]string{
		{"trace", "stats", "-o", "json", pods},
		{"trace", "stats", "../../traces/testdata/helios/earth_cluster_gpu_number.csv"},
		{"trace", "head", pods},
		{"trace", "head", "--to", "petite-jsonl", pods},
		{"trace", "convert", pods, "-"},
		{"trace", "sample", "--jobs", "10", pods},
		{"trace", "gen", "--jobs", "100"},
		{"trace", "gen", "--print-spec"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var errb strings.Builder
			code := run(context.Background(), args, strings.NewReader(""), failingWriter{errors.New("no space left on device")}, &errb)
			assert.Equal(t, exitError, code)
			assert.Equal(t, 1, strings.Count(errb.String(), "\n"), "one line: %q", errb.String())
			assert.Contains(t, errb.String(), "no space left on device")
		})
	}
}

// The run that TestTraceInterrupt starts: the whole program, on the
// arguments after "--".
func TestTraceInterruptHelper(t *testing.T) {
	if os.Getenv("PETITE_TRACE_INTERRUPT_HELPER") != "1" {
		t.Skip("run by TestTraceInterrupt")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr))
}

// Ctrl-C while gen or convert writes a file removes the temporary file
// and says so; a file that was there is left as it was.
func TestTraceInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the program and interrupts it")
	}
	big := filepath.Join(t.TempDir(), "big.csv")
	code, _, errOut := petite(t, nil, "trace", "gen", "--jobs", "600000", big)
	require.Equal(t, exitOK, code, errOut)
	tests := []struct {
		name string
		args func(out string) []string
		old  string
	}{
		{"gen", func(out string) []string { return []string{"trace", "gen", "--jobs", "50000000", out} }, ""},
		{"gen over a file", func(out string) []string { return []string{"trace", "gen", "--jobs", "50000000", out} }, "old content\n"},
		{"convert", func(out string) []string { return []string{"trace", "convert", big, out} }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.csv")
			if tc.old != "" {
				require.NoError(t, os.WriteFile(out, []byte(tc.old), 0o644))
			}
			errOut, exited := interruptWhenWriting(t, dir, tc.args(out))
			if !exited {
				return
			}
			assert.Contains(t, errOut, "petite: interrupted after ")
			assert.Contains(t, errOut, "the partial output was removed")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if tc.old == "" {
				assert.Empty(t, names, "no temporary file, no output")
				assert.Contains(t, errOut, "no file "+out+" was made")
			} else {
				assert.Equal(t, []string{"out.csv"}, names, "no temporary file")
				got, err := os.ReadFile(out)
				require.NoError(t, err)
				assert.Equal(t, tc.old, string(got))
				assert.Contains(t, errOut, out+" is as it was")
			}
		})
	}
}

// interruptWhenWriting runs petite with args in a child process, sends it
// SIGINT once its temporary output in dir has data, and returns what it
// printed on stderr and whether it exited by itself after the signal.
func interruptWhenWriting(t *testing.T, dir string, args []string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestTraceInterruptHelper$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "PETITE_TRACE_INTERRUPT_HELPER=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		tmps, _ := filepath.Glob(filepath.Join(dir, ".out.csv.tmp-*"))
		if len(tmps) == 1 {
			if st, err := os.Stat(tmps[0]); err == nil && st.Size() > 0 {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("petite ended before it was interrupted (%v): %s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no temporary output after 60 s: %s", stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-done:
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "exits non-zero: %v", err)
		assert.Equal(t, exitError, ee.ExitCode())
		return stderr.String(), true
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 60 s after SIGINT: %s", stderr.String())
	}
	return "", false
}

// The issue as a user met it: the openb default list converted, then cut
// at byte 30,000, read as 365 jobs with "bad records none" and a phantom
// job "ope". Now --strict fails on it, and a lenient read counts the cut
// row and writes no phantom.
func TestTraceCutCanonical(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full.csv")
	code, _, errOut := petite(t, nil, "trace", "convert", "../../traces/samples/openb_pod_list_default.csv", full)
	require.Equal(t, exitOK, code, errOut)
	data, err := os.ReadFile(full)
	require.NoError(t, err)
	cut := filepath.Join(dir, "cut.csv")
	require.NoError(t, os.WriteFile(cut, data[:30000], 0o644))

	code, _, errOut = petite(t, nil, "trace", "stats", "--strict", cut)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "cut.csv:367: the file ends inside this row")

	code, out, _ := petite(t, nil, "trace", "stats", cut)
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "jobs                             364 (")
	assert.Contains(t, out, "1 bad records skipped")

	code, out, errOut = petite(t, nil, "trace", "convert", cut, "-")
	require.Equal(t, exitOK, code)
	assert.NotContains(t, out, "\nope,")
	assert.Contains(t, out, "\n#petite-trace end rows=364\n")
	assert.Contains(t, errOut, "364 jobs written")
}
