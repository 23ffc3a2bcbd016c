package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/api"
)

// petite operator snapshot save and restore, as typed: a backup taken,
// the state changed, the backup restored brings the job back with its
// placement; a damaged file is refused with one line naming it, and
// nothing is sent.
func TestOperatorSnapshotCommands(t *testing.T) {
	repo := inShippedTree(t)
	t.Setenv("PETITE_ADDR", devServer(t, "server", "--dev", "--http", "127.0.0.1:0", "--policy", "best-fit"))
	sleepSpecs(t, repo) // trace_export_test.go
	code, out, errOut := petite(t, nil, "job", "run", "train.yaml", "--json")
	require.Equal(t, exitOK, code, errOut)
	var j api.Job
	require.NoError(t, json.Unmarshal([]byte(out), &j))
	status := func() api.Job {
		code, out, errOut := petite(t, nil, "job", "status", j.ID, "--json")
		require.Equal(t, exitOK, code, errOut)
		var got api.Job
		require.NoError(t, json.Unmarshal([]byte(out), &got))
		return got
	}
	saved := status()
	require.Equal(t, api.StatusRunning, saved.Status)

	code, out, errOut = petite(t, nil, "operator", "snapshot", "save", "backup.snap")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "saved backup.snap: ")
	file, err := os.ReadFile("backup.snap")
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(file, []byte("petite-snapshot v1 petite="+version+" ")), "%.100q", file)

	code, _, errOut = petite(t, nil, "job", "stop", j.ID)
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, api.StatusCancelled, status().Status)

	code, out, errOut = petite(t, nil, "operator", "snapshot", "restore", "backup.snap")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "restored backup.snap: ")
	back := status()
	assert.Equal(t, api.StatusRunning, back.Status)
	assert.Equal(t, saved.Tasks, back.Tasks, "the same placement")

	nl := bytes.IndexByte(file, '\n')
	flipped := bytes.Clone(file)
	flipped[len(flipped)-10] ^= 1
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"flipped.snap", "petite: snapshot flipped.snap: checksum mismatch: ", flipped},
		{"cut.snap", "petite: snapshot cut.snap: truncated: the body has ", file[:nl+1+(len(file)-nl)/2]},
		{"future.snap", "petite: snapshot future.snap: format v9 is newer than this petite (" + version + ") reads (v1)",
			append([]byte("petite-snapshot v9"), file[len("petite-snapshot v1"):]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(tc.name, tc.data, 0o644))
			code, out, errOut := petite(t, nil, "job", "stop", j.ID) // a change a bad restore must not undo
			require.Equal(t, exitOK, code, errOut)
			code, out, errOut = petite(t, nil, "operator", "snapshot", "restore", tc.name)
			assert.Equal(t, exitError, code, out)
			assert.True(t, strings.HasPrefix(errOut, tc.want), "%q", errOut)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.Equal(t, api.StatusCancelled, status().Status, "state kept")
		})
	}
	code, _, errOut = petite(t, nil, "operator", "snapshot", "restore")
	assert.Equal(t, exitUsage, code, errOut)
}
