package main

import (
	"fmt"
	"math/rand/v2"
	"runtime"

	"github.com/spf13/pflag"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func rootCommand() *command {
	return &command{
		name:    "petite",
		summary: "petite: a GPU-aware workload scheduler and capacity simulator.",
		subs: []*command{
			versionCommand(),
			placeCommand(),
			traceCommand(),
			simCommand(),
		},
	}
}

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "Print petite's version.",
		flags: func(fs *pflag.FlagSet) func([]string) error {
			return func(args []string) error {
				if len(args) > 0 {
					return usageErr("version takes no arguments")
				}
				fmt.Printf("petite %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	}
}

// newRand is the one seeded random source the CLI hands to the core.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }
