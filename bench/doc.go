// Package bench holds petite's headline benchmarks: the figures quoted in
// bench/README.md, each with the command that reproduces it.
package bench
