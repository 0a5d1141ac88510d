# docaxis — build, run, test.
#   make run     start `docaxis serve` on the embedded default (home ./.docaxis)
#   make test    install what the tests need, then run every test and a short fuzz pass
#   make bench   benchmarks (docaxis bench and go test -bench)
#   make bench-agencies   a country's directory on one bus (AGENCIES=100000)
#   make release versioned archives for linux/amd64, linux/arm64, windows/amd64 + SHA256SUMS in dist/
#   make image   a from-scratch container image of the static binary (Debian's buildah)

GO        ?= go
BIN       := $(CURDIR)/bin
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
FUZZTIME  ?= 5s
TESTFLAGS ?=
export DOCAXIS_MINIO := $(BIN)/minio
# The multi-process cluster test runs this nats-server: the version go.mod
# pins, built from the module cache.
export DOCAXIS_NATS_SERVER := $(BIN)/nats-server

# What `docaxis version` prints. The date is the commit's, so that the same
# commit builds the same bytes.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILDDATE ?= $(shell git log -1 --format=%cI 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(BUILDDATE)
DIST      := $(CURDIR)/dist
PLATFORMS := linux/amd64 linux/arm64 windows/amd64
IMAGE     ?= localhost/docaxis

.PHONY: all build run test test-go deps deps-minio deps-nats deps-debian fuzz bench bench-agencies vet contract clean release deps-release image deps-image

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/docaxis ./cmd/docaxis

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
	command -v buildah >/dev/null 2>&1 || missing="$$missing buildah"; \
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

# Every fuzz target runs briefly here, two packages at a time (FUZZJOBS=2,
# one worker per target: .ci/fuzz.sh); run longer by hand: make fuzz FUZZTIME=5m
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
	rm -rf $(BIN)/docaxis $(DIST)

# Static binaries (no cgo), one archive per platform with the systemd unit,
# the example configuration, README and CHANGELOG; SHA256SUMS beside them
# (check with: cd dist && sha256sum -c SHA256SUMS).
release: deps-release
	@rm -rf $(DIST) && mkdir -p $(DIST)/stage
	@set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; name=docaxis_$(VERSION)_$${os}_$${arch}; dir=$(DIST)/stage/$$name; \
	  ext=""; [ $$os = windows ] && ext=.exe; \
	  echo "building $$name"; mkdir -p $$dir; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $$dir/docaxis$$ext ./cmd/docaxis; \
	  cp README.md CHANGELOG.md $$dir/; mkdir -p $$dir/deploy; cp deploy/docaxis.service deploy/docaxis.example.yaml $$dir/deploy/; \
	  if [ $$os = windows ]; then \
	    (cd $(DIST)/stage && find $$name -exec touch -d "$(BUILDDATE)" {} + && find $$name | sort | zip -q -X -@ $(DIST)/$$name.zip); \
	  else \
	    tar -C $(DIST)/stage --sort=name --mtime="$(BUILDDATE)" --owner=0 --group=0 --numeric-owner -czf $(DIST)/$$name.tar.gz $$name; \
	  fi; \
	done
	@rm -rf $(DIST)/stage
	@cd $(DIST) && sha256sum docaxis_* > SHA256SUMS && cat SHA256SUMS

deps-release:
	@command -v zip >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq zip; }

# A from-scratch image holding only the static linux binary: no shell, no
# libc, runs as an unprivileged user, the home on the /data volume.
# Built with buildah (no daemon, no registry); run it with podman:
#   podman run -p 4222:4222 -p 8080:8080 -v docaxis:/data $(IMAGE):$(VERSION)
image: deps-image
	@mkdir -p $(DIST)/image/rootfs/data $(DIST)/image/rootfs/tmp
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(DIST)/image/docaxis ./cmd/docaxis
	@set -e; ctr=$$(buildah from scratch); trap 'buildah rm $$ctr >/dev/null' EXIT; \
	buildah copy --chmod 0755 $$ctr $(DIST)/image/docaxis /docaxis >/dev/null; \
	buildah copy --chown 65532:65532 --chmod 0700 $$ctr $(DIST)/image/rootfs/data /data >/dev/null; \
	buildah copy --chmod 1777 $$ctr $(DIST)/image/rootfs/tmp /tmp >/dev/null; \
	buildah config --user 65532:65532 --env DOCAXIS_HOME=/data --workingdir /data --volume /data \
	  --port 4222 --port 8080 --entrypoint '["/docaxis"]' --cmd 'serve --listen 0.0.0.0:4222 --http 0.0.0.0:8080' \
	  --label org.opencontainers.image.title=docaxis --label org.opencontainers.image.version=$(VERSION) \
	  --label org.opencontainers.image.revision=$(COMMIT) $$ctr; \
	buildah commit --quiet $$ctr $(IMAGE):$(VERSION) >/dev/null; buildah tag $(IMAGE):$(VERSION) $(IMAGE):latest; \
	echo "image $(IMAGE):$(VERSION)"

deps-image:
	@command -v buildah >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq buildah; }
