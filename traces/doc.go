// Package traces reads GPU cluster traces into one record type, writes
// petite's own canonical trace format, summarises traces and generates
// synthetic ones.
//
// Every reader streams: it holds one record (and, for the PAI join, the
// rows the two tables disagree on) at a time, so a file of millions of rows
// is read in flat memory. A bad row becomes a *ParseError that names the
// file, the line (or JSON path), the field and what was expected; with
// Options.Strict the first one stops the reader, otherwise it is skipped
// and counted (see Reader.Skipped and Reader.Problems).
//
// Formats (see docs/traces.md for the details and quirks of each):
//
//   - openb: Alibaba GPU 2023 pod lists (Weng et al., ATC'23), plus raw
//     row access through ReadOpenbPods and ReadOpenbNodes.
//   - pai: Alibaba PAI 2020 job and task tables (Weng et al., NSDI'22),
//     tasks joined to jobs.
//   - philly: Microsoft Philly cluster_job_log (Jeon et al., ATC'19).
//   - helios: SenseTime Helios cluster_log.csv (Hu et al., SC'21).
//   - petite-csv and petite-jsonl: the canonical format, which every
//     reader converts into and planners can write from their own systems.
//
// The package knows nothing about scheduling: a Job is plain data that
// other packages turn into their own types.
package traces
