package frag

import (
	"fmt"
	"io"
	"strconv"
)

// WriteText writes a run's result for people. Every figure it prints is a
// field of the Result, so the text and the JSON form cannot disagree.
func (r *Result) WriteText(w io.Writer, wl *Workload) error {
	_, err := fmt.Fprintf(w, "workload %s: %d pods in the trace, %d arrivals (inflate %g, seed %d)\n"+
		"fleet: %d nodes, %d GPUs\n"+
		"policy %s: %.2f%% of GPUs allocated at %s%% arrival (the experiment's figure); %d pods failed\n"+
		"%.2f%% of GPUs allocated at the end of the sequence, at %.2f%% arrival\n",
		wl.Name, len(wl.Pods), r.Pods, r.Inflate, r.Seed, r.Nodes, r.GPUs,
		r.Policy, r.FinalAllocPct, strconv.FormatFloat(r.FinalAtPct, 'f', -1, 64), r.FailedPods,
		r.EndAllocPct, r.EndArrivedPct)
	return err
}
