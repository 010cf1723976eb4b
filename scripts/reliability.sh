#!/usr/bin/env bash
# `deno task test:reliability`: the fault and bad-input suite at full size (CI runs it small), with
# a line of counts per scenario: produced, processed, dead-lettered, lost, duplicate alerts; the hostile
# scenarios also stalled partitions and crashes.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
export RELIABILITY_EVENTS=${RELIABILITY_EVENTS:-100000}
export RELIABILITY_RATE=${RELIABILITY_RATE:-5000}
# The broker outage scenarios keep the broker down this long (CI: 20 s).
export RELIABILITY_OUTAGE_SECONDS=${RELIABILITY_OUTAGE_SECONDS:-180}
# The frozen broker scenario keeps it frozen (SIGSTOP) this long (CI: 40 s).
export RELIABILITY_FREEZE_SECONDS=${RELIABILITY_FREEZE_SECONDS:-90}
log=$(mktemp)
status=0
bash scripts/test.sh tests/reliability/ tests/integration/reliability/ "$@" 2>&1 | tee "$log" || status=$?
echo
echo "Summary (RELIABILITY_EVENTS=$RELIABILITY_EVENTS, RELIABILITY_RATE=$RELIABILITY_RATE, RELIABILITY_OUTAGE_SECONDS=$RELIABILITY_OUTAGE_SECONDS, RELIABILITY_FREEZE_SECONDS=$RELIABILITY_FREEZE_SECONDS):"
grep '^reliability:' "$log" || echo "no scenario finished"
rm -f "$log"
exit "$status"
