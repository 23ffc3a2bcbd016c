package server

import "time"

// Drain sets how the leader moves work off draining nodes and retires
// pools on their date.
type Drain struct {
	// Deadline is how long a node may drain before the work still on it
	// is evicted (0: no deadline; work leaves only as it is moved).
	Deadline time.Duration
	// RetireLead is how long before a pool's retire_at its nodes start
	// draining (default 72 h).
	RetireLead time.Duration
}

// DefaultRetireLead is the lead time of a Drain that sets none.
const DefaultRetireLead = 72 * time.Hour
