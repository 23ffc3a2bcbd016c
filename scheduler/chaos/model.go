// Package chaos checks the replicated daemon under faults: real server
// processes, concurrent clients, a nemesis that partitions, kills and
// pauses servers, and a linearizability check of the recorded history
// against a model of jobs and nodes (porcupine). The harness lives in the
// package's tests (TestChaos...); this file is the model.
package chaos

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Phase is what the model knows of a job or node: a job's life as the API
// can observe it. Queued and running are one phase: the leader's
// scheduling passes move a job between them on their own, unseen by
// clients, so the model does not predict them.
type Phase uint8

// The phases, one bit each: a model state is the set of phases the object
// may be in, given the operations whose outcome is unknown.
const (
	Absent Phase = 1 << iota
	Live
	Cancelled
	Succeeded
	Failed
	// Ready and Draining are a node's states set by the admin.
	Ready
	Draining
)

var phaseNames = []string{"absent", "live", "cancelled", "succeeded", "failed", "ready", "draining"}

func (p Phase) String() string {
	var names []string
	for i, n := range phaseNames {
		if p&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// OpKind names an operation of the history.
type OpKind string

// The operations clients run.
const (
	OpSubmit  OpKind = "submit"
	OpCancel  OpKind = "cancel"
	OpFinish  OpKind = "finish"
	OpStatus  OpKind = "status"
	OpSetNode OpKind = "set-node"
	OpGetNode OpKind = "get-node"
)

// Input is an operation as invoked: its kind, the job or node it is about
// (the partition key), and for set-node the state asked.
type Input struct {
	Kind OpKind
	Key  string
	// Arg is the node state asked ("draining", "ready").
	Arg string
	// RequestID is a submit's client request id.
	RequestID string
}

// Result classes of an answer.
const (
	// ResOK: the request was served; Status says what the API answered.
	ResOK = "ok"
	// ResNotFound: no such job (404).
	ResNotFound = "not_found"
	// ResConflict: a submit refused because the job exists (409).
	ResConflict = "conflict"
	// ResRefused: the state machine refused the command (422), changing
	// nothing.
	ResRefused = "refused"
	// ResUnknown: no answer (a timeout, a broken connection, a 5xx): the
	// operation may or may not have taken effect.
	ResUnknown = "unknown"
)

// Output is an operation's answer.
type Output struct {
	Result string
	// Status is the job's status ("queued", "running", "cancelled", ...)
	// or the node's state in the answer.
	Status string
}

// jobPhase maps an API job status to its phase.
func jobPhase(status string) (Phase, bool) {
	switch status {
	case "queued", "running":
		return Live, true
	case "cancelled":
		return Cancelled, true
	case "succeeded":
		return Succeeded, true
	case "failed":
		return Failed, true
	}
	return 0, false
}

func nodePhase(state string) (Phase, bool) {
	switch state {
	case "ready":
		return Ready, true
	case "draining":
		return Draining, true
	}
	return 0, false
}

const ended = Cancelled | Succeeded | Failed

// step is the sequential specification of one operation from one phase:
// the phases it may lead to with this answer (none: impossible).
func step(p Phase, in Input, out Output) Phase {
	unknown := out.Result == ResUnknown
	switch in.Kind {
	case OpSubmit:
		// Job ids are unique per logical submit, retries included.
		switch {
		case unknown:
			if p == Absent {
				return Absent | Live
			}
			return p // a retry of a submit that committed
		case out.Result == ResOK && p == Absent:
			return Live
		case out.Result == ResRefused && p == Absent:
			return Absent
		}
		return 0 // a conflict or a second job is never right
	case OpCancel:
		switch {
		case unknown:
			if p == Live {
				return Live | Cancelled
			}
			return p
		case out.Result == ResNotFound:
			return p & Absent
		case out.Result == ResOK:
			got, ok := jobPhase(out.Status)
			switch {
			case !ok:
				return 0
			case p == Live && got == Cancelled:
				return Cancelled
			case p&ended != 0 && got == p:
				return p // cancelling an ended job changes nothing
			}
		}
		return 0
	case OpFinish:
		switch {
		case unknown:
			if p == Live {
				return Live | Succeeded
			}
			return p
		case out.Result == ResNotFound:
			return p & Absent
		case out.Result == ResRefused:
			return p & Live // still queued
		case out.Result == ResOK:
			got, ok := jobPhase(out.Status)
			switch {
			case !ok:
				return 0
			case p == Live && got == Succeeded:
				return Succeeded
			case p&ended != 0 && got == p:
				return p
			}
		}
		return 0
	case OpStatus:
		switch {
		case unknown:
			return p
		case out.Result == ResNotFound:
			return p & Absent
		case out.Result == ResOK:
			if got, ok := jobPhase(out.Status); ok && got == p {
				return p
			}
		}
		return 0
	case OpSetNode:
		want, ok := nodePhase(in.Arg)
		switch {
		case !ok || p&(Ready|Draining) == 0:
			return 0
		case unknown:
			return p | want
		case out.Result == ResOK:
			return want
		}
		return 0
	case OpGetNode:
		switch {
		case unknown:
			return p
		case out.Result == ResOK:
			if got, ok := nodePhase(out.Status); ok && got == p {
				return p
			}
		}
		return 0
	}
	return 0
}

// Step applies an operation to a set of phases: the set of phases each
// member may lead to.
func Step(set Phase, in Input, out Output) Phase {
	var next Phase
	for rest := set; rest != 0; rest &= rest - 1 {
		next |= step(Phase(1)<<bits.TrailingZeros8(uint8(rest)), in, out)
	}
	return next
}

// Model is the porcupine model of the daemon's jobs and nodes, partitioned
// by job or node: each is independent of the others as clients see them.
// A job starts absent; a node starts ready.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: partition,
		Init:      func() any { return Phase(0) }, // set by the first operation
		Step: func(state, input, output any) (bool, any) {
			in, out := input.(Input), output.(Output)
			set := state.(Phase)
			if set == 0 {
				set = Absent
				if in.Kind == OpSetNode || in.Kind == OpGetNode {
					set = Ready
				}
			}
			next := Step(set, in, out)
			return next != 0, next
		},
		Equal: func(a, b any) bool { return a == b },
		Hash:  func(s any) uint64 { return uint64(s.(Phase)) },
		DescribeOperation: func(input, output any) string {
			in, out := input.(Input), output.(Output)
			arg := in.Arg
			if in.RequestID != "" {
				arg = "req " + in.RequestID
			}
			return fmt.Sprintf("%s(%s %s) -> %s %s", in.Kind, in.Key, arg, out.Result, out.Status)
		},
		DescribeState: func(s any) string { return s.(Phase).String() },
	}
}

func partition(history []porcupine.Operation) [][]porcupine.Operation {
	by := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := op.Input.(Input).Key
		by[k] = append(by[k], op)
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, by[k])
	}
	return out
}
