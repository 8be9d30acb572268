# voxgate: `make run` starts it on the embedded default config, `make test` runs every test,
# `make bench` the end-to-end load benchmarks and then the micro-benchmarks.
# Each installs what it needs first (Debian packages via .ci/deps, Go modules from go.mod).
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin
BIN := bin/voxgate
# voxgate version prints this (git describe), when git and the history are there;
# without it, what Go recorded (module version or commit), else "devel".
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)
LDFLAGS := $(if $(VERSION),-X main.version=$(VERSION))

.PHONY: all build run test test-short bench fuzz load cluster-bench cluster-ceiling deps-run deps-test vet clean

all: build

deps-run:
	@.ci/deps run
	@$(GO) mod download

deps-test:
	@.ci/deps test
	@$(GO) mod download

build: deps-run
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/voxgate

run: build
	./$(BIN) $(ARGS)

# Every test, real-peer tests (baresip, sipp) included, with the race detector.
# The allocation tests run again without -race: the race detector allocates,
# so under it they skip; here they must pass.
test: deps-test
	@unformatted="$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "not gofmt'ed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...
	$(GO) test -count=1 -run 'Allocs' ./...

# Unit tests only (no real peers).
test-short: deps-run
	$(GO) test -short -count=1 ./...

# The end-to-end load benchmarks first: voxgate under SIP and WebRTC load on
# loopback, fed speech by a generator in a child process, CPU per call or leg,
# and its SIP signalling driven by sipp (hence the test packages)
# (one measured window each, hence 1x; README "Benchmarks"). Then the
# micro-benchmarks of the other packages (codecs, mixing, packet paths:
# no sockets between peers, so not figures for capacity), even when an E2E
# benchmark failed (a scenario too big for the machine fails, see README).
bench: deps-test
	@e2e=0; $(GO) test -run '^$$' -bench E2E -benchtime 1x -timeout 20m ./cmd/voxgate || e2e=1; \
	$(GO) test -run '^$$' -bench . -benchtime 2s $$($(GO) list ./... | grep -v '/cmd/voxgate$$') && exit $$e2e

# Fuzz each target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz: deps-run
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# SIP load with sipp against a voxgate started here (see cmd/voxgate/testdata/load.sh).
load: build deps-test
	cmd/voxgate/testdata/load.sh $(BIN)

# Capacity of 1 and 2 nodes behind Kamailio with sipp (cmd/voxgate/testdata/cluster-bench.sh).
cluster-bench: build deps-test
	cmd/voxgate/testdata/cluster-bench.sh $(BIN)

# The ceiling of 1 and 2 nodes, each held to a share of one CPU (cmd/voxgate/testdata/cluster-ceiling.sh; root).
cluster-ceiling: build deps-test
	cmd/voxgate/testdata/cluster-ceiling.sh $(BIN)

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
