#!/usr/bin/env bash
# `deno task test`: every test, unit and integration. Without KAFKA_BROKERS it starts a throwaway
# single-node broker (scripts/kafka/kafka.sh) and stops it afterwards, also when tests fail.
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

status=0
deno test --allow-read --allow-write --allow-net --allow-env --allow-run --allow-sys "$@" || status=$?
if [[ $status -ne 0 && -n $broker_dir ]]; then
  echo "--- tail of the broker log ($broker_dir/logs/server.log) ---" >&2
  tail -n 40 "$broker_dir/logs/server.log" >&2 || true
fi
exit $status
