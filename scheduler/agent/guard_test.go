package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"petite/scheduler/server"
)

// TestAgentRefusesUnsafeTasks: the agent checks the entries an answer
// gives it on its own, whatever the servers checked: a job ID that is no
// plain name ("../x", empty, a slash) or a negative task index or gen is
// neither run nor reported, while a sound entry beside them runs.
func TestAgentRefusesUnsafeTasks(t *testing.T) {
	bad := []server.TaskKey{
		{Job: "../x"}, {Job: ""}, {Job: "a/b"}, {Job: ".."}, {Job: "-lead"}, {Job: "ok", Task: -1}, {Job: "ok", Gen: -2},
		{Job: string(make([]byte, 200))},
	}
	fs := &fakeServer{interval: 50 * time.Millisecond}
	for _, k := range bad {
		fs.tasks = append(fs.tasks, server.Assignment{TaskKey: k, Command: []string{"sh", "-c", "sleep 30"}})
	}
	fs.tasks = append(fs.tasks, server.Assignment{TaskKey: server.TaskKey{Job: "good", Task: 2}})
	a, data, _ := runAgent(t, fs, Config{})

	require.Eventually(t, func() bool { return len(a.Tasks()) > 0 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return fs.count() >= 3 }, 5*time.Second, 10*time.Millisecond)
	tasks := a.Tasks()
	require.Len(t, tasks, 1, "only the sound entry is held: %v", tasks)
	assert.Equal(t, "good", tasks[0].Job)
	runs, _ := filepath.Glob(filepath.Join(data, "tasks", "*"))
	assert.Equal(t, []string{filepath.Join(data, "tasks", "good")}, runs, "no directory for a refused entry")
	_, err := os.Stat(filepath.Join(filepath.Dir(data), "x"))
	assert.True(t, os.IsNotExist(err))
}
