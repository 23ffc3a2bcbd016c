package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"petite/scheduler/state"
)

// A raft log entry is one byte naming its kind, then its body. Most
// entries carry state machine commands in the state package's own
// encoding; the few records that belong to the daemon and not to the
// scheduling state (a task's command line, a server's HTTP address) have
// kinds of their own, so the state machine never sees them.
const (
	// entryCommand: one state command, state.Encode's bytes.
	entryCommand byte = 'c'
	// entryBatch: several state commands applied in order, one log entry
	// (the fleet registered at bootstrap). JSON array of encoded commands.
	entryBatch byte = 'b'
	// entrySubmit: a submit and the daemon's record of the job (the task
	// command line). JSON submitEntry.
	entrySubmit byte = 's'
	// entryServer: a server's HTTP address, so followers can forward to
	// the leader. JSON ServerInfo.
	entryServer byte = 'a'
)

// JobRecord is what the daemon keeps about a job beside the state
// machine: what the agent will run for each of its tasks.
type JobRecord struct {
	// Command is the task's command line, argv form.
	Command []string `json:"command,omitempty"`
	// RequestID is the client's id of the submit that made the job: a
	// submit retried with it (after a lost answer, a leader change) finds
	// this job instead of making a second one.
	RequestID string `json:"request_id,omitempty"`
	// Ran[i] is the node task i was last placed on, "" if never (agents.go):
	// where its logs are.
	Ran []string `json:"ran,omitempty"`
	// RanAt[i] is the raft index of the plan that placed task i last: the
	// run's Alloc in the agent protocol (liveness.go).
	RanAt []uint64 `json:"ran_at,omitempty"`
}

// DuplicateError is a submit refused because its client request id
// already made a job: the retry of a submit that committed.
type DuplicateError struct {
	RequestID string
	// Job is the job the first submit with this id made.
	Job string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("request %s already submitted job %s", e.RequestID, e.Job)
}

// ServerInfo is a server's identity and where its HTTP API listens.
type ServerInfo struct {
	ID   string `json:"id"`
	HTTP string `json:"http"`
}

type submitEntry struct {
	Submit json.RawMessage `json:"submit"`
	Record JobRecord       `json:"record"`
}

// encodeCommand returns the log entry of one state command.
func encodeCommand(cmd state.Command) ([]byte, error) {
	b, err := state.Encode(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", cmd.Type(), err)
	}
	return append([]byte{entryCommand}, b...), nil
}

// encodeBatch returns the log entry of several state commands.
func encodeBatch(cmds []state.Command) ([]byte, error) {
	raws := make([]json.RawMessage, len(cmds))
	for i, c := range cmds {
		b, err := state.Encode(c)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", c.Type(), err)
		}
		raws[i] = b
	}
	return marshalEntry(entryBatch, raws)
}

// encodeSubmit returns the log entry of a submit with the daemon's record.
func encodeSubmit(s state.Submit, rec JobRecord) ([]byte, error) {
	b, err := state.Encode(s)
	if err != nil {
		return nil, fmt.Errorf("encode submit: %w", err)
	}
	return marshalEntry(entrySubmit, submitEntry{Submit: b, Record: rec})
}

func marshalEntry(kind byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode log entry %q: %w", kind, err)
	}
	return append([]byte{kind}, b...), nil
}

// unmarshalStrict decodes JSON refusing unknown fields and trailing data.
func unmarshalStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}
