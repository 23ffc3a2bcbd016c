# petite's build. Every target works on a fresh machine with only Go and gcc.
GO        ?= go
PKGS      := ./...
BENCHTIME ?= 1s
FUZZTIME  ?= 30s

.PHONY: all build test test-short bench demo lint fmt fuzz chaos frag-sweep clean

all: lint build test

build:
	$(GO) build -o bin/petite ./cmd/petite

## test: the whole suite, as CI runs it, then the race detector over the
## code that runs goroutines (the sweeps' workers, the CLI driving them, a
## pass planning on frozen state while the machine applies, the raft servers
## and their HTTP API, the node agents, the NVML mocks read concurrently).
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(GO) test -race -count=1 -timeout 20m ./simulator/... ./cmd/... ./scheduler/state/ ./scheduler/server/ ./scheduler/api/ ./scheduler/agent/ ./nvml/

test-short:
	$(GO) test -short -count=1 $(PKGS)

## bench: the headline benchmarks recorded in bench/README.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./bench/

## demo: a planner's first question on the embedded demo fleet: what does
## retiring the on-prem hall cost? Prints the summary and the action's before
## and after, and writes out/report.html.
demo: build
	./bin/petite sim run --scenario examples/scenarios/retire-onprem.yaml --report out/report.html

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(find . -name '*.go' -not -path './bin/*')

## fuzz: run every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done

## chaos: the long chaos run (docs/chaos.md): 20 seeds of at least 10,000
## operations each against petite server processes under a nemesis, every
## history checked for linearizability. Partitions need root and ip netns;
## elsewhere kills and pauses run alone. CHAOSFLAGS adds flags, e.g.
## CHAOSFLAGS='-chaos.seed=7 -chaos.seeds=1'.
CHAOSFLAGS ?=
chaos:
	$(GO) test -count=1 -timeout 8h -run '^TestChaos$$' -v ./scheduler/chaos/ -chaos.long $(CHAOSFLAGS)

## frag-sweep: the fragmentation experiment (Weng et al., ATC'23; docs/frag.md):
## the paper's 17 openb workloads x the six published policies and petite's
## own x seeds 42-51, into out/frag (table.md/.tsv/.json, runs.json, plots).
FRAG_TRACES    ?= ../shared/traces/alibaba-gpu-2023
FRAG_WORKLOADS ?= default multigpu20 multigpu30 multigpu40 multigpu50 \
                  gpushare40 gpushare60 gpushare80 gpushare100 \
                  gpuspec10 gpuspec20 gpuspec25 gpuspec33 cpu050 cpu100 cpu200 cpu250
FRAG_POLICIES  ?= all
FRAG_SEEDS     ?= 42-51
FRAG_OUT       ?= out/frag
FRAG_PARALLEL  ?= $(shell nproc 2>/dev/null || echo 2)

frag-sweep: build
	./bin/petite sim frag sweep --nodes $(FRAG_TRACES)/openb_node_list_gpu_node.csv \
	  $(foreach w,$(FRAG_WORKLOADS),--pods $(FRAG_TRACES)/openb_pod_list_$(w).csv) \
	  --policy $(FRAG_POLICIES) --seed $(FRAG_SEEDS) --parallel $(FRAG_PARALLEL) --out $(FRAG_OUT)

clean:
	rm -rf bin
