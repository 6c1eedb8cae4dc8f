# What the walk-through scripts share, and what is not part of a walk-through itself: a fresh
# working directory, a time limit, and stopping every process a script started. Sourced by
# embedded.sh, provenance.sh, consortium.sh and distributed.sh; `veritrace` must be on the PATH.
set -euo pipefail

WORK=$(mktemp -d)
cd "$WORK"
echo "working in $WORK"

PIDS=()
# started PID: a background process to stop when the walk-through ends.
started() { PIDS+=("$1"); }

finish() {
  local status=$?
  kill "$WATCHDOG" 2>/dev/null || true
  if [ ${#PIDS[@]} -gt 0 ]; then
    kill "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
  fi
  if [ "$status" -eq 0 ]; then
    rm -rf "$WORK"
    echo "walk-through passed"
  else
    for log in ./*.out; do
      [ -e "$log" ] && { echo "--- $log"; tail -n 20 "$log"; }
    done >&2
    echo "walk-through FAILED (status $status); its files are in $WORK" >&2
  fi
}
trap finish EXIT
trap 'echo "walk-through timed out after ${WALKTHROUGH_TIMEOUT:-180} s" >&2; exit 124' TERM

# The whole walk-through gets WALKTHROUGH_TIMEOUT seconds: a step whose condition never comes
# true ends it instead of waiting for ever.
( sleep "${WALKTHROUGH_TIMEOUT:-180}"; kill -TERM $$ ) > /dev/null 2>&1 &
WATCHDOG=$!

# expect STATUS PATTERN COMMAND...: COMMAND must exit with STATUS and say PATTERN.
expect() {
  local want=$1 pattern=$2 status=0
  shift 2
  "$@" > expect.out 2>&1 || status=$?
  cat expect.out
  if [ "$status" -ne "$want" ] || ! grep -q "$pattern" expect.out; then
    echo "expected exit status $want and '$pattern' from: $*" >&2
    exit 1
  fi
}
