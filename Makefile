# pollcast — the two commands: `make run` starts it, `make test` proves it.
GO      ?= go
BIN     := bin/pollcast
# Fuzz targets run briefly by `make test`; longer with FUZZTIME=5m make fuzz.
FUZZTIME ?= 10s

.PHONY: run build test test-deps unit fuzz lint bench clean

## run: build and start pollcast with every role in one process on 127.0.0.1:8080 (data in ./data)
run: build
	./$(BIN) serve

## build: a static binary in bin/pollcast (CGO_ENABLED=0)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/pollcast

## test: lint, install test services if missing, every test with the race detector, then each fuzz target briefly
test: lint test-deps unit fuzz

## test-deps: install the services tests run against (clickhouse-server, redis-server) with apt-get when missing
test-deps:
	./scripts/test-deps.sh

## unit: every test, race detector on, services required (POLLCAST_TEST_STRICT=1); the full log goes to
## test.log, the screen gets each package's result and the figures tests print (votes, convergence times)
unit:
	@POLLCAST_TEST_STRICT=1 $(GO) test -race -count=1 -timeout 15m -v ./... > test.log 2>&1; rc=$$?; \
	grep -E '^(ok|FAIL|--- FAIL|panic:)|^ +[a-z_]+_test\.go:[0-9]+: ' test.log | grep -v 'main_test.go:[0-9]*: time=' ; \
	if [ $$rc -ne 0 ]; then echo "== tests failed; the end of test.log:"; tail -150 test.log; fi; exit $$rc

## fuzz: run each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=$(FUZZTIME) ./votelog
	$(GO) test -run='^$$' -fuzz='^FuzzVoteRequest$$' -fuzztime=$(FUZZTIME) ./cmd/pollcast
	$(GO) test -run='^$$' -fuzz='^FuzzCreatePoll$$' -fuzztime=$(FUZZTIME) ./cmd/pollcast

## lint: gofmt and go vet must be clean
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: the Go benchmarks of every package
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

## clean: remove the binary and the default data directory
clean:
	rm -rf bin data
