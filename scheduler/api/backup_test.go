package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/server"
)

// placements is every job's ID, status and task placements, as the API
// shows them through cl (a stale read: what that server applied).
func placements(t *testing.T, cl *Client) map[string]string {
	t.Helper()
	jobs, err := cl.Jobs(context.Background(), true)
	require.NoError(t, err)
	out := map[string]string{}
	for _, j := range jobs {
		out[j.ID] = fmt.Sprintf("%s %v", j.Status, j.Tasks)
	}
	return out
}

func saveBackup(t *testing.T, cl *Client) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, cl.SaveSnapshot(context.Background(), &b))
	require.True(t, bytes.HasPrefix(b.Bytes(), []byte("petite-snapshot v1 ")), "%.80q", b.String())
	return b.Bytes()
}

// A backup restored onto the running cluster it came from brings every
// server back to the saved state: the same state hash, the same jobs with
// the same placements, what changed since gone.
func TestBackupRestoreRoundTrip(t *testing.T) {
	c := newCluster(t, 3, 4)
	ctx := context.Background()
	cl := c.client(c.leader())
	for _, s := range [][]byte{spec("a", 1, 8), spec("b", 2, 4)} {
		_, err := cl.Submit(ctx, s)
		require.NoError(t, err)
	}
	waitStatus(t, cl, "a", StatusRunning)
	waitStatus(t, cl, "b", StatusRunning)
	c.converged()
	want := c.stateHash(c.leader())
	wantJobs := placements(t, cl)
	file := saveBackup(t, c.client(c.follower())) // read through a follower: forwarded

	// Change the state: one job cancelled, one more placed.
	_, err := cl.Cancel(ctx, "a")
	require.NoError(t, err)
	_, err = cl.Submit(ctx, spec("c", 1, 8))
	require.NoError(t, err)
	waitStatus(t, cl, "c", StatusRunning)
	c.converged()
	require.NotEqual(t, want, c.stateHash(c.leader()))

	res, err := c.client(c.follower()).RestoreSnapshot(ctx, file) // forwarded to the leader
	require.NoError(t, err)
	assert.Equal(t, 2, res.Jobs)
	c.converged()
	for i := range c.ds {
		assert.Equal(t, want, c.stateHash(i), "server %d", i)
		assert.Equal(t, wantJobs, placements(t, c.client(i)), "server %d", i)
	}
	// The cluster goes on: a write after the restore commits everywhere.
	_, err = c.client(c.follower()).Submit(ctx, spec("d", 1, 8))
	require.NoError(t, err)
	waitStatus(t, cl, "d", StatusRunning)
	c.converged()
}

// A backup restored onto a fresh cluster (its own servers and addresses,
// the same server IDs) gives it the old state; writes through its
// followers reach its own leader, not the old cluster's.
func TestBackupRestoreOntoFreshCluster(t *testing.T) {
	old := newCluster(t, 1, 4)
	ctx := context.Background()
	_, err := old.client(0).Submit(ctx, spec("train", 2, 8))
	require.NoError(t, err)
	waitStatus(t, old.client(0), "train", StatusRunning)
	want := old.stateHash(0)
	wantJobs := placements(t, old.client(0))
	file := saveBackup(t, old.client(0))
	old.kill(0)

	fresh := newCluster(t, 3, 2) // a smaller fleet: the backup's replaces it
	_, err = fresh.client(fresh.leader()).RestoreSnapshot(ctx, file)
	require.NoError(t, err)
	fresh.converged()
	for i := range fresh.ds {
		assert.Equal(t, want, fresh.stateHash(i), "server %d", i)
		assert.Equal(t, wantJobs, placements(t, fresh.client(i)), "server %d", i)
	}
	nodes, err := fresh.client(0).Nodes(ctx, "")
	require.NoError(t, err)
	assert.Len(t, nodes, 4)
	_, err = fresh.client(fresh.follower()).Submit(ctx, spec("next", 1, 8))
	require.NoError(t, err)
	waitStatus(t, fresh.client(fresh.leader()), "next", StatusRunning)
}

// A file that is cut, corrupt, of a newer format or no backup at all is
// refused with one line saying which, and the state is left as it was.
func TestBackupRestoreRefusesBadFiles(t *testing.T) {
	c := newCluster(t, 1, 2)
	ctx := context.Background()
	cl := c.client(0)
	_, err := cl.Submit(ctx, spec("keep", 1, 8))
	require.NoError(t, err)
	waitStatus(t, cl, "keep", StatusRunning)
	file := saveBackup(t, cl)
	nl := bytes.IndexByte(file, '\n')
	body := file[nl+1:]

	flipped := slices.Clone(file)
	flipped[nl+1+len(body)/2] ^= 0x20
	future := append([]byte("petite-snapshot v2"), file[len("petite-snapshot v1"):]...)
	// A body that passes its checksum but is no petite state: written by
	// the file's own encoder, so only the body is wrong.
	var foreign bytes.Buffer
	require.NoError(t, server.EncodeBackup(&foreign, server.BackupHeader{Petite: "test"}, []byte(`{"v":1,"type":"something_else"}`)))
	before := c.stateHash(0)
	for _, tc := range []struct {
		name, want string
		file       []byte
	}{
		{"flipped byte", "checksum mismatch", flipped},
		{"truncated", "truncated: the body has", file[:len(file)-100]},
		{"future version", "format v2 is newer than this petite", future},
		{"not a backup", "not a petite snapshot file", []byte(`{"state":1}`)},
		{"header only", "truncated", file[:nl+1]},
		{"foreign body", "body: ", foreign.Bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cl.RestoreSnapshot(ctx, tc.file)
			var ae *Error
			require.True(t, errors.As(err, &ae), "%v", err)
			assert.Equal(t, CodeBadSnapshot, ae.Code)
			assert.Equal(t, 400, ae.Status)
			assert.Contains(t, ae.Message, tc.want)
			assert.NotContains(t, ae.Message, "\n")
			assert.Equal(t, before, c.stateHash(0), "state changed")
		})
	}
	// The server still leads and serves.
	j := waitStatus(t, cl, "keep", StatusRunning)
	assert.Len(t, j.Tasks, 1)
}
