package replay

import (
	"fmt"

	"petite/simulator/workload"
	"petite/traces"
)

// FromTrace converts the jobs of a trace, read by the traces package, into
// the replay's jobs, through simulator/workload (one job per task group).
// name is the trace's file name for errors. A job whose trace records no
// duration takes defaultDuration (nanoseconds) when it is positive, and is
// refused otherwise, naming its record; so is a job whose demand the core
// cannot hold. Times must fit the virtual clock.
func FromTrace(src []traces.Job, name string, defaultDuration int64) ([]Job, error) {
	out := make([]Job, 0, len(src))
	for i := range src {
		tj := &src[i]
		where := fmt.Sprintf("%s: record %d (job %s)", name, i+1, tj.ID)
		d := tj.Duration
		var dur int64
		switch {
		case d >= 0:
			v, err := FromSeconds(d)
			if err != nil {
				return nil, fmt.Errorf("%s: field duration: %w", where, err)
			}
			dur = v
		case defaultDuration > 0:
			dur = defaultDuration
		default:
			return nil, fmt.Errorf("%s: field duration: the trace gives none; pass a default duration to replay it", where)
		}
		sub, err := FromSeconds(max(tj.Submit, 0))
		if err != nil {
			return nil, fmt.Errorf("%s: field submit: %w", where, err)
		}
		jobs, err := workload.Job(tj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		for _, j := range jobs {
			out = append(out, Job{Job: j, Submit: sub, Duration: dur, Source: where})
		}
	}
	return out, nil
}
