package frag

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"petite/scheduler"
)

// OwnPolicies are petite's own policies, measured beside the published ones.
var OwnPolicies = []string{"fgd-strand"}

// PaperWorkloads are the 17 openb workloads of the paper's figures: the
// default trace and four variants of each of its four stresses (more
// multi-GPU pods, more GPU-sharing pods, model constraints, more CPU-only
// pods).
var PaperWorkloads = []string{
	"default",
	"multigpu20", "multigpu30", "multigpu40", "multigpu50",
	"gpushare40", "gpushare60", "gpushare80", "gpushare100",
	"gpuspec10", "gpuspec20", "gpuspec25", "gpuspec33",
	"cpu050", "cpu100", "cpu200", "cpu250",
}

// ParsePolicies reads a policy list: "all" (the published six and
// petite's own), "paper" (the six), or names separated by commas.
func ParsePolicies(s string) ([]string, error) {
	switch strings.TrimSpace(s) {
	case "all":
		return append(slices.Clone(PublishedPolicies), OwnPolicies...), nil
	case "paper":
		return slices.Clone(PublishedPolicies), nil
	}
	known := scheduler.PolicyNames()
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(known, name) {
			return nil, fmt.Errorf("unknown policy %q (known: %s)", name, strings.Join(known, ", "))
		}
		if slices.Contains(out, name) {
			return nil, fmt.Errorf("policy %q repeated", name)
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no policy in %q", s)
	}
	return out, nil
}

// CompareWorkloads orders workload names: "default" first, then by the
// letters of the name and the number that ends it ("gpushare40" before
// "gpushare100").
func CompareWorkloads(a, b string) int {
	if (a == "default") != (b == "default") {
		if a == "default" {
			return -1
		}
		return 1
	}
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	return cmp.Or(strings.Compare(pa, pb), cmp.Compare(na, nb), strings.Compare(a, b))
}

func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n, _ := strconv.Atoi(s[i:])
	return s[:i], n
}

// LoadWorkloads reads pod list files, two at a time, and returns their
// workloads in canonical order (see CompareWorkloads). Two files with the
// same workload name are an error.
func LoadWorkloads(paths []string) ([]*Workload, error) {
	ws := make([]*Workload, len(paths))
	errs := make([]error, len(paths))
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			ws[i], errs[i] = LoadWorkload(p)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	seen := map[string]string{}
	for i, w := range ws {
		if prev, dup := seen[w.Name]; dup {
			return nil, fmt.Errorf("workload %s: both %s and %s", w.Name, prev, paths[i])
		}
		seen[w.Name] = paths[i]
	}
	slices.SortFunc(ws, func(a, b *Workload) int { return CompareWorkloads(a.Name, b.Name) })
	return ws, nil
}
