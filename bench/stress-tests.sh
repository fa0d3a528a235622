#!/usr/bin/env bash
# bench/stress-tests.sh: run the fault, retry, timeout and concurrency tests many times under the
# race detector while a second process keeps every core busy, and report how many runs passed.
# A test that passes only when the machine is idle fails CI at random; this is where it shows.
#
#   bench/stress-tests.sh                   # 50 runs of each package's tests
#   COUNT=5 bench/stress-tests.sh           # a quicker pass
#   PACKAGES="hub modelverify" bench/stress-tests.sh
#
# Each package's test binary is built once (-race) and run COUNT times, each run a fresh
# process, with the package's -run pattern below. The pattern selects tests by what their names
# say (Fault, Retry, Timeout, Stall, Drop, Resume, Cancel, Concurrent, Lock, Kill, ...), so new
# fault tests named that way go through it without editing this script. Exit status: 0 when
# every run passed, 1 when any failed (its output is kept and its path printed), 2 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-50}
LOAD=${LOAD:-$(nproc)}          # busy processes to run beside the tests
TIMEOUT=${TIMEOUT:-10m}         # per run

# The shared keywords, and what each package adds.
common='Fault|Retr|Timeout|Stall|Drop|Resum|Cancel|Deadline|Concurren|Parallel|Race|Lock|Crash|Kill|Sweep|Leftover|Stale|Interrupt|Hang|Hung'
declare -A RUN=(
  [hub]="$common|Redirect|TokenNeverReaches|Corrupt|TwoProcesses|StagedCheck|StagedSetCheck|Paginat|Offline"
  [hub/hubtest]="$common"
  [modelverify]="$common|ServesOtherBytes|Reuses|Many|Rotat|Export|VerifyDir|Recheck|VerifyOCI"
  [examples/verifier]="$common|Redirect|PullDest|Pull"
  [examples/kserve]="$common|Initializer"
  [examples/service]="$common|Service"
  [registry]="$common|Transient|Persistent|Unreachable|Moves|Credentials|PlainHTTP|WrongBytes|Referrers"
  [registry/registrytest]="$common|Referrers|Basic"
)
PACKAGES=${PACKAGES:-"hub hub/hubtest registry registry/registrytest modelverify examples/verifier examples/kserve examples/service"}

export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=${GOFLAGS:--buildvcs=false}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/modelverify-stress.XXXXXX")
LOAD_PIDS=()
cleanup() {
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "building test binaries (-race) in $WORK..."
for pkg in $PACKAGES; do
  [ -n "${RUN[$pkg]:-}" ] || { echo "stress-tests: no pattern for package $pkg" >&2; exit 2; }
  go test -race -c -o "$WORK/$(echo "$pkg" | tr / _).test" "./$pkg" || exit 2
done

# The load: one busy loop per core, at normal priority, so the tests compete for the CPU.
for _ in $(seq 1 "$LOAD"); do
  ( while :; do :; done ) &
  LOAD_PIDS+=($!)
done
echo "load: $LOAD busy processes (${LOAD_PIDS[*]}); $COUNT runs per package"

failed=0
summary=()
for pkg in $PACKAGES; do
  bin="$WORK/$(echo "$pkg" | tr / _).test"
  pattern="${RUN[$pkg]}"
  tests=$(cd "$pkg" && "$bin" -test.list "$pattern" | grep -c '^Test' || true)
  pass=0
  start=$(date +%s)
  for i in $(seq 1 "$COUNT"); do
    log="$WORK/$(echo "$pkg" | tr / _).run$i.log"
    if (cd "$pkg" && "$bin" -test.run "$pattern" -test.count 1 -test.timeout "$TIMEOUT" >"$log" 2>&1); then
      pass=$((pass + 1))
      rm -f "$log"
    else
      failed=1
      echo "FAIL $pkg run $i: $(grep -m3 -E -e '--- FAIL|panic:|DATA RACE' "$log" | tr '\n' ' ') (log: $log)"
    fi
  done
  line=$(printf '%-20s %3d tests  %3d/%d runs passed  (%ds)' "$pkg" "$tests" "$pass" "$COUNT" $(( $(date +%s) - start )))
  echo "$line"
  summary+=("$line")
done

echo
echo "stress-tests: $COUNT runs per package under -race with $LOAD busy processes"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "stress-tests: FAILED; logs of the failed runs are kept in $WORK" >&2
  exit 1
fi
rm -rf "$WORK"
