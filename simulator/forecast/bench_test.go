package forecast

import (
	"testing"
	"time"
)

// BenchmarkForecastPhilly3w forecasts a week from two weeks of Philly's
// series in 10-minute steps: 24 candidates judged from 12 past cutoffs.
func BenchmarkForecastPhilly3w(b *testing.B) {
	s := readSample(b, 10*time.Minute)
	cut := utc(2017, 11, 6, 0, 0)
	cfg := DefaultConfig()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Forecast(s, cut, 7*144, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
