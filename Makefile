# pollcast — the two commands: `make run` starts it, `make test` proves it.
GO      ?= go
BIN     := bin/pollcast
# Fuzz targets run briefly by `make test`: a count of inputs each, about ten
# seconds' worth on the CI machine (a duration races Go 1.26's fuzzing
# coordinator at its end: golang/go#75804, "context deadline exceeded" with
# no failing input). Longer with FUZZTIME=5m make fuzz.
FUZZTIME ?=
fuzztime = $(if $(FUZZTIME),$(FUZZTIME),$(1))

.PHONY: run build test test-deps browser-deps unit fuzz lint lint-js bench clean

## run: build and start pollcast with every role in one process on 127.0.0.1:8080 (data in ./data)
run: build
	./$(BIN) serve

## build: a static binary in bin/pollcast (CGO_ENABLED=0)
build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/pollcast

## test: lint, install test services and chromium if missing, every test with the race detector, then each fuzz target briefly
test: lint test-deps browser-deps unit fuzz

## test-deps: install the services tests run against (clickhouse-server, redis-server) with apt-get when missing
test-deps:
	./scripts/test-deps.sh

## browser-deps: install Debian's chromium for the browser tests (apt-get, as root) when it is missing
browser-deps:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "browser-deps: installing chromium with apt-get"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "browser-deps: chromium is missing and this is not root; install it with: sudo apt-get install -y chromium" >&2; \
		echo "browser-deps: without it the browser tests fail under make test (plain go test skips them)" >&2; \
	fi

## unit: every test, race detector on, services required (POLLCAST_TEST_STRICT=1); the full log goes to
## test.log, the screen gets each package's result and the figures tests print (votes, convergence times)
unit:
	@POLLCAST_TEST_STRICT=1 $(GO) test -race -count=1 -timeout 15m -v ./... > test.log 2>&1; rc=$$?; \
	grep -E '^(ok|FAIL|--- FAIL|panic:)|^ +[a-z_]+_test\.go:[0-9]+: ' test.log | grep -v 'main_test.go:[0-9]*: time=' ; \
	if [ $$rc -ne 0 ]; then echo "== tests failed; the end of test.log:"; tail -150 test.log; fi; exit $$rc

## fuzz: run each fuzz target briefly (a count of inputs), or for FUZZTIME when set
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeRecord$$' -fuzztime=$(call fuzztime,50000x) ./votelog
	$(GO) test -run='^$$' -fuzz='^FuzzEachMessage$$' -fuzztime=$(call fuzztime,150000x) ./votelog
	$(GO) test -run='^$$' -fuzz='^FuzzVoteRequest$$' -fuzztime=$(call fuzztime,7000x) ./cmd/pollcast
	$(GO) test -run='^$$' -fuzz='^FuzzCreatePoll$$' -fuzztime=$(call fuzztime,9000x) ./cmd/pollcast
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeVote$$' -fuzztime=$(call fuzztime,3000x) ./web
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeBatch$$' -fuzztime=$(call fuzztime,800x) ./web
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeInbound$$' -fuzztime=$(call fuzztime,20000x) ./realtime
	$(GO) test -run='^$$' -fuzz='^FuzzVoteResultJSON$$' -fuzztime=$(call fuzztime,40000x) ./realtime
	$(GO) test -run='^$$' -fuzz='^FuzzString$$' -fuzztime=$(call fuzztime,400000x) ./internal/jsonscan
	$(GO) test -run='^$$' -fuzz='^FuzzMembers$$' -fuzztime=$(call fuzztime,300000x) ./internal/jsonscan
	$(GO) test -run='^$$' -fuzz='^FuzzAppendString$$' -fuzztime=$(call fuzztime,400000x) ./internal/jsonscan
	$(GO) test -run='^$$' -fuzz='^FuzzSkip$$' -fuzztime=$(call fuzztime,300000x) ./internal/jsonscan
	$(GO) test -run='^$$' -fuzz='^FuzzLiveMessages$$' -fuzztime=$(call fuzztime,60000x) ./loadgen

## lint: gofmt and go vet must be clean, and eslint on the JavaScript (lint-js)
lint: lint-js
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## lint-js: eslint on web/static (a dev-only npm tool, installed into node_modules by npm ci; a go.mod there keeps
## Go's ./... out of it); skipped with a notice without npm
lint-js:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "lint-js: npm not found; skipping the JavaScript lint (install node and npm to run it)"; exit 0; fi; \
	[ -x node_modules/.bin/eslint ] || npm ci --no-audit --no-fund --loglevel=error || exit 1; \
	[ -f node_modules/go.mod ] || echo 'module ignore.invalid/node_modules' > node_modules/go.mod; \
	node_modules/.bin/eslint web/static && echo "lint-js: eslint clean"

## bench: the Go benchmarks of every package, then pollcast bench against a running node beside the bare net/http
## baseline (scripts/bench.sh), then restarts on a log of REBUILD_VOTES votes, without and with a snapshot; figures
## and method in BENCHMARKS.md
REBUILD_VOTES ?= 10000000
bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
	./scripts/bench.sh
	@mkdir -p bench-results; echo "make bench: restart on a log of $(REBUILD_VOTES) votes (writing it first takes a while)"; \
	POLLCAST_REBUILD_VOTES=$(REBUILD_VOTES) $(GO) test -count=1 -timeout 30m -run='^(TestRebuildAtStart|TestRestartFromSnapshot)$$' -v ./cmd/pollcast \
		> bench-results/rebuild.log 2>&1; rc=$$?; grep -E 'rebuild_test|^(ok|FAIL|---)' bench-results/rebuild.log; exit $$rc

## clean: remove the binary and the default data directory
clean:
	rm -rf bin data
