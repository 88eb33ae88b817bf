# usipipo: one static binary. `make run` starts a node on embedded defaults
# with data in ./data; `make test` runs every test; `make bench` writes BENCH.md.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION)
BIN     := bin/usipipo
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)

.PHONY: build run test bench lint clean release

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) .

run: build
	./$(BIN) serve --data ./data

# The race detector runs on every package; long soak runs live in `make bench`.
test:
	CGO_ENABLED=1 $(GO) test -race -timeout 25m -count=1 ./...

bench: build
	./scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# Static, reproducible release binaries (same inputs, same bytes: -trimpath,
# no build id, no VCS stamp, fixed GOAMD64/GOARM64) for every platform of
# RELEASE_PLATFORMS, with the systemd unit and the SHA-256 sums of all, into
# $(DIST): what scripts/install.sh downloads from USIPIPO_BASE_URL.
DIST              ?= dist
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64

release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; echo "building $(DIST)/usipipo-$$os-$$arch ($(VERSION))"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOAMD64=v1 GOARM64=v8.0 GOFLAGS= \
			$(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)' -o $(DIST)/usipipo-$$os-$$arch . ; \
	done
	cp systemd/usipipo.service $(DIST)/
	cd $(DIST) && sha256sum usipipo-* usipipo.service > SHA256SUMS && cat SHA256SUMS

clean:
	rm -rf bin .bench
