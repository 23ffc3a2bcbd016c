package server

import (
	"fmt"
	"sync"

	"petite/scheduler/state"
)

// ownedEntries are the command entries this server has handed to raft and
// not yet seen answered, with the command each decodes to. On the leader,
// raft gives the state machine the very bytes it was given, so the machine
// finds the command here instead of decoding the entry it encoded a moment
// before (a plan of a thousand placements costs milliseconds to decode).
// An entry is known by the address of its first byte and its length:
// while it is held here its memory cannot be reused, and nothing writes to
// an entry once made, so the same address and length are the same bytes.
// Every other entry, a follower's, one read back from the log store, is
// decoded as before.
type ownedEntries struct {
	mu sync.Mutex
	m  map[*byte]ownedEntry
}

type ownedEntry struct {
	n   int
	cmd state.Command
}

// add holds entry's command until the returned func is called.
func (o *ownedEntries) add(entry []byte, cmd state.Command) (release func()) {
	k := &entry[0]
	o.mu.Lock()
	if o.m == nil {
		o.m = map[*byte]ownedEntry{}
	}
	o.m[k] = ownedEntry{n: len(entry), cmd: cmd}
	o.mu.Unlock()
	return func() {
		o.mu.Lock()
		delete(o.m, k)
		o.mu.Unlock()
	}
}

// get returns the command of an entry this server handed to raft, if data
// is that entry.
func (o *ownedEntries) get(data []byte) (state.Command, bool) {
	if len(data) == 0 {
		return nil, false
	}
	o.mu.Lock()
	e, ok := o.m[&data[0]]
	o.mu.Unlock()
	if !ok || e.n != len(data) {
		return nil, false
	}
	return e.cmd, true
}

// encodeOwned returns the log entry of one state command, as
// encodeCommand does, and the command a decode of it gives where that
// comes cheaper than decoding (a plan), else nil.
func encodeOwned(cmd state.Command) ([]byte, state.Command, error) {
	b, dec, err := state.EncodeDecoded(cmd)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", cmd.Type(), err)
	}
	return append([]byte{entryCommand}, b...), dec, nil
}
