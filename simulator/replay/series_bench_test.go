package replay_test

import (
	"context"
	"testing"

	"petite/simulator/replay"
	"petite/simulator/scenario"
)

// BenchmarkSeries measures what the series (stranded GPUs included) adds
// to a replay: the retire-onprem example (2,500 jobs on the demo fleet,
// about 49 hours of virtual time) without a series, and sampled every
// minute and every 10 seconds.
func BenchmarkSeries(b *testing.B) {
	s, err := scenario.Load("../../examples/scenarios/retire-onprem.yaml")
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.Compile()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		step int64
	}{{"off", 0}, {"1m", 60 * replay.Second}, {"10s", 10 * replay.Second}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				cfg := c.Config
				cfg.SeriesStep = bc.step
				res, err := replay.Run(context.Background(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				if bc.step > 0 {
					b.ReportMetric(float64(len(res.Series.Samples)), "samples")
				}
			}
		})
	}
}
