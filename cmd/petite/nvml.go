package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"petite/nvml"
)

// nvmlFlags choose where a node's GPU inventory comes from: the driver, or
// one of go-nvml's mock DGX servers shaped by --mig and --islands.
type nvmlFlags struct {
	mock    string
	mig     string
	islands int
	node    string
}

// addNVMLFlags adds --nvml-mock, --mig, --islands and --node to fs.
func addNVMLFlags(fs *pflag.FlagSet) *nvmlFlags {
	f := &nvmlFlags{}
	fs.StringVar(&f.mock, "nvml-mock", "", "read go-nvml's mock server instead of the driver: "+strings.Join(nvml.MockNames(), ", "))
	fs.StringVar(&f.mig, "mig", "", `with --nvml-mock: partition every GPU into these MIG instances, e.g. "3g.40gb,2g.20gb,2g.20gb"`)
	fs.IntVar(&f.islands, "islands", 0, "with --nvml-mock: split the GPUs into this many NVLink islands (default one)")
	fs.StringVar(&f.node, "node", "", "the node's name (default the host name); it also seeds mock GPU UUIDs")
	return f
}

// open checks the flags and opens the source they name.
func (f *nvmlFlags) open(fs *pflag.FlagSet) (nvml.Source, string, error) {
	node := f.node
	if node == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, "", fmt.Errorf("host name: %w (give --node)", err)
		}
		node = h
	}
	if f.mock == "" {
		for _, name := range []string{"mig", "islands"} {
			if fs.Changed(name) {
				return nil, "", usageErr("--%s shapes a mock node: give --nvml-mock too", name)
			}
		}
		src, err := nvml.Open()
		if err != nil {
			return nil, "", fmt.Errorf("%w (--nvml-mock dgxh100 reads a mock node)", err)
		}
		return src, node, nil
	}
	if !slices.Contains(nvml.MockNames(), f.mock) {
		return nil, "", usageErr("--nvml-mock: unknown mock %q (known: %s)", f.mock, strings.Join(nvml.MockNames(), ", "))
	}
	if f.islands < 0 {
		return nil, "", usageErr("--islands: want 0 or more, got %d", f.islands)
	}
	cfg := nvml.MockConfig{Node: node, Islands: f.islands}
	if f.mig != "" {
		for p := range strings.SplitSeq(f.mig, ",") {
			cfg.MIGAll = append(cfg.MIGAll, strings.TrimSpace(p))
		}
	}
	src, err := nvml.OpenMock(f.mock, cfg)
	if err != nil {
		return nil, "", err
	}
	return src, node, nil
}

// nvmlCommand is `petite nvml`: a node's GPUs as NVML reports them.
func nvmlCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nvml",
		Short: "Read a node's GPU inventory through NVML (or a mock DGX).",
		Long: `Reads the GPUs of this node through NVIDIA's management library, as the agent
does when it registers the node: model, UUID, memory, MIG mode and instances,
NVLink islands, health from XID errors, driver and CUDA versions. With
--nvml-mock it reads one of go-nvml's mock DGX servers instead, through the
same code, so it runs without a GPU.`,
		Example: examples(
			"petite nvml list --nvml-mock dgxh100",
		),
		Args: noArgs,
	}
	// A build without cgo has no NVML: the commands say so, out of sight.
	cmd.Hidden = !nvml.Supported
	cmd.AddCommand(nvmlListCommand())
	return cmd
}

func nvmlListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the node's GPUs.",
		Long: `Lists the node's GPUs. -o table is for people; -o json is the inventory; -o node
is the node as the scheduler registers it: one device per whole GPU and one
per MIG instance (exclusive, its share the instance's compute slices of
seven), each in its GPU's NVLink island, unhealthy GPUs left out, with the
UUID each device's tasks receive in CUDA_VISIBLE_DEVICES. NVML knows nothing
of the node's pool, CPU or memory: --pool, --cpu-milli and --memory-mib give
them.

Without a driver it fails with one line; --nvml-mock names a mock instead.`,
		Example: examples(
			"petite nvml list --nvml-mock dgxh100",
			"# 80 GB A100s, each split into three MIG instances",
			"petite nvml list --nvml-mock dgxa100-80gb --mig 3g.40gb,2g.20gb,2g.20gb",
			"petite nvml list --nvml-mock dgxb200 --islands 2 -o json",
			"# the node the scheduler registers",
			"petite nvml list --nvml-mock dgxh100 --mig 7g.80gb -o node --node dgx-1 --pool hz-onprem --cpu-milli 224000",
			"# on a GPU node, the driver's view",
			"# petite nvml list",
		),
		Args: noArgs,
	}
	fs := cmd.Flags()
	nf := addNVMLFlags(fs)
	pool := fs.String("pool", "", "-o node: the node's pool")
	cpu := fs.Int64("cpu-milli", 0, "-o node: the node's allocatable CPU in milli-cores")
	mem := fs.Int64("memory-mib", 0, "-o node: the node's allocatable memory in MiB")
	output := addOutputFlag(fs, "table", "json", "node")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out, err := output.format()
		if err != nil {
			return err
		}
		if out != "node" {
			for _, name := range []string{"pool", "cpu-milli", "memory-mib"} {
				if fs.Changed(name) {
					return usageErr("--%s is for -o node", name)
				}
			}
		}
		src, node, err := nf.open(fs)
		if err != nil {
			return err
		}
		defer src.Close()
		inv, err := src.Inventory()
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		switch out {
		case "json":
			return writeNVMLJSON(w, inv)
		case "node":
			reg, err := inv.Register(nvml.NodeSpec{Name: node, Pool: *pool, CPUMilli: *cpu, MemoryMiB: *mem})
			if err != nil {
				return err
			}
			return writeNVMLJSON(w, reg)
		}
		return writeInventory(w, inv)
	}
	return cmd
}

// writeNVMLJSON writes v as indented JSON.
func writeNVMLJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeInventory prints the inventory as a table, a MIG GPU's instances
// on the lines below it.
func writeInventory(w io.Writer, inv *nvml.Inventory) error {
	fmt.Fprintf(w, "driver %s, CUDA %s: %s in %s\n\n", inv.Driver, inv.CUDA,
		countOf(len(inv.GPUs), "GPU"), countOf(len(inv.Islands), "NVLink island"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GPU\tMODEL\tMEMORY\tMIG\tISLAND\tHEALTH\tUUID")
	for _, g := range inv.GPUs {
		mig := "-"
		switch {
		case g.MIG.Enabled:
			mig = fmt.Sprintf("%d instances", len(g.Instances))
		case g.MIG.Capable:
			mig = "off"
		}
		if g.MIG.Capable && g.MIG.Pending != g.MIG.Enabled {
			mig += " (reset pending)"
		}
		health := string(g.Health.Status)
		if len(g.Health.XIDs) > 0 {
			health += fmt.Sprintf(" (XID %v)", g.Health.XIDs)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", g.Index, g.Model, gib(g.MemoryMiB), mig, g.Island, health, g.UUID)
		for _, mi := range g.Instances {
			fmt.Fprintf(tw, "  %d/%d\t%s\t%s\t\t\t\t%s\n", mi.GPUInstance, mi.ComputeInstance, mi.Profile, gib(mi.MemoryMiB), mi.UUID)
		}
	}
	return tw.Flush()
}

// countOf says "1 GPU", "8 GPUs".
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// gib formats MiB as GiB with one decimal.
func gib(mib int64) string { return fmt.Sprintf("%.1f GiB", float64(mib)/1024) }
