#!/usr/bin/env bash
# Measures pollcast on this machine with `pollcast bench`, against a bare
# net/http baseline (cmd/benchbase) to report a machine-independent ratio:
#
#   1. the baseline: bench http, concurrency 64; and wrk -t1 -c64 POSTing
#      single votes (scripts/wrk-vote.lua, only 202s counted);
#   2. pollcast (embedded NATS, memory tally, fresh data directory, no vote
#      rate limit), once for each --fsync mode of FSYNC_MODES: bench http,
#      ws, batch and the same wrk run as the baseline's; then bench viewers
#      (VIEWERS live viewers while VIEWER_RATE votes/s arrive), with the
#      server's RSS before and while the viewers are connected;
#   3. when redis-server is installed: http and batch again with the Redis
#      tally store (--redis on a throwaway redis-server).
#
# Each run's JSON summary goes to bench-results/<time>/. The exit status is
# nonzero when any run failed (errors or a failed exactness check).
#
# Environment: DURATION (each run, default 10s), VIEWERS (10000),
# VIEWER_RATE (5000), VIEWER_CONCURRENCY (the voters of the viewers run,
# 64), OUT (results directory), RUNS (which runs, default
# "baseline http ws batch wrk viewers redis"; e.g. RUNS=viewers for one),
# FSYNC_MODES (the --fsync values the http, ws, batch and wrk runs are
# made with, default "always 2m"; runs of a mode other than always are
# named with -fsync<mode>, such as http-fsync2m). The wrk runs are skipped
# with a notice when wrk is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
VIEWERS=${VIEWERS:-10000}
VIEWER_RATE=${VIEWER_RATE:-5000}
VIEWER_CONCURRENCY=${VIEWER_CONCURRENCY:-64}
OUT=${OUT:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
KEY=bench-admin-key-$RANDOM$RANDOM$RANDOM
RUNS=" ${RUNS:-baseline http ws batch wrk viewers redis} "
FSYNC_MODES=${FSYNC_MODES:-always 2m}

# want RUN: whether RUNS names RUN.
want() { [[ $RUNS == *" $1 "* ]]; }

TMP=$(mktemp -d)
PIDS=()
FAILED=()
ROWS=()

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

log() { echo "bench.sh: $*" >&2; }

# stop PID: ends a process this script started.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# jget FILE KEY: the first value of "KEY" in a summary (indented JSON, one
# field a line, as pollcast bench --json writes it).
jget() {
  grep -m1 "\"$2\":" "$1" | sed 's/^[^:]*: *//; s/[",]//g'
}

# free_port: a TCP port nobody listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 30000))
}

# wait_for WHAT CMD...: retries CMD every 0.1 s for up to 30 s.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "timed out waiting for $what"
  return 1
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# cpu_ticks PID: the CPU time (user + system) a process has used, in clock
# ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# settle PID: waits until the process stops working (less than 5 ticks a
# second, at most 60 s): the analytics sink catches up after a run, and
# its CPU belongs to the votes of the run.
settle() {
  local prev now
  prev=$(cpu_ticks "$1")
  for _ in $(seq 60); do
    sleep 1
    now=$(cpu_ticks "$1")
    [ $((now - prev)) -lt 5 ] && return
    prev=$now
  done
}

# bench NAME URL SCENARIO FLAGS...: runs pollcast bench with --json into
# $OUT/NAME.json and adds a row to the table, with the CPU time the server
# ($SERVER_PID, until it settles) and the load generator spent per
# accepted vote: steadier than throughput on a shared machine.
bench() {
  local name=$1 url=$2 scenario=$3
  shift 3
  log "$name: pollcast bench $scenario $*"
  local rc=0 before timed=()
  before=$(cpu_ticks "$SERVER_PID")
  if [ -x /usr/bin/time ]; then timed=(/usr/bin/time -f '%U %S' -o "$OUT/$name.time"); fi
  POLLCAST_API_KEY=$KEY "${timed[@]}" \
    bin/pollcast bench "$scenario" --url "$url" --duration "$DURATION" --json "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.log" || rc=$?
  settle "$SERVER_PID"
  SERVER_TICKS=$(($(cpu_ticks "$SERVER_PID") - before))
  GEN_SECONDS=$(awk '{ print $1 + $2 }' "$OUT/$name.time" 2>/dev/null || echo 0)
  record "$name" "$rc"
}

# record NAME RC: adds the table row of $OUT/NAME.json.
record() {
  local name=$1 rc=$2 f=$OUT/$1.json verdict=ok
  if [ "$rc" != 0 ]; then
    verdict="FAILED (exit $rc)"
    FAILED+=("$name")
  fi
  if [ ! -s "$f" ]; then
    tail -n 5 "$OUT/$name.log" >&2 || true
    ROWS+=("$(printf '%-18s %s' "$name" "$verdict")")
    return
  fi
  local accepted cpu=-
  accepted=$(jget "$f" accepted)
  [ -n "${SERVER_TICKS:-}" ] && cpu=$(awk -v t="${SERVER_TICKS:-0}" -v g="${GEN_SECONDS:-0}" -v n="$accepted" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (n > 0) printf "%.1f / %.1f", t / hz * 1e6 / n, g * 1e6 / n; else printf "-" }')
  ROWS+=("$(printf '%-18s %12.0f %9.2f %9.2f %9.2f %8s %10s %10s %14s  %s' "$name" \
    "$(jget "$f" throughput)" "$(jget "$f" p50_ms)" "$(jget "$f" p99_ms)" "$(jget "$f" max_ms)" \
    "$(jget "$f" errors)" "$accepted" "$(jget "$f" counted)" "$cpu" "$verdict")")
}

# wrk_bench NAME URL POLL: wrk -t1 -c64 for DURATION POSTing single votes
# to POLL on URL (scripts/wrk-vote.lua, only 202 answers counted as done),
# its summary written to $OUT/NAME.json in pollcast bench's shape, and a
# row added to the table. Counted is what the poll's total grew by once
# the server settled: at least the 202s, and at most as many more as the
# requests wrk left unanswered when it stopped.
wrk_bench() {
  local name=$1 url=$2 poll=$3 rc=0 before timed=() line counted="" total0
  log "$name: wrk -t1 -c64 -d $DURATION -s scripts/wrk-vote.lua"
  total0=$(poll_total "$url" "$poll")
  before=$(cpu_ticks "$SERVER_PID")
  if [ -x /usr/bin/time ]; then timed=(/usr/bin/time -f '%U %S' -o "$OUT/$name.time"); fi
  "${timed[@]}" wrk -t1 -c64 -d "$DURATION" -s scripts/wrk-vote.lua "$url/v1/polls/$poll/votes" \
    >"$OUT/$name.log" 2>&1 || rc=$?
  settle "$SERVER_PID"
  SERVER_TICKS=$(($(cpu_ticks "$SERVER_PID") - before))
  GEN_SECONDS=$(awk '{ print $1 + $2 }' "$OUT/$name.time" 2>/dev/null || echo 0)
  line=$(grep -m1 '^wrk-votes:' "$OUT/$name.log" || true)
  if [ -z "$line" ]; then
    : >"$OUT/$name.json"
    [ "$rc" = 0 ] && rc=1
    record "$name" "$rc"
    return
  fi
  local accepted other errors
  accepted=$(kv "$line" accepted)
  other=$(kv "$line" other)
  errors=$(($(kv "$line" errors) + other))
  for _ in $(seq 30); do
    counted=$(poll_total "$url" "$poll")
    [ -n "$counted" ] && counted=$((counted - ${total0:-0})) && [ "$counted" -ge "$accepted" ] && break
    sleep 1
  done
  if [ -z "$counted" ] || [ "$counted" -lt "$accepted" ] || [ "$counted" -gt $((accepted + errors + 64)) ]; then
    log "$name: $accepted votes answered 202, $counted counted"
    [ "$rc" = 0 ] && rc=3
  fi
  printf '{\n  "throughput": %s,\n  "p50_ms": %s,\n  "p99_ms": %s,\n  "max_ms": %s,\n  "errors": %s,\n  "accepted": %s,\n  "counted": %s\n}\n' \
    "$(kv "$line" ok_rps)" "$(kv "$line" p50_ms)" "$(kv "$line" p99_ms)" "$(kv "$line" max_ms)" "$errors" "$accepted" "${counted:-0}" >"$OUT/$name.json"
  record "$name" "$rc"
}

# poll_total URL POLL: the poll's total in its results (benchbase: every
# vote it answered).
poll_total() {
  curl -fsS "$1/v1/polls/$2/results" | grep -o '"total": *[0-9]*' | head -1 | grep -o '[0-9]*$' || true
}

# kv LINE KEY: the value of KEY=value in LINE.
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# create_poll URL: creates a poll counting every vote (as pollcast bench
# does) and prints its id.
create_poll() {
  curl -fsS -X POST "$1/v1/polls" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"question":"wrk","options":[{"label":"A"},{"label":"B"}],"dedupe":"none"}' |
    sed -n 's/^{"id":"\([^"]*\)".*/\1/p'
}

# start_pollcast NAME FLAGS...: starts bin/pollcast on a free port with a
# fresh data directory; sets PC_PID and PC_URL once it is ready.
start_pollcast() {
  local name=$1
  shift
  POLLCAST_ADMIN_KEY=$KEY bin/pollcast serve --addr 127.0.0.1:0 --data "$TMP/$name-data" --vote-rate 0 "$@" \
    >"$OUT/$name-server.log" 2>&1 &
  PC_PID=$!
  SERVER_PID=$PC_PID
  PIDS+=("$PC_PID")
  wait_for "pollcast ($name) to listen" grep -q 'pollcast is serving' "$OUT/$name-server.log"
  PC_URL=$(grep -m1 -o 'addr=http://[^ ]*' "$OUT/$name-server.log" | cut -d= -f2)
  wait_for "pollcast ($name) to be ready" curl -fsS "$PC_URL/readyz"
  log "$name: pollcast $PC_PID serving on $PC_URL"
}

# raise_fd_limit: as many open files as allowed; fewer viewers if too few.
raise_fd_limit() {
  local hard
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ]; then hard=1048576; fi
  ulimit -n "$hard" 2>/dev/null || ulimit -n "$(ulimit -n)"
  local soft
  soft=$(ulimit -n)
  if [ "$soft" -lt $((VIEWERS + 1000)) ]; then
    log "open file limit $soft (hard $hard) is too low for $VIEWERS viewers: measuring $((soft - 1000))"
    VIEWERS=$((soft - 1000))
  fi
}

# viewers NAME URL: the viewers scenario, with the server's RSS before the
# viewers connect and while they are.
VIEWER_LINE=""
viewers() {
  local name=$1 url=$2 before during rc=0
  before=$(rss_kib "$PC_PID")
  log "$name: pollcast bench viewers --viewers $VIEWERS --rate $VIEWER_RATE"
  POLLCAST_API_KEY=$KEY bin/pollcast bench viewers --url "$url" --duration "$DURATION" --json \
    --viewers "$VIEWERS" --rate "$VIEWER_RATE" --concurrency "$VIEWER_CONCURRENCY" --sources 8 \
    >"$OUT/$name.json" 2>"$OUT/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  if wait_for "the viewers to connect" grep -q 'viewers connected' "$OUT/$name.log"; then
    during=$(rss_kib "$PC_PID")
    VIEWER_LINE=$(awk -v b="$before" -v d="$during" -v n="$VIEWERS" 'BEGIN {
      printf "pollcast RSS %.1f MiB before the viewers, %.1f MiB with %d connected: %.1f KiB per viewer", b/1024, d/1024, n, (d-b)/n }')
  fi
  wait "$pid" || rc=$?
  SERVER_TICKS="" # the viewers' CPU is not per vote
  record "$name" "$rc"
  if [ -s "$OUT/$name.json" ]; then
    VIEWER_LINE="$VIEWER_LINE; $(jget "$OUT/$name.json" connected) connected, $(jget "$OUT/$name.json" dropped) dropped"
  fi
}

mkdir -p "$OUT" bin
log "building bin/pollcast and bin/benchbase"
CGO_ENABLED=0 go build -trimpath -o bin/pollcast ./cmd/pollcast
CGO_ENABLED=0 go build -trimpath -o bin/benchbase ./cmd/benchbase
raise_fd_limit
if want wrk && ! command -v wrk >/dev/null 2>&1; then
  log "wrk is not installed: skipping the wrk runs (apt-get install wrk)"
  RUNS=${RUNS// wrk / }
fi

# 1. The baseline.
if want baseline || want wrk; then
  bin/benchbase --addr 127.0.0.1:0 >"$OUT/baseline-server.log" 2>&1 &
  BASE_PID=$!
  SERVER_PID=$BASE_PID
  PIDS+=("$BASE_PID")
  wait_for "benchbase to listen" grep -q 'serving on' "$OUT/baseline-server.log"
  BASE_URL=$(grep -m1 -o 'http://[^ ]*' "$OUT/baseline-server.log")
  if want baseline; then bench baseline-http "$BASE_URL" http --poll baseline --concurrency 64; fi
  if want wrk; then wrk_bench wrk-baseline "$BASE_URL" baseline; fi
  stop "$BASE_PID"
fi

# 2. pollcast, every role in one process, for each --fsync mode: "always"
# keeps the runs' plain names, another mode suffixes them (http-fsync2m).
SUFFIXES=()
if want http || want ws || want batch || want wrk; then
  for mode in $FSYNC_MODES; do
    sfx=""
    [ "$mode" = always ] || sfx=-fsync$mode
    SUFFIXES+=("$sfx")
    start_pollcast "memory$sfx" --fsync "$mode"
    if want http; then bench "http$sfx" "$PC_URL" http --concurrency 64; fi
    if want ws; then bench "ws$sfx" "$PC_URL" ws --concurrency 64; fi
    if want batch; then bench "batch$sfx" "$PC_URL" batch --concurrency 8; fi
    if want wrk; then wrk_bench "wrk-http$sfx" "$PC_URL" "$(create_poll "$PC_URL")"; fi
    stop "$PC_PID"
  done
fi
# A fresh process for the viewers, so that its RSS growth is theirs and
# not heap the runs above left free.
if want viewers; then
  start_pollcast viewers
  viewers viewers "$PC_URL"
  stop "$PC_PID"
fi

# 3. The Redis tally store.
if ! want redis; then
  :
elif command -v redis-server >/dev/null 2>&1; then
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" \
    >"$OUT/redis-server.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_for "redis-server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$REDIS_PORT"
  start_pollcast redis --redis "redis://127.0.0.1:$REDIS_PORT/0"
  bench redis-http "$PC_URL" http --concurrency 64
  bench redis-batch "$PC_URL" batch --concurrency 8
  stop "$PC_PID"
  stop "$REDIS_PID"
else
  log "redis-server is not installed: skipping the Redis runs"
fi

echo
echo "pollcast bench, $DURATION a run, $(nproc) CPUs, $(go env GOOS)/$(go env GOARCH); JSON in $OUT/"
printf '%-18s %12s %9s %9s %9s %8s %10s %10s %14s  %s\n' run "ok votes/s" "p50 ms" "p99 ms" "max ms" errors accepted counted "cpu us srv/gen" exactness
for row in "${ROWS[@]}"; do echo "$row"; done
base=$(jget "$OUT/baseline-http.json" throughput 2>/dev/null || true)
http=$(jget "$OUT/http.json" throughput 2>/dev/null || true)
if [ -n "$base" ] && [ -n "$http" ]; then
  awk -v h="$http" -v b="$base" 'BEGIN { printf "ratio http/baseline: %.2f\n", h/b }'
fi
for sfx in "${SUFFIXES[@]}"; do
  [ -n "$sfx" ] || continue
  h=$(jget "$OUT/http$sfx.json" throughput 2>/dev/null || true)
  if [ -n "$base" ] && [ -n "$h" ]; then
    awk -v h="$h" -v b="$base" -v n="http$sfx" 'BEGIN { printf "ratio %s/baseline: %.2f\n", n, h/b }'
  fi
done
wbase=$(jget "$OUT/wrk-baseline.json" throughput 2>/dev/null || true)
for sfx in "${SUFFIXES[@]}"; do
  w=$(jget "$OUT/wrk-http$sfx.json" throughput 2>/dev/null || true)
  if [ -n "$wbase" ] && [ -n "$w" ]; then
    awk -v w="$w" -v b="$wbase" -v n="wrk-http$sfx" -v p99="$(jget "$OUT/wrk-http$sfx.json" p99_ms)" \
      'BEGIN { printf "ratio %s/wrk-baseline (202s/s under wrk -t1 -c64): %.2f, p99 %s ms\n", n, w/b, p99 }'
  fi
done
if [ -f "$OUT/redis-http.json" ] && [ -n "$base" ]; then
  awk -v h="$(jget "$OUT/redis-http.json" throughput)" -v b="$base" 'BEGIN { printf "ratio redis-http/baseline: %.2f\n", h/b }'
fi
compgen -G "$OUT/wrk-*.json" >/dev/null && echo "wrk rows: wrk -t1 -c64 with scripts/wrk-vote.lua; votes/s counts only 202 answers, errors are the other answers and failed requests"
echo "viewers latency is from a vote's 202 to a viewer seeing it counted; the others are request latencies"
echo "cpu us srv/gen: CPU time, in microseconds, of the server (until it settles, analytics catching up included) and of the load generator per accepted vote"
[ -n "$VIEWER_LINE" ] && echo "$VIEWER_LINE"

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "FAILED: ${FAILED[*]}" >&2
  exit 1
fi
