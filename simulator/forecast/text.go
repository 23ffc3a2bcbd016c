package forecast

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText prints a forecast's summary for people, and the backtest
// table when bt is not nil. what names the demand ("active in FILE").
func WriteText(w io.Writer, what string, r *Result, bt *Backtest) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	horizon := time.Duration(len(r.Steps)) * r.Step
	end := r.Cutoff.Add(horizon)
	fmt.Fprintf(tw, "demand\t%s\n", what)
	fmt.Fprintf(tw, "training\t%d steps of %s before %s (%d masked as outages, %d without data)\n",
		r.Train, FormatSpan(r.Step), fmtTime(r.Cutoff), r.Masked, r.Gaps)
	judged := "too little history to judge; first candidate"
	if r.Origins > 0 {
		judged = fmt.Sprintf("MAE %.2f over %d past cutoffs", r.ValidationMAE, r.Origins)
	}
	fmt.Fprintf(tw, "model\tlevel + damped trend + daily and weekly seasonality (%s)\n", judged)
	if len(r.Chosen) == 1 {
		fmt.Fprintf(tw, "  candidate\t%s\n", r.Chosen[0].Candidate)
	} else {
		fmt.Fprintf(tw, "  candidates\tthe mean of %d of %d (those within %.0f%% of the best past MAE)\n", len(r.Chosen), r.Candidates, 100*r.Slack)
		fmt.Fprintf(tw, "  best alone\t%s (MAE %.2f)\n", r.Best, r.BestMAE)
	}
	fmt.Fprintf(tw, "forecast\t%d steps, %s to %s\n", len(r.Steps), fmtTime(r.Cutoff), fmtTime(end))
	fmt.Fprintf(tw, "  mean\t%.1f\n", r.Mean)
	fmt.Fprintf(tw, "  point peak\t%.1f\n", r.PointPeak)
	fmt.Fprintf(tw, "  size to\t%.1f (the highest %.0f%% upper bound, at %s)\n", r.Peak, 100*(1+r.Level)/2, fmtTime(r.PeakAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	if bt == nil {
		return nil
	}
	fmt.Fprintf(w, "\nbacktest: %d steps scored (%d without data or masked); actual peak %.1f; %.0f%% interval covers %.1f%%\n",
		bt.Scored, bt.Unscored, bt.ActualPeak, 100*r.Level, 100*bt.Coverage)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tMAE\tRMSE\tsMAPE %\tMASE\tpeak\t")
	for _, m := range bt.Methods {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%s\t%.1f\t\n", m.Method, m.MAE, m.RMSE, m.SMAPE, fmtNum(m.MASE, 3), m.Peak)
	}
	fmt.Fprintf(tw, "size to (model)\t\t\t\t\t%.1f\t\n", r.Peak)
	return tw.Flush()
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func fmtNum(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "-"
	}
	return strings.TrimSpace(fmt.Sprintf("%.*f", prec, x))
}
