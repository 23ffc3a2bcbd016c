package server

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage collector's target a server sets for
// its process unless told otherwise: the heap may grow to five times what
// is live between collections, not twice (Go's default of 100). A server
// holds a large live state (the jobs, the nodes, the history of ended
// jobs: 150-200 MB in BenchmarkRaftCommit's three servers) and allocates
// a few megabytes for each plan entry it applies; at 100 it collected
// every 30-50 entries, each collection marking for 30-90 ms of a 2-core
// machine, and the entries committed meanwhile made the commit latency's
// tail. At 400 it collects about a quarter as often, for 10-20% less CPU
// per committed placement (200 gave about as much, 800 no more), at the
// cost of a heap up to 5x the live state instead of 2x: set MemoryLimit
// (or GOMEMLIMIT) where memory is tight.
const DefaultGCPercent = 400

// GC sets the garbage collector of the server's process; Config.GC.
type GC struct {
	// Percent is the collector's target (runtime/debug.SetGCPercent):
	// 0 takes DefaultGCPercent, a negative value leaves the runtime's
	// setting as it is. The GOGC environment variable, when set, wins.
	Percent int
	// MemoryLimit, in bytes, makes the collector work harder as the heap
	// nears it (runtime/debug.SetMemoryLimit), a bound on what a high
	// Percent may cost: 0 sets none. The GOMEMLIMIT environment variable,
	// when set, wins.
	MemoryLimit int64
}

// apply sets the process's collector as g says. The settings are the
// process's, not the server's: servers of one process (tests, benchmarks)
// share them, the last one started setting them.
func (g GC) apply() {
	if _, set := os.LookupEnv("GOGC"); !set && g.Percent >= 0 {
		p := g.Percent
		if p == 0 {
			p = DefaultGCPercent
		}
		debug.SetGCPercent(p)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && g.MemoryLimit > 0 {
		debug.SetMemoryLimit(g.MemoryLimit)
	}
}
