package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petite/scheduler"
	"petite/simulator/scenario"
	"petite/simulator/workload"
	"petite/traces"
)

// validateCommand checks inputs without placing anything, as `nomad job
// validate` checks a job file.
func validateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a fleet, a workload or a scenario without running anything.",
		Long: `Reads a fleet (--fleet: a fleet YAML or a machine list) and a workload (--pods:
any job trace the trace tools read) as 'petite place' would, and reports what
they hold and the first problems, each naming file, line and field. Nothing
is placed. It exits 1 when an input is invalid: a fleet that does not load, or
a workload with bad records or jobs the scheduler cannot hold.

With both, it also counts the jobs that no node of the fleet could take even
when empty (a warning: the inputs are valid, the job will never be placed).

With --scenario it checks a what-if scenario (docs/scenario.md): the file
itself, the fleet and workload it names, and that every action compiles for
the replay (an action the engine cannot run yet is an error saying so).`,
		Example: examples(
			"petite validate --fleet scheduler/fleet/demo.yaml",
			"petite validate --pods traces/samples/openb_pod_list_default.csv",
			"# a machine list and a job trace together, as JSON",
			"petite validate --fleet traces/testdata/pai/pai_machine_spec.csv --pods traces/testdata/pai/pai_task_table.csv -o json",
			"petite validate --fleet - < traces/testdata/philly/cluster_machine_list",
			"# a scenario, with the fleet and workload it names",
			"petite validate --scenario examples/scenarios/retire-onprem.yaml",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	fleetPath := fs.String("fleet", "", `fleet YAML or machine list to check, "-" for stdin`)
	podsPath := fs.String("pods", "", `job trace to check, "-" for stdin`)
	scenarioPath := fs.String("scenario", "", `scenario YAML to check (docs/scenario.md), "-" for stdin`)
	format := fs.String("format", "auto", "format of --pods: auto, openb, pai, philly, helios, petite-csv, petite-jsonl")
	output := addOutputFlag(fs, "table", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out, err := output.format()
		if err != nil {
			return err
		}
		f, err := traces.ParseFormat(*format)
		if err != nil {
			return usageErr("--format: %v", err)
		}
		if *scenarioPath != "" && (*fleetPath != "" || *podsPath != "") {
			return usageErr("--scenario names its own fleet and workload: give it alone")
		}
		if *fleetPath == "" && *podsPath == "" && *scenarioPath == "" {
			return usageErr("nothing to check: give --fleet, --pods or both, or --scenario")
		}
		if *fleetPath == "-" && *podsPath == "-" {
			return usageErr("--fleet and --pods cannot both read standard input")
		}
		var r *validation
		if *scenarioPath != "" {
			r = validateScenario(cmd, *scenarioPath)
		} else {
			r = validate(cmd, *fleetPath, *podsPath, traces.Options{Format: f})
		}
		if out == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(r); err != nil {
				return err
			}
		} else if err := printValidation(cmd.OutOrStdout(), r); err != nil {
			return err
		}
		if !r.Valid {
			return errors.New(r.failure)
		}
		return nil
	}
	return cmd
}

// fleetReport is what validate found in a fleet.
type fleetReport struct {
	Source       string   `json:"source"`
	Valid        bool     `json:"valid"`
	Error        string   `json:"error,omitempty"`
	Pools        int      `json:"pools"`
	Nodes        int      `json:"nodes"`
	GPUs         int      `json:"gpus"`
	MIGInstances int      `json:"mig_instances"`
	Models       []string `json:"models,omitempty"`
}

// podsReport is what validate found in a workload.
type podsReport struct {
	Source     string           `json:"source"`
	Valid      bool             `json:"valid"`
	Error      string           `json:"error,omitempty"`
	Format     traces.Format    `json:"format,omitempty"`
	TraceJobs  int              `json:"trace_jobs"`
	Jobs       int              `json:"jobs"`
	GPUJobs    int              `json:"gpu_jobs"`
	BadRecords traces.Problems  `json:"bad_records"`
	Dropped    workload.Dropped `json:"dropped"`
	// NeverFit counts jobs no node of the fleet could take even empty.
	NeverFit         int      `json:"never_fit"`
	NeverFitExamples []string `json:"never_fit_examples,omitempty"`
}

// validation is the report of `petite validate`.
type validation struct {
	Valid bool         `json:"valid"`
	Fleet *fleetReport `json:"fleet,omitempty"`
	Pods  *podsReport  `json:"pods,omitempty"`
	// Scenario is the report of --scenario.
	Scenario *scenarioReport `json:"scenario,omitempty"`
	failure  string
}

func validate(cmd *cobra.Command, fleetPath, podsPath string, opts traces.Options) *validation {
	v := &validation{Valid: true}
	var cluster *scheduler.Cluster
	if fleetPath != "" {
		fr := &fleetReport{Source: fleetPath}
		v.Fleet = fr
		pools, nodes, name, err := readFleetArg(cmd, fleetPath)
		if err == nil {
			cluster, err = scheduler.NewCluster(pools, nodes)
		}
		if err != nil {
			fr.Error = strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
			v.fail(fmt.Sprintf("fleet %s is invalid", fleetPath))
		} else {
			fr.Valid, fr.Source, fr.Pools, fr.Nodes = true, name, len(pools), len(nodes)
			for i := range nodes {
				for _, g := range nodes[i].GPUs {
					if g.MIG != "" {
						fr.MIGInstances++
					} else {
						fr.GPUs++
					}
				}
			}
			fr.Models = cluster.Models()
		}
	}
	if podsPath != "" {
		pr := &podsReport{Source: podsPath}
		v.Pods = pr
		in, err := readJobsArg(cmd, podsPath, opts)
		if err != nil {
			pr.Error = err.Error()
			v.fail(fmt.Sprintf("workload %s is invalid", podsPath))
			return v
		}
		pr.Source, pr.Format, pr.TraceJobs, pr.Jobs = in.name, in.meta.Format, in.traced, len(in.jobs)
		pr.BadRecords, pr.Dropped = in.problems, in.dropped
		for i := range in.jobs {
			if in.jobs[i].Task.GPUs > 0 {
				pr.GPUJobs++
			}
		}
		pr.Valid = in.problems.Skipped == 0 && in.dropped.Invalid == 0
		if !pr.Valid {
			v.fail(fmt.Sprintf("workload %s is invalid: %d bad records, %d jobs the scheduler cannot hold",
				podsPath, in.problems.Skipped, in.dropped.Invalid))
		}
		if cluster != nil {
			neverFit(cluster, in.jobs, pr)
		}
	}
	return v
}

func (v *validation) fail(msg string) {
	if v.Valid {
		v.failure = msg
	}
	v.Valid = false
}

// neverFit counts the jobs no node of the empty fleet could take a task
// of, one check per distinct task shape.
func neverFit(c *scheduler.Cluster, jobs []scheduler.Job, pr *podsReport) {
	fits := map[string]bool{}
	for i := range jobs {
		j := &jobs[i]
		key := fmt.Sprint(j.Task.GPUs, j.Task.GPUMilli, j.Task.Models, j.Task.CPUMilli, j.Task.MemoryMiB)
		ok, seen := fits[key]
		if !seen {
			s, err := c.ShapeOf(&j.Task)
			for n := 0; err == nil && n < c.NumNodes() && !ok; n++ {
				ok = c.Fits(scheduler.NodeID(n), &s)
			}
			fits[key] = ok
		}
		if !ok {
			pr.NeverFit++
			if len(pr.NeverFitExamples) < traces.MaxExamples {
				u := unplacedOf(j)
				pr.NeverFitExamples = append(pr.NeverFitExamples, fmt.Sprintf("job %s asks for %s", j.ID, demand(&u)))
			}
		}
	}
}

func printValidation(w io.Writer, v *validation) error {
	p := &errPrinter{w: w}
	if sc := v.Scenario; sc != nil {
		if !sc.Valid {
			p.printf("scenario %s: invalid: %s\n", sc.Source, sc.Error)
			return p.err
		}
		p.printf("scenario %s: valid: %q: %d jobs over %d pools, %d nodes; %d actions compile to %d node events\n",
			sc.Source, sc.Name, sc.Jobs, sc.Pools, sc.Nodes, len(sc.Actions), sc.NodeEvents)
		for _, a := range sc.Actions {
			p.printf("  actions[%d] (line %d): %s at +%s: %d nodes, %d events\n", a.Index, a.Line, a.Do, a.AtOffset, len(a.Nodes), a.Events)
		}
		return p.err
	}
	if f := v.Fleet; f != nil {
		if !f.Valid {
			p.printf("fleet %s: invalid: %s\n", f.Source, f.Error)
		} else {
			mig := ""
			if f.MIGInstances > 0 {
				mig = fmt.Sprintf(" + %d MIG instances", f.MIGInstances)
			}
			p.printf("fleet %s: valid: %d pools, %d nodes, %d GPUs%s (models %s)\n",
				f.Source, f.Pools, f.Nodes, f.GPUs, mig, strings.Join(f.Models, ", "))
		}
	}
	if r := v.Pods; r != nil {
		switch {
		case r.Error != "":
			p.printf("workload %s: invalid: %s\n", r.Source, r.Error)
		default:
			state := "valid"
			if !r.Valid {
				state = "invalid"
			}
			p.printf("workload %s: %s: %d jobs read, %d to place (%d use GPUs)\n", r.Source, state, r.TraceJobs, r.Jobs, r.GPUJobs)
			if r.BadRecords.Skipped > 0 {
				p.printf("  bad records: %s\n", strings.ReplaceAll(r.BadRecords.String(), "\n", "\n  "))
			}
			if d := r.Dropped; d.Total() > 0 {
				p.printf("  jobs that cannot be placed: %d without demand, %d the scheduler cannot hold\n", d.NoDemand, d.Invalid)
				for _, e := range d.Examples {
					p.printf("    %s\n", e)
				}
			}
			if r.NeverFit > 0 {
				p.printf("  warning: %d jobs fit no node of the fleet, even empty\n", r.NeverFit)
				for _, e := range r.NeverFitExamples {
					p.printf("    %s\n", e)
				}
			}
		}
	}
	return p.err
}

// scenarioReport is what validate found in a scenario.
type scenarioReport struct {
	Source string `json:"source"`
	Valid  bool   `json:"valid"`
	Error  string `json:"error,omitempty"`
	// NeedsEngine is set when an action is valid but the replay engine
	// cannot run it yet.
	NeedsEngine bool              `json:"needs_engine,omitempty"`
	Name        string            `json:"name,omitempty"`
	Pools       int               `json:"pools"`
	Nodes       int               `json:"nodes"`
	Jobs        int               `json:"jobs"`
	NodeEvents  int               `json:"node_events"`
	Actions     []scenarioActions `json:"actions,omitempty"`
}

// scenarioActions is one compiled action, its time as an offset from the
// workload start.
type scenarioActions struct {
	scenario.Compiled1
	AtOffset string `json:"at_offset"`
}

// validateScenario loads a scenario, the fleet and workload it names, and
// compiles it without running it.
func validateScenario(cmd *cobra.Command, path string) *validation {
	v := &validation{Valid: true}
	sr := &scenarioReport{Source: path}
	v.Scenario = sr
	c, err := compileScenario(cmd, path)
	if err != nil {
		sr.Error = err.Error()
		sr.NeedsEngine = errors.Is(err, scenario.ErrNeedsEngine)
		v.fail(fmt.Sprintf("scenario %s is invalid", path))
		return v
	}
	sr.Valid, sr.Name, sr.Source = true, c.name, c.source
	cfg := &c.Config
	sr.Pools, sr.Nodes, sr.Jobs, sr.NodeEvents = len(cfg.Pools), len(cfg.Nodes), len(cfg.Jobs), len(cfg.NodeEvents)
	for _, a := range c.Actions {
		sr.Actions = append(sr.Actions, scenarioActions{Compiled1: a, AtOffset: time.Duration(a.At - c.Start).String()})
	}
	return v
}

type namedScenario struct {
	*scenario.Compiled
	name, source string
}

func compileScenario(cmd *cobra.Command, path string) (*namedScenario, error) {
	s, err := loadScenario(cmd, path)
	if err != nil {
		return nil, err
	}
	name := s.Path
	c, err := s.Compile()
	if err != nil {
		return nil, err
	}
	return &namedScenario{Compiled: c, name: s.Name, source: name}, nil
}

// loadScenario reads a scenario file, or standard input for "-" (paths in
// it then start from the working folder).
func loadScenario(cmd *cobra.Command, path string) (*scenario.Scenario, error) {
	in, name, err := openInput(cmd, path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	defer in.Close()
	return scenario.Parse(in, name)
}
