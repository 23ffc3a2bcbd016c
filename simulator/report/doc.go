// Package report writes one self-contained HTML page about one or more
// replays (simulator/replay): a summary table, allocation, stranded and
// pending GPUs over time per pool, queueing-delay and JCT distributions,
// cost by pool and, for a scenario, what each of its actions changed. The
// plots are inline SVG drawn with gonum/plot; the page loads nothing from
// anywhere and runs no script, so it opens the same offline, in a mail or
// in an archive years later. The same inputs give the same bytes.
package report
