package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// fileLease is the agent's lease, in its data dir: its modification time is
// when the agent last reached a server (the request's start), its content
// the node's disconnect window in milliseconds. The agent and every task's
// supervisor read it, so that a task is killed when the window runs out
// even if the agent itself is gone: by then the servers have marked the
// node down and placed its work elsewhere, and a task never runs twice for
// long.
const fileLease = "lease"

// writeLease records a contact with a server.
func writeLease(data string, contact time.Time, window time.Duration) error {
	path := filepath.Join(data, fileLease)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(window.Milliseconds(), 10)), 0o644); err != nil {
		return err
	}
	if err := os.Chtimes(tmp, contact, contact); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readLease returns the last contact and the window a lease file holds.
func readLease(path string) (contact time.Time, window time.Duration, ok bool) {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}, 0, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, 0, false
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}, 0, false
	}
	return st.ModTime(), time.Duration(ms) * time.Millisecond, true
}

// leaseExpired says whether a lease file's window has run out at now. A
// lease that cannot be read has not: a task is never killed for a file
// that is being replaced.
func leaseExpired(path string, now time.Time) bool {
	contact, window, ok := readLease(path)
	return ok && now.Sub(contact) > window
}
