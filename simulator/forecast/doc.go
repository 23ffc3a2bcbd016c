// Package forecast fits and projects demand for capacity planning: a demand
// series (GPU nodes or GPUs busy over time, read from a CSV file or derived
// from a job trace) is resampled to a step, cleaned of logging outages,
// fitted with a model of a local level, a damped trend and daily and weekly
// seasonality, and projected over a horizon with prediction intervals taken
// from the model's own errors at each lead time. A backtest compares the
// model with seasonal-naive baselines on the data after a cutoff.
//
// The figure to size a fleet to is the forecast's peak quantile (the
// highest upper bound over the horizon), not its mean: point forecasts of
// real demand undershoot the peak. docs/forecast.md has the method and the
// figures measured on Microsoft's Philly series.
//
// Everything here is deterministic: no clock, no randomness; the same
// input gives the same bytes out.
package forecast
