# docaxis — build, run, test.
#   make run     start `docaxis serve` on the embedded default (home ./.docaxis)
#   make test    install what the tests need, then run every test and a short fuzz pass
#   make bench   benchmarks (docaxis bench and go test -bench)
#   make bench-agencies   a country's directory on one bus (AGENCIES=100000)

GO        ?= go
BIN       := $(CURDIR)/bin
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
FUZZTIME  ?= 5s
TESTFLAGS ?=
export DOCAXIS_MINIO := $(BIN)/minio
# The multi-process cluster test runs this nats-server: the version go.mod
# pins, built from the module cache.
export DOCAXIS_NATS_SERVER := $(BIN)/nats-server

.PHONY: all build run test test-go deps deps-minio deps-nats deps-debian fuzz bench bench-agencies vet contract clean

all: build

build:
	$(GO) build -o $(BIN)/docaxis ./cmd/docaxis

run: build
	$(BIN)/docaxis serve

# Everything the tests use is real: MinIO (pinned, built from the Go module
# proxy into ./bin), poppler's pdfsig and Chromium from Debian.
deps: deps-minio deps-nats deps-debian

deps-minio: $(BIN)/minio

$(BIN)/minio:
	@mkdir -p $(BIN)
	GOBIN=$(BIN) GOFLAGS=-buildvcs=false $(GO) install github.com/minio/minio@$(MINIO_VERSION)

deps-nats: $(BIN)/nats-server

$(BIN)/nats-server: go.mod go.sum
	@mkdir -p $(BIN)
	GOFLAGS=-buildvcs=false $(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2

deps-debian:
	@missing=""; \
	command -v pdfsig >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v jq >/dev/null 2>&1 || missing="$$missing jq"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

test: deps vet test-go fuzz contract

test-go:
	$(GO) test -count=1 -timeout 30m $(TESTFLAGS) ./...

# Every fuzz target runs briefly here; run longer by hand: make fuzz FUZZTIME=5m
fuzz:
	@./.ci/fuzz.sh $(FUZZTIME)

# The CLI contract of ../shared (when present beside the project).
contract:
	@if [ -x ../shared/acceptance/contract.sh ]; then \
	  for part in core lifecycle http; do ../shared/acceptance/contract.sh $$part || exit 1; done; \
	else echo "../shared/acceptance/contract.sh not found: contract not run"; fi

bench: build
	$(BIN)/docaxis bench --json
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

# A national directory on one bus: registration, RSS and idle CPU at rest,
# directory sync, round trips beside a 10-agency bus (see README).
AGENCIES ?= 100000
bench-agencies: build
	$(BIN)/docaxis bench --agencies $(AGENCIES) --json

clean:
	rm -rf $(BIN)/docaxis
