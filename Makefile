# voxgate: `make run` starts it on the embedded default config, `make test` runs every test.
# Both install what they need first (Debian packages via .ci/deps, Go modules from go.mod).
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin
BIN := bin/voxgate

.PHONY: all build run test test-short bench fuzz load deps-run deps-test vet clean

all: build

deps-run:
	@.ci/deps run
	@$(GO) mod download

deps-test:
	@.ci/deps test
	@$(GO) mod download

build: deps-run
	$(GO) build -o $(BIN) ./cmd/voxgate

run: build
	./$(BIN) $(ARGS)

# Every test, real-peer tests (baresip, sipp) included, with the race detector.
# The allocation tests run again without -race: the race detector allocates,
# so under it they skip; here they must pass.
test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 25m ./...
	$(GO) test -count=1 -run 'Allocs' ./...

# Unit tests only (no real peers).
test-short: deps-run
	$(GO) test -short -count=1 ./...

bench: deps-run
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

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

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
