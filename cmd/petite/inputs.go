package main

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"petite/scheduler"
	"petite/scheduler/fleet"
	"petite/simulator/workload"
	"petite/traces"
	"petite/traces/samples"
)

// maxFleetBytes bounds a fleet file read whole: the largest public machine
// list is a few MB, so a bigger file is a mistake, not a fleet.
const maxFleetBytes = 64 << 20

// readFleetArg reads the fleet --fleet names: the embedded demo fleet for
// "", standard input for "-", else a file. A fleet YAML (or a file that is
// no machine list) is read as YAML; an openb node list, PAI machine spec or
// Philly machine list becomes one owned pool, "default". It returns the
// fleet and how to call it.
func readFleetArg(cmd *cobra.Command, path string) ([]scheduler.Pool, []scheduler.Node, string, error) {
	if path == "" {
		pools, nodes, err := fleet.Parse(bytes.NewReader(fleet.Demo()), "demo.yaml")
		return pools, nodes, "the demo fleet (embedded)", err
	}
	rc, name, err := openInput(cmd, path)
	if err != nil {
		return nil, nil, "", fmt.Errorf("--fleet: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxFleetBytes+1))
	if err != nil {
		return nil, nil, "", fmt.Errorf("read fleet %s: %w", name, err)
	}
	if len(data) > maxFleetBytes {
		return nil, nil, "", fmt.Errorf("fleet %s: larger than %d MiB; not a fleet file", name, maxFleetBytes>>20)
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		pools, nodes, err := fleet.Parse(bytes.NewReader(data), name)
		return pools, nodes, name, err
	}
	br, err := traces.Buffered(bytes.NewReader(data), filepath.Base(name))
	if err != nil {
		return nil, nil, "", err
	}
	f, sniffErr := traces.Sniff(br, filepath.Base(name))
	switch {
	case sniffErr != nil:
		pools, nodes, err := fleet.Parse(bytes.NewReader(data), name)
		return pools, nodes, name, err
	case f == traces.FormatHeliosGPUs:
		return nil, nil, "", fmt.Errorf("fleet %s: Helios GPU numbers count GPUs per virtual cluster, not machines; give a machine list or a fleet YAML", name)
	case !f.IsFleet():
		return nil, nil, "", usageErr("--fleet %s: is a %s job trace, not a fleet (give it to --pods)", name, f)
	}
	ms, f, err := traces.ReadFleet(bytes.NewReader(data), filepath.Base(name), f)
	if err != nil {
		return nil, nil, "", err
	}
	pools, nodes, err := workload.Fleet(ms, workload.DefaultPool())
	if err != nil {
		return nil, nil, "", fmt.Errorf("fleet %s: %w", name, err)
	}
	return pools, nodes, fmt.Sprintf("%s (%s, one pool %q)", name, f, pools[0].Name), nil
}

// jobsInput is a workload read from a job trace.
type jobsInput struct {
	name     string
	meta     traces.Meta
	traced   int // trace jobs read
	jobs     []scheduler.Job
	problems traces.Problems
	dropped  workload.Dropped
}

// readJobsArg reads the workload --pods names: the embedded openb default
// workload for "", standard input for "-", else a file of any job format
// the traces package reads. Records are checked by the traces package (as
// `petite trace stats` checks them): bad ones are skipped and counted, or
// end the read under opts.Strict.
func readJobsArg(cmd *cobra.Command, path string, opts traces.Options) (*jobsInput, error) {
	var r *traces.Reader
	var err error
	in := &jobsInput{name: path}
	where := ""
	switch path {
	case "":
		in.name, where = samples.OpenbDefaultPodsFile, ", embedded"
		r, err = traces.NewReader(bytes.NewReader(samples.OpenbDefaultPods()), samples.OpenbDefaultPodsFile, opts)
	case "-":
		in.name = "stdin"
		r, err = traces.NewReader(cmd.InOrStdin(), "stdin", opts)
	default:
		r, err = traces.Open(path, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("--pods: %w", err)
	}
	defer r.Close()
	var src []traces.Job
	for j, err := range r.All() {
		if err != nil {
			return nil, err
		}
		src = append(src, j)
	}
	in.meta, in.problems, in.traced = r.Meta(), r.Problems(), len(src)
	in.jobs, in.dropped = workload.Jobs(src)
	in.name = fmt.Sprintf("%s (%s%s)", in.name, in.meta.Format, where)
	return in, nil
}
