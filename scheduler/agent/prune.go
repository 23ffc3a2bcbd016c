package agent

import (
	"os"
	"path/filepath"
	"time"
)

// prune removes the directories of runs the servers took (acked) longer
// than keep ago, logs included, and the job directories left empty. Runs
// not yet taken are never removed: they are what a restarted agent
// reports.
func prune(data string, keep time.Duration, now time.Time) (removed int) {
	runs, _ := filepath.Glob(filepath.Join(data, "tasks", "*", "*"))
	jobs := map[string]bool{}
	for _, run := range runs {
		st, err := os.Stat(filepath.Join(run, fileAcked))
		if err != nil || now.Sub(st.ModTime()) < keep {
			continue
		}
		if os.RemoveAll(run) == nil {
			removed++
			jobs[filepath.Dir(run)] = true
		}
	}
	for j := range jobs {
		_ = os.Remove(j) // only when empty
	}
	return removed
}
