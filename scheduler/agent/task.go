package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"petite/scheduler/server"
)

// task is one run of a task on this node, started here or adopted from
// its directory.
type task struct {
	key server.TaskKey
	dir string
	// pid is the supervisor's: the leader of the task's process group.
	// Zero for a placeholder (a task without a command: it holds its
	// devices until the servers stop it).
	pid int
	// waited is closed when the supervisor this agent started has been
	// reaped; nil for an adopted one (polled instead).
	waited chan struct{}
	// stopAt is when the stop's grace ends (zero: not stopping); past it,
	// the agent kills the process groups itself.
	stopAt time.Time
	// ended, with state and code, once the run is over.
	ended bool
	state string // server.TaskRunning, TaskStopping, TaskExited, TaskStopped
	code  int
	// endReported: a heartbeat has carried the end (sent, maybe not taken).
	endReported bool
	// started is when the run started (for an adopted run, when its
	// directory was made); holdUntil delays the report of a crash (see
	// Agent.pollTask).
	started, holdUntil time.Time
}

// report is the task as a heartbeat carries it.
func (t *task) report() server.TaskReport {
	return server.TaskReport{TaskKey: t.key, State: t.state, ExitCode: t.code}
}

// taskDir returns a fresh directory for a run: DATA/tasks/JOB/TASK-GEN, or
// TASK-GEN-N when a run of the same key already ended there (a service's
// replica placed here again).
func taskDir(data string, k server.TaskKey) string {
	base := filepath.Join(data, "tasks", jobDir(k.Job), fmt.Sprintf("%d-%d", k.Task, k.Gen))
	dir := base
	for n := 1; ; n++ {
		// Any error but "exists" ends the search (a name too long would
		// loop for ever): making the directory then says what is wrong.
		if _, err := os.Stat(dir); err != nil {
			return dir
		}
		dir = fmt.Sprintf("%s-%d", base, n)
	}
}

// jobDir is the directory name of a job's runs: the ID itself when it is
// a plain name (letters, digits, '.', '_', '-', not "." or ".."), else "~"
// and the ID in hex. No ID names a path outside the data dir, no two IDs
// share a directory ('~' is in no plain name), and no name holds a
// character a glob pattern gives a meaning.
func jobDir(id string) string {
	plain := id != "" && id != "." && id != ".."
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			plain = false
			break
		}
	}
	if plain {
		return id
	}
	return fmt.Sprintf("~%x", id)
}

// maxJobID bounds a job ID the agent accepts, as the API does.
const maxJobID = 128

// checkKey refuses a task entry that names no sound run, whatever the
// servers checked (defence in depth: an answer may come from an older or
// a faulty server): a job ID that is not a plain name (letters, digits,
// '.', '_', '-', starting with a letter or digit, at most maxJobID bytes)
// or a negative task index or gen.
func checkKey(k server.TaskKey) error {
	if k.Job == "" || len(k.Job) > maxJobID || jobDir(k.Job) != k.Job || !isAlnum(k.Job[0]) {
		return fmt.Errorf("job ID %q: want up to %d letters, digits, '.', '_' or '-', starting with a letter or digit", clip(k.Job), maxJobID)
	}
	if k.Task < 0 || k.Gen < 0 {
		return fmt.Errorf("job %s: task index %d, gen %d: want both 0 or above", k.Job, k.Task, k.Gen)
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// clip shortens a hostile value for a log line.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// start runs an assignment under a supervisor (argv prefix sup, the
// directory appended).
func start(data string, sup []string, a server.Assignment, node string) (*task, error) {
	if err := checkKey(a.TaskKey); err != nil {
		return nil, fmt.Errorf("refused task: %w", err)
	}
	t := &task{key: a.TaskKey, dir: taskDir(data, a.TaskKey), state: server.TaskRunning, started: time.Now()}
	if err := os.MkdirAll(t.dir, 0o755); err != nil {
		return nil, fmt.Errorf("task %s: %w", a.TaskKey, err)
	}
	if err := writeJSON(filepath.Join(t.dir, fileKey), a.TaskKey); err != nil {
		return nil, err
	}
	if len(a.Command) == 0 {
		return t, nil // a placeholder: nothing to run
	}
	devs := strings.Join(a.Devices, ",")
	if devs == "" {
		// No GPU: CUDA sees none (an empty list would show every GPU).
		devs = "void"
	}
	spec := taskSpec{Argv: a.Command, Env: []string{
		"CUDA_VISIBLE_DEVICES=" + devs, "NVIDIA_VISIBLE_DEVICES=" + devs,
		"PETITE_JOB=" + a.Job, "PETITE_TASK=" + strconv.Itoa(a.Task), "PETITE_NODE=" + node,
		// Above 0 the job ran before (preempted, drained, its node lost):
		// training resumes from its checkpoint.
		"PETITE_REQUEUES=" + strconv.Itoa(a.Gen),
	}, Lease: filepath.Join(data, fileLease)}
	if err := writeJSON(filepath.Join(t.dir, fileSpec), spec); err != nil {
		return nil, err
	}
	argv := append(append([]string{}, sup...), t.dir)
	cmd := exec.Command(argv[0], argv[1:]...)
	// A process group of its own: the task outlives the agent, and a
	// terminal's Ctrl-C to the agent does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("task %s: start supervisor %s: %w", a.TaskKey, argv[0], err)
	}
	t.pid = cmd.Process.Pid
	t.waited = make(chan struct{})
	_ = os.WriteFile(filepath.Join(t.dir, fileSupervisor), []byte(strconv.Itoa(t.pid)), 0o644)
	go func() {
		_ = cmd.Wait()
		close(t.waited)
	}()
	return t, nil
}

// adopt reads the runs a previous agent left in the data dir: running
// ones (their supervisor alive), and ended ones the servers have not
// taken yet.
func adopt(data string) ([]*task, error) {
	dirs, err := filepath.Glob(filepath.Join(data, "tasks", "*", "*"))
	if err != nil {
		return nil, fmt.Errorf("adopt: %w", err)
	}
	var out []*task
	for _, dir := range dirs {
		var k server.TaskKey
		if readJSON(filepath.Join(dir, fileKey), &k) != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, fileAcked)); err == nil {
			continue
		}
		t := &task{key: k, dir: dir, state: server.TaskRunning}
		if st, err := os.Stat(filepath.Join(dir, fileKey)); err == nil {
			t.started = st.ModTime()
		}
		if _, err := os.Stat(filepath.Join(dir, fileSpec)); err == nil {
			b, err := os.ReadFile(filepath.Join(dir, fileSupervisor))
			if err != nil {
				continue // never started: nothing ran
			}
			t.pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if _, err := os.Stat(filepath.Join(dir, fileStop)); err == nil && !t.ended {
			t.state = server.TaskStopping
		}
		t.poll()
		out = append(out, t)
	}
	return out, nil
}

// alive says whether the task's supervisor still runs (checked by its
// command line, since a pid may have been given to another process).
func (t *task) alive() bool {
	if t.pid <= 0 {
		return false
	}
	if t.waited != nil {
		select {
		case <-t.waited:
			return false
		default:
			return true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", t.pid))
	if err != nil {
		return syscall.Kill(t.pid, 0) == nil
	}
	return strings.Contains(string(b), t.dir)
}

// poll notes the end of the run, if it ended: its exit record, or a
// supervisor gone without one (killed: the end is unknown).
func (t *task) poll() {
	if t.ended || t.pid == 0 {
		return
	}
	var rec exitRecord
	err := readJSON(filepath.Join(t.dir, fileExit), &rec)
	if err != nil && t.alive() {
		return
	}
	if err != nil {
		// The supervisor was killed: its command, in a group of its own,
		// may run on unwatched. Kill it: the run's end is unknown (-1).
		rec.Code = -1
		if pg := t.childGroup(); pg > 0 {
			_ = syscall.Kill(-pg, syscall.SIGKILL)
		}
	}
	t.ended, t.code = true, rec.Code
	t.state = server.TaskExited
	if _, err := os.Stat(filepath.Join(t.dir, fileStop)); err == nil {
		t.state = server.TaskStopped
	}
}

// stop asks the supervisor to stop the command: SIGTERM, then SIGKILL
// after grace (at once when grace is zero). A placeholder just ends.
func (t *task) stop(grace time.Duration, now time.Time) {
	if t.ended {
		return
	}
	if t.pid == 0 {
		_ = writeJSON(filepath.Join(t.dir, fileStop), stopOrder{})
		t.ended, t.state = true, server.TaskStopped
		return
	}
	if t.state == server.TaskStopping && !(grace == 0 && t.stopAt.After(now)) {
		return // stopping already (a kill still overrides a grace)
	}
	_ = writeJSON(filepath.Join(t.dir, fileStop), stopOrder{GraceMS: grace.Milliseconds()})
	t.state, t.stopAt = server.TaskStopping, now.Add(grace)
	_ = syscall.Kill(t.pid, syscall.SIGTERM)
}

// enforce kills what is left of a stopping task once its grace and a
// margin are over: the supervisor does it itself unless it was killed.
func (t *task) enforce(now time.Time) {
	if t.ended || t.state != server.TaskStopping || now.Before(t.stopAt.Add(2*time.Second)) {
		return
	}
	if pg := t.childGroup(); pg > 0 {
		_ = syscall.Kill(-pg, syscall.SIGKILL)
	}
	if t.alive() {
		_ = syscall.Kill(-t.pid, syscall.SIGKILL)
	}
}

// childGroup is the command's process group, 0 when not known.
func (t *task) childGroup() int {
	b, err := os.ReadFile(filepath.Join(t.dir, fileChild))
	if err != nil {
		return 0
	}
	pg, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pg <= 0 {
		return 0
	}
	return pg
}

// ack marks an ended run as taken by the servers.
func (t *task) ack() {
	_ = os.WriteFile(filepath.Join(t.dir, fileAcked), nil, 0o644)
}
