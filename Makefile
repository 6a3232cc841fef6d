GO      ?= go
BIN     := bin/flumed
PKGS    := ./...
EXAMPLE ?= testdata/example/agent.properties

.PHONY: all build test vet fmt-check tidy-check test-deps unit bench run clean demo

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
test: vet fmt-check tidy-check test-deps unit

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# tidy-check fails when go.mod or go.sum is not what `go mod tidy` would write
# (a direct dependency marked indirect, a module no longer used).
tidy-check:
	$(GO) mod tidy -diff

# test-deps installs, once and one at a time, the real clients the tests
# drive (Debian packages): util-linux logger, rsyslog, curl, the Thrift
# compiler and Python library, Apache Avro for Python. Tests that need one
# still install it themselves when run alone (go test ./source/...), but in
# make test the packages' tests run in parallel and would queue on dpkg's
# lock. Without root nothing is installed here and a test that needs a
# missing client fails saying which.
#
# It also runs the real HDFS's own installer (HDFS below: Apache Hadoop's
# NameNode and DataNode, which the HDFS sink's tests start; idempotent and
# instant once done). That one must succeed: without it those tests fail.
HDFS ?= ../shared/hdfs
TEST_DEPS := logger:bsdutils rsyslogd:rsyslog curl:curl thrift:thrift-compiler openssl:openssl
TEST_PY_DEPS := thrift:python3-thrift avro:python3-avro snappy:python3-snappy

test-deps:
	@test -x $(HDFS)/bin/hdfs-deps || { echo "test-deps: no $(HDFS)/bin/hdfs-deps (the real HDFS the HDFS sink's tests run; set HDFS=DIR)"; exit 1; }
	$(HDFS)/bin/hdfs-deps
	@missing=""; \
	for d in $(TEST_DEPS); do \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $${d%%:*} >/dev/null 2>&1 || missing="$$missing $${d#*:}"; \
	done; \
	for d in $(TEST_PY_DEPS); do \
		/usr/bin/python3 -c "import $${d%%:*}" >/dev/null 2>&1 || missing="$$missing $${d#*:}"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "test-deps: missing$$missing (not root: the tests that need them will fail)"; exit 0; fi; \
	echo "test-deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	{ apt-get -o DPkg::Lock::Timeout=600 update >/dev/null && \
	  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $$missing; }

unit:
	FLUMED_HDFS_HOME=$(abspath $(HDFS)) $(GO) test -race -timeout 20m $(PKGS)

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
