package server

import (
	"context"
	"fmt"
	"maps"
)

// entryRetire: a node's own retirement date (RetireRecord, JSON), set by an
// admin; At 0 withdraws it. The drain loop treats it as it treats a pool's
// retire_at: the node drains from Drain.RetireLead before and is retired on
// it. A daemon record beside the state machine, whose encoding it leaves
// alone.
const entryRetire byte = 'r'

// RetireRecord is a node's own retirement date, in Unix seconds (0: none).
type RetireRecord struct {
	Node string `json:"node"`
	At   int64  `json:"at"`
}

// applyRetire applies a retirement date entry.
func (f *FSM) applyRetire(body []byte) (ApplyResult, bool) {
	var rec RetireRecord
	if err := unmarshalStrict(body, &rec); err != nil {
		return ApplyResult{Err: fmt.Errorf("decode retire entry: %w", err)}, false
	}
	if rec.Node == "" {
		return ApplyResult{Err: fmt.Errorf("decode retire entry: field node: empty")}, false
	}
	if rec.At < 0 {
		return ApplyResult{Err: fmt.Errorf("decode retire entry: field at: %d is negative", rec.At)}, false
	}
	if rec.At == 0 {
		delete(f.retire, rec.Node)
		return ApplyResult{}, false
	}
	if f.retire == nil {
		f.retire = map[string]int64{}
	}
	f.retire[rec.Node] = rec.At
	return ApplyResult{}, false
}

// RetireDates returns the nodes' own retirement dates (Unix seconds), a
// copy.
func (f *FSM) RetireDates() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.retire)
}

// SetRetire commits a node's own retirement date (Unix seconds; 0
// withdraws it). The caller checks the node and the date.
func (s *Server) SetRetire(ctx context.Context, node string, at int64) error {
	entry, err := marshalEntry(entryRetire, RetireRecord{Node: node, At: at})
	if err != nil {
		return err
	}
	if _, err := s.apply(ctx, entry); err != nil {
		return fmt.Errorf("retire %s: %w", node, err)
	}
	return nil
}
