GO      ?= go
BIN     := bin/flumed
PKGS    := ./...
EXAMPLE ?= testdata/example/agent.properties

.PHONY: all build test vet fmt-check tidy-check unit bench run clean demo

all: build

# The version is the nearest tag (or "devel"), the commit git's, the build
# time now in UTC; `flumed version` prints them with the Go version.
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_TIME ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildTime=$(BUILD_TIME)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/flumed

# test is what CI runs (.ci/run): static checks, then every test with the race
# detector, including the end-to-end tests that start real flumed processes.
test: vet fmt-check tidy-check unit

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# tidy-check fails when go.mod or go.sum is not what `go mod tidy` would write
# (a direct dependency marked indirect, a module no longer used).
tidy-check:
	$(GO) mod tidy -diff

unit:
	$(GO) test -race -timeout 20m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m ./bench/...

run: build
	./$(BIN) run -c $(EXAMPLE) -n a1

# demo runs the seed's failover exercise (testdata/failover) with three real
# flumed processes, narrated step by step; it needs ports 52020 and 52021.
demo:
	$(GO) run ./cmd/flumed-demo

clean:
	rm -rf bin
