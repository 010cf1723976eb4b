#!/usr/bin/env bash
# `deno task test`: every test, unit and integration. Without KAFKA_BROKERS it starts a throwaway
# single-node broker (scripts/kafka/kafka.sh) and stops it afterwards, also when tests fail. It finds
# Chromium for the browser test, or installs Debian's.
# Extra arguments go to `deno test` (e.g. a path or --filter).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

broker_dir=""
cleanup() {
  if [[ -n $broker_dir ]]; then
    scripts/kafka/kafka.sh down --dir "$broker_dir" --clean >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if [[ -z ${KAFKA_BROKERS:-} ]]; then
  broker_dir=$(mktemp -d "${TMPDIR:-/tmp}/sensor-rules-kafka.XXXXXX")
  echo "Starting a throwaway Kafka broker in $broker_dir" >&2
  KAFKA_BROKERS=$(scripts/kafka/kafka.sh up --dir "$broker_dir")
  export KAFKA_BROKERS KAFKA_TEST_DIR=$broker_dir
  echo "Kafka broker at $KAFKA_BROKERS" >&2
fi

# The dashboard's browser test drives a real Chromium (playwright-core never downloads one): use
# CHROMIUM_PATH, or the system's, or install Debian's, as `.ci/run` does on a fresh machine.
find_chromium() {
  local c
  for c in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/bin/chromium-browser "$(command -v chromium || true)"; do
    if [[ -n $c && -x $c ]]; then
      echo "$c"
      return 0
    fi
  done
  return 1
}
if ! CHROMIUM_PATH=$(find_chromium); then
  sudo=""
  if [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null 2>&1; then sudo=sudo; fi
  echo "Chromium not found: installing Debian's chromium package (needed by the dashboard browser test)" >&2
  if ! { $sudo apt-get update -q >&2 &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >&2; }; then
    echo "error: Chromium is needed by tests/http/dashboard_browser_test.ts; install the chromium package or set CHROMIUM_PATH" >&2
    exit 1
  fi
  CHROMIUM_PATH=$(find_chromium)
fi
export CHROMIUM_PATH

# Tests that run a broker of their own (`*_outage_test.ts`: they stop, kill or freeze it) spend most
# of their time waiting for an outage to pass (265 s of the suite's 1,404 s in one CI run). Without
# arguments they run beside the others, in a second `deno test` started first; their report is
# printed after the others'. With arguments (a path, a --filter) one `deno test` runs what they say.
OUTAGE='tests/**/*_outage_test.ts'
PERMISSIONS=(--allow-read --allow-write --allow-net --allow-env --allow-run --allow-sys)
outage_pid=""
# The reports are kept so that a failure ends with the failing tests' names: a CI page shows only the
# last lines, and the broker log's tail printed after deno's summary hid which test had failed.
report=$(mktemp "${TMPDIR:-/tmp}/sensor-rules-test.XXXXXX")
outage_report=$(mktemp "${TMPDIR:-/tmp}/sensor-rules-test-outage.XXXXXX")
trap 'if [[ -n $outage_pid ]]; then kill "$outage_pid" 2>/dev/null || true; fi; cleanup; rm -f "$report" "$outage_report"' EXIT

# From deno's closing summary in a report (colours stripped): each failure's error with the first
# lines of its diff (an assertion's first line alone does not say which one failed: CI keeps only the
# tail of the log), then the failed tests after the last FAILURES heading and the count line.
summarize() {
  local plain
  plain=$(sed 's/\x1b\[[0-9;]*m//g' "$1")
  awk '/^ *ERRORS *$/ { on = 1; next } /^ *FAILURES *$/ { on = 0 }
    on && /^error: / { left = 16 }
    on && left > 0 && !/^ +at / && NF > 0 { print substr($0, 1, 240); left-- }' \
    <<<"$plain" | head -n 60 >&2 || true
  awk '/^ *FAILURES *$/ { n = NR } { line[NR] = $0 } END { if (n) for (i = n; i <= NR; i++) print line[i] }' \
    <<<"$plain" | grep -E '=>|\| [0-9]+ passed' | head -n 20 >&2 || true
}

status=0
outage_status=0
if [[ $# -eq 0 ]]; then
  deno test "${PERMISSIONS[@]}" "$OUTAGE" >"$outage_report" 2>&1 &
  outage_pid=$!
  deno test "${PERMISSIONS[@]}" --ignore="$OUTAGE" 2>&1 | tee "$report" || status=${PIPESTATUS[0]}
  wait "$outage_pid" || outage_status=$?
  outage_pid=""
  echo "--- the tests with a broker of their own ($OUTAGE), run beside the others ---"
  cat "$outage_report"
else
  deno test "${PERMISSIONS[@]}" "$@" 2>&1 | tee "$report" || status=${PIPESTATUS[0]}
fi
if [[ $status -ne 0 || $outage_status -ne 0 ]]; then
  if [[ -n $broker_dir ]]; then
    echo "--- tail of the broker log ($broker_dir/logs/server.log) ---" >&2
    tail -n 40 "$broker_dir/logs/server.log" >&2 || true
  fi
  echo "--- what failed (repeated from the reports above) ---" >&2
  if [[ $status -ne 0 ]]; then summarize "$report"; fi
  if [[ $outage_status -ne 0 ]]; then summarize "$outage_report"; fi
fi
if [[ $status -eq 0 ]]; then status=$outage_status; fi
exit $status
