package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// A task's directory (DATA/tasks/JOB/TASK-GEN[-N]) holds everything about
// one run, so that an agent started later learns all of it from the files:
const (
	fileKey        = "key.json"       // the run's TaskKey
	fileSpec       = "spec.json"      // what to run: taskSpec
	fileSupervisor = "supervisor.pid" // the supervisor's pid (the task's process group leader)
	fileChild      = "child.pid"      // the command's pid (leader of its own process group)
	fileStop       = "stop.json"      // a stop asked: stopOrder; its presence marks the end "stopped"
	fileExit       = "exit.json"      // how the run ended: exitRecord, written last
	fileAcked      = "acked"          // the servers took the end: never reported again
	fileStdout     = "stdout.log"
	fileStderr     = "stderr.log"
)

// taskSpec is what the supervisor runs.
type taskSpec struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	// Lease is the agent's lease file (see lease.go): the supervisor kills
	// the command once the lease has run out, even with no agent running.
	Lease string `json:"lease,omitempty"`
}

// stopOrder is the grace of a stop asked of the supervisor.
type stopOrder struct {
	GraceMS int64 `json:"grace_ms"`
}

// exitRecord is how a run ended.
type exitRecord struct {
	// Code is the exit status; 128+N when signal N ended the command; 127
	// when it could not start.
	Code int `json:"code"`
	// Signal names the signal that ended it, if one did.
	Signal string `json:"signal,omitempty"`
	// Error says why the command did not start.
	Error string `json:"error,omitempty"`
}

// Supervise runs one task's command from its directory and waits for it:
// the process that `petite agent supervise DIR` is. The agent starts it as
// the leader of a process group of its own, so that the task outlives the
// agent; the command runs in a process group of its own too, so that a
// stop reaches everything it started. On SIGTERM the supervisor reads the
// grace of the stop (stop.json), sends SIGTERM to the command's group,
// and SIGKILL once the grace is over. It writes the command's exit status
// to exit.json when it ends: what lets an agent that did not start the task
// learn how it ended.
func Supervise(dir string) error {
	var spec taskSpec
	if err := readJSON(filepath.Join(dir, fileSpec), &spec); err != nil {
		return fmt.Errorf("supervise %s: %w", dir, err)
	}
	if len(spec.Argv) == 0 {
		return fmt.Errorf("supervise %s: field argv: empty", dir)
	}
	stdout, err := os.OpenFile(filepath.Join(dir, fileStdout), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("supervise: %w", err)
	}
	defer stdout.Close()
	stderr, err := os.OpenFile(filepath.Join(dir, fileStderr), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("supervise: %w", err)
	}
	defer stderr.Close()

	// Catch the stop before the command starts, so a stop that comes at
	// once is not the supervisor's death.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "petite: %v\n", err)
		return writeJSON(filepath.Join(dir, fileExit), exitRecord{Code: 127, Error: err.Error()})
	}
	pgid := cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(dir, fileChild), []byte(strconv.Itoa(pgid)), 0o644); err != nil {
		fmt.Fprintf(stderr, "petite: %v\n", err)
	}
	done := make(chan struct{})
	go func() {
		var kill <-chan time.Time
		leaseTick := time.NewTicker(250 * time.Millisecond)
		defer leaseTick.Stop()
		for {
			select {
			case <-done:
				return
			case <-leaseTick.C:
				if spec.Lease == "" || !leaseExpired(spec.Lease, time.Now()) {
					continue
				}
				// No agent has reached a server for the node's disconnect
				// window: the servers have placed this work elsewhere.
				fmt.Fprintln(stderr, "petite: the node's lease ran out (no server reached within its disconnect window): task killed")
				_ = writeJSON(filepath.Join(dir, fileStop), stopOrder{})
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			case <-kill:
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			case <-sigs:
				var so stopOrder
				if err := readJSON(filepath.Join(dir, fileStop), &so); err != nil {
					so.GraceMS = 10_000 // a stop without an order: a signal from outside
				}
				if so.GraceMS <= 0 {
					_ = syscall.Kill(-pgid, syscall.SIGKILL)
					continue
				}
				_ = syscall.Kill(-pgid, syscall.SIGTERM)
				if kill == nil {
					kill = time.After(time.Duration(so.GraceMS) * time.Millisecond)
				}
			}
		}
	}()
	werr := cmd.Wait()
	close(done)
	rec := exitRecord{}
	var ee *exec.ExitError
	switch {
	case werr == nil:
	case errors.As(werr, &ee):
		rec.Code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			rec.Code, rec.Signal = 128+int(ws.Signal()), ws.Signal().String()
		}
	default:
		rec.Code, rec.Error = -1, werr.Error()
	}
	return writeJSON(filepath.Join(dir, fileExit), rec)
}

// readJSON decodes a small JSON file.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeJSON writes a file whole or not at all (a temporary file renamed),
// so that a reader never sees half of it.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
