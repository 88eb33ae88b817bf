# usipipo: one static binary. `make run` starts a node on embedded defaults
# with data in ./data; `make test` runs every test; `make bench` writes BENCH.md.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -buildid= -X main.version=$(VERSION)
BIN     := bin/usipipo
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/go/bin/staticcheck)

.PHONY: build run test bench lint clean

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

clean:
	rm -rf bin .bench
