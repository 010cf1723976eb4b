#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) for tests and benchmarks.
#
# Needs: java 17+, mvn (Maven Central reachable the first time; jars are then cached
# in ~/.m2), deno (free ports, warm-up), bash, coreutils, util-linux (setsid, flock).
#
# Usage: scripts/kafka/kafka.sh COMMAND [--dir DIR] [options]
#
#   up        [--dir DIR]   Start the broker (formatting DIR first if needed) and print
#                           its bootstrap address (127.0.0.1:PORT) on stdout; also
#                           written to DIR/bootstrap. A DIR that is already formatted is
#                           reused with its ports and data. A no-op if already running.
#   start     [--dir DIR]   Like up, but DIR must already be formatted (restart after
#                           down/kill with data intact).
#   prepare   [--dir DIR]   Format DIR and pick its ports without starting the broker;
#                           print the bootstrap address it will have (for a test that
#                           starts a client first and the broker later with 'start').
#   down      [--dir DIR] [--clean]
#                           SIGTERM the broker, SIGKILL after KAFKA_STOP_TIMEOUT (30s).
#                           --clean then deletes DIR.
#   kill      [--dir DIR]   SIGKILL the broker (fault injection); data is kept.
#   status    [--dir DIR]   Print "running PID BOOTSTRAP" (exit 0) or "stopped" (exit 3).
#   classpath [--dir DIR]   Print the resolved Kafka classpath.
#   run       [--dir DIR] [--] MAIN_CLASS [ARGS...]
#                           Run a Java main class on that classpath, e.g.
#                           org.apache.kafka.tools.ConsumerPerformance --bootstrap-server ...
#   logs      [--dir DIR]   Print the path of the broker log file.
#
# DIR: --dir is taken relative to the current directory; otherwise $KAFKA_DIR (relative
# paths are taken relative to the repo root), default <repo>/.kafka.
#
# Environment: KAFKA_DIR, KAFKA_HEAP_OPTS (default "-Xmx512m -Xms256m"), KAFKA_JVM_OPTS,
# KAFKA_READY_TIMEOUT (seconds, default 90), KAFKA_STOP_TIMEOUT (seconds, default 30),
# KAFKA_WARMUP=0 to skip pre-creating __consumer_offsets/__transaction_state on up.
#
# Layout of DIR: server.properties, broker.pid, bootstrap, classpath.txt (+ .key),
# data/ (log.dirs, KRaft metadata), logs/server.log (broker log), logs/stdout.log.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)
POM=$SCRIPT_DIR/pom.xml
LOG4J_CONFIG=$SCRIPT_DIR/log4j2.properties
READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-90}
STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
MARKER=.kafka-sh-dir

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# ---------------------------------------------------------------- argument parsing
CMD=${1:-}
[[ -n $CMD ]] || {
  usage
  exit 2
}
shift
DIR=""
CLEAN=0
RUN_ARGS=()
while (($#)); do
  case $1 in
    --dir)
      (($# >= 2)) || die "--dir needs a value"
      DIR=$2
      shift 2
      ;;
    --dir=*)
      DIR=${1#--dir=}
      shift
      ;;
    --clean)
      CLEAN=1
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    --)
      shift
      RUN_ARGS+=("$@")
      break
      ;;
    *)
      if [[ $CMD == run ]]; then
        RUN_ARGS+=("$@")
        break
      fi
      die "unknown argument: $1 (try --help)"
      ;;
  esac
done

if [[ -n $DIR ]]; then
  [[ $DIR == /* ]] || DIR=$PWD/$DIR
else
  DIR=${KAFKA_DIR:-.kafka}
  [[ $DIR == /* ]] || DIR=$REPO_ROOT/$DIR
fi
# Canonical absolute path: the broker is recognised by the server.properties path on
# its command line, so every spelling of DIR must map to the same string.
DIR=$(realpath -m -- "$DIR")
[[ $DIR != / ]] || die "refusing to use / as the Kafka dir"

PROPS=$DIR/server.properties
PID_FILE=$DIR/broker.pid
BOOTSTRAP_FILE=$DIR/bootstrap
CP_FILE=$DIR/classpath.txt
CP_KEY_FILE=$DIR/classpath.key
DATA_DIR=$DIR/data
LOG_DIR=$DIR/logs
SERVER_LOG=$LOG_DIR/server.log
STDOUT_LOG=$LOG_DIR/stdout.log

# ---------------------------------------------------------------- helpers
# kafka.sh writes only into, and --clean only deletes, a DIR carrying the marker file.
# The marker is created only when DIR is new or empty.
owned_dir() { [[ -d $DIR && -f $DIR/$MARKER ]]; }

claim_dir() {
  if ! owned_dir; then
    if [[ -e $DIR && ! -d $DIR ]] || [[ -d $DIR && -n $(ls -A -- "$DIR") ]]; then
      die "$DIR exists and was not created by kafka.sh; use an empty or new --dir"
    fi
    mkdir -p -- "$DIR"
    : >"$DIR/$MARKER"
  fi
  mkdir -p -- "$LOG_DIR"
}

# Serialise commands that change the state of the same DIR (which must be owned).
lock_dir() {
  exec 9>"$DIR/.lock"
  flock -w 180 9 || die "could not lock $DIR/.lock"
}

# For down/kill: false (with a message) when there is nothing of ours at DIR.
existing_owned_dir() {
  if owned_dir; then
    return 0
  elif [[ -e $DIR ]]; then
    die "$DIR was not created by kafka.sh; leaving it alone"
  fi
  log "$DIR does not exist; nothing to do"
  return 1
}

prop() { # prop KEY -> value from server.properties
  sed -n "s/^$1=//p" "$PROPS" | tail -n 1
}

bootstrap_addr() {
  local listeners
  listeners=$(prop listeners)
  [[ $listeners =~ PLAINTEXT://([^,]+) ]] || die "no PLAINTEXT listener in $PROPS"
  printf '%s\n' "${BASH_REMATCH[1]}"
}

port_open() { # port_open HOST PORT
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# True if PID is a live process. A SIGKILLed JVM's main thread can be a zombie while
# its other threads (which still hold the sockets) are exiting, so check every thread.
alive() {
  local f stat
  [[ -d /proc/$1 ]] || return 1
  for f in /proc/"$1"/task/*/stat; do
    # A thread may exit between the glob and the read: `$(<file)` on a vanished file ends the whole
    # script under `set -e` whatever follows it (a test's `kafka.sh kill` failed so), `cat` does not.
    stat=$(cat -- "$f" 2>/dev/null) || continue
    stat=${stat##*) }
    [[ ${stat:0:1} == [ZX] ]] || return 0
  done
  return 1
}

# PID of our broker for DIR if it is running, else fails.
broker_pid() {
  local pid cmdline
  [[ -s $PID_FILE ]] || return 1
  pid=$(<"$PID_FILE")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *kafka.Kafka*"$PROPS"* ]] || return 1
  printf '%s\n' "$pid"
}

formatted() { [[ -f $DATA_DIR/meta.properties ]]; }

free_ports() { # free_ports N -> N distinct free TCP ports on 127.0.0.1, space separated
  # Below the kernel's ephemeral range (32768 and up; it picks port 0 there): a broker that is
  # stopped and started again binds its port again, and meanwhile a test's server on port 0 (the
  # tests of `deno task test` run in two lanes at once) could have taken it. All N are held open
  # together, so they differ.
  deno eval --no-config '
    const ls = [];
    for (let tries = 0; ls.length < Number(Deno.args[0]) && tries < 1000; tries++) {
      try {
        ls.push(Deno.listen({ hostname: "127.0.0.1", port: 20000 + Math.floor(Math.random() * 12768) }));
      } catch (err) {
        if (!(err instanceof Deno.errors.AddrInUse)) throw err;
      }
    }
    console.log(ls.map((l) => l.addr.port).join(" "));
    for (const l of ls) l.close();' "$1"
}

# Random Kafka Uuid (16 bytes, base64url without padding). Like Kafka's Uuid.randomUuid,
# never starting with "-" (the CLI would take it for an option).
cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* ]] || break
  done
  printf '%s\n' "$id"
}

# classpath_ok FILE KEYFILE: FILE lists existing jars and was resolved from this pom.
classpath_ok() {
  local file=$1 keyfile=$2 jar
  local -a jars
  [[ -s $file && -f $keyfile ]] || return 1
  [[ $(<"$keyfile") == "$(pom_key)" ]] || return 1
  IFS=: read -r -a jars <"$file"
  ((${#jars[@]} > 0)) || return 1
  for jar in "${jars[@]}"; do
    [[ -f $jar ]] || return 1
  done
}

pom_key() { sha256sum "$POM" | cut -d' ' -f1; }

# Resolves the classpath into DIR/classpath.txt. A copy is shared between dirs in
# ${XDG_CACHE_HOME:-~/.cache}/kafka-local-sh/ so a fresh DIR does not rerun Maven.
resolve_classpath() {
  local key shared_dir shared tmp
  claim_dir
  classpath_ok "$CP_FILE" "$CP_KEY_FILE" && return 0
  key=$(pom_key)
  shared_dir=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/kafka-local-sh
  shared=$shared_dir/classpath-$key.txt
  if classpath_ok "$shared" "$shared.key"; then
    cp -f -- "$shared" "$CP_FILE"
    printf '%s\n' "$key" >"$CP_KEY_FILE"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed to resolve Kafka jars)"
  log "resolving Kafka classpath with Maven (first run downloads to ~/.m2)..."
  tmp=$CP_FILE.tmp.$$
  local out
  if ! out=$(mvn -q -B -f "$POM" dependency:build-classpath -Dmdep.outputFile="$tmp" </dev/null 2>&1); then
    printf '%s\n' "$out" >&2
    die "maven could not resolve the classpath (see output above)"
  fi
  [[ -s $tmp ]] || die "maven produced an empty classpath"
  mv -f -- "$tmp" "$CP_FILE"
  printf '%s\n' "$key" >"$CP_KEY_FILE"
  # Best effort; the key file's name already carries the key, so order is unimportant.
  if mkdir -p -- "$shared_dir" 2>/dev/null && cp -f -- "$CP_FILE" "$shared.$$" 2>/dev/null; then
    mv -f -- "$shared.$$" "$shared"
    printf '%s\n' "$key" >"$shared.key"
  fi
}

write_config() {
  local ports port cport
  ports=$(free_ports 2)
  read -r port cport <<<"$ports"
  [[ -n $port && -n $cport ]] || die "could not pick free ports"
  mkdir -p -- "$DATA_DIR"
  cat >"$PROPS" <<EOF
# Generated by scripts/kafka/kafka.sh: single-node KRaft broker+controller for tests.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true

# Internal topics: one replica, few partitions (created fast on first use).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Fast group formation; allow short session timeouts for failover tests.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000

# Faster restart after SIGKILL: the restarted broker cannot register until the old
# incarnation's session expires (default 9s).
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000

num.network.threads=3
num.io.threads=8
num.recovery.threads.per.data.dir=1
EOF
}

format_storage() {
  local cp out
  cp=$(<"$CP_FILE")
  rm -rf -- "$DATA_DIR"
  mkdir -p -- "$DATA_DIR"
  log "formatting storage in $DATA_DIR"
  if ! out=$(java -cp "$cp" -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" \
    kafka.tools.StorageTool format --standalone -t "$(cluster_id)" -c "$PROPS" </dev/null 2>&1); then
    printf '%s\n' "$out" >&2
    die "kafka-storage format failed"
  fi
  log "$out"
}

tail_logs() {
  local f
  for f in "$SERVER_LOG" "$STDOUT_LOG"; do
    if [[ -s $f ]]; then
      printf -- '----- last lines of %s -----\n' "$f" >&2
      tail -n 60 -- "$f" >&2
    fi
  done
}

# stop_broker SIGNAL TIMEOUT: send SIGNAL, wait up to TIMEOUT s, then SIGKILL.
stop_broker() {
  local sig=$1 timeout=$2 pid deadline
  pid=$(broker_pid) || {
    rm -f -- "$PID_FILE"
    return 1
  }
  log "stopping broker pid $pid with SIG$sig"
  kill -s "$sig" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if alive "$pid"; then
    log "broker pid $pid still alive after ${timeout}s, sending SIGKILL"
    kill -s KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    alive "$pid" && die "broker pid $pid did not die"
  fi
  rm -f -- "$PID_FILE"
  log "broker stopped"
}

# The internal topics and the first producer-id block, now (see warm_up.ts); best effort.
warm_up() {
  [[ ${KAFKA_WARMUP:-1} != 0 ]] || return 0
  deno run --quiet --config "$REPO_ROOT/deno.json" --allow-net="$1" \
    --allow-env=KAFKAJS_LOG_LEVEL,KAFKAJS_NO_PARTITIONER_WARNING,KAFKAJS_DEBUG_PROTOCOL_BUFFERS,KAFKAJS_DEBUG_EXTENDED_PROTOCOL_BUFFERS,NODE_ENV \
    "$SCRIPT_DIR/warm_up.ts" "$1" </dev/null >&2 || log "warning: internal topic warm-up failed (ignored)"
}

start_broker() {
  local cp bootstrap host port offset pid deadline size
  local -a heap_opts jvm_opts
  cp=$(<"$CP_FILE")
  bootstrap=$(bootstrap_addr)
  host=${bootstrap%:*}
  port=${bootstrap##*:}
  deadline=$((SECONDS + 10)) # a just-killed broker may still be releasing its sockets
  while port_open "$host" "$port"; do
    ((SECONDS < deadline)) ||
      die "port $port is already in use by another process; free it or use another --dir"
    sleep 0.2
  done
  read -r -a heap_opts <<<"${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
  read -r -a jvm_opts <<<"${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}"
  offset=$(stat -c %s -- "$SERVER_LOG" 2>/dev/null || echo 0)
  rm -f -- "$PID_FILE" "$BOOTSTRAP_FILE"
  printf '\n===== %s kafka.sh start =====\n' "$(date -u +%FT%TZ)" >>"$STDOUT_LOG"
  # setsid: detach from the caller's session/process group so the broker survives it.
  # The inner shell writes its own pid, then execs java (same pid). fd 9 (lock) is closed.
  # shellcheck disable=SC2016 # $$ and $@ are expanded by the inner shell
  setsid bash -c 'echo $$ >"$0" && exec "$@"' "$PID_FILE" \
    java "${heap_opts[@]}" "${jvm_opts[@]}" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" -Dkafka.logs.dir="$LOG_DIR" \
    -cp "$cp" kafka.Kafka "$PROPS" \
    </dev/null >>"$STDOUT_LOG" 2>&1 9>&- &
  deadline=$((SECONDS + 10))
  until [[ -s $PID_FILE ]]; do
    ((SECONDS < deadline)) || die "broker process did not start"
    sleep 0.05
  done
  pid=$(<"$PID_FILE")
  log "broker pid $pid starting on $bootstrap (log: $SERVER_LOG)"

  deadline=$((SECONDS + READY_TIMEOUT))
  while :; do
    if ! alive "$pid"; then
      tail_logs
      rm -f -- "$PID_FILE"
      die "broker exited during startup"
    fi
    size=$(stat -c %s -- "$SERVER_LOG" 2>/dev/null || echo 0)
    ((size >= offset)) || offset=0 # log was rolled
    if tail -c +$((offset + 1)) -- "$SERVER_LOG" 2>/dev/null | grep -q 'Kafka Server started' &&
      port_open "$host" "$port"; then
      break
    fi
    if ((SECONDS >= deadline)); then
      tail_logs
      log "broker not ready after ${READY_TIMEOUT}s; stopping it"
      stop_broker TERM 10 || true
      die "broker did not become ready"
    fi
    sleep 0.2
  done
  warm_up "$bootstrap"
  printf '%s\n' "$bootstrap" >"$BOOTSTRAP_FILE"
  log "broker ready on $bootstrap"
  printf '%s\n' "$bootstrap"
}

# ---------------------------------------------------------------- commands
cmd_up() { # cmd_up REQUIRE_FORMATTED
  local require_formatted=$1 pid bootstrap
  if ((require_formatted)) && ! formatted; then
    die "$DIR is not formatted; use 'up' first"
  fi
  claim_dir
  lock_dir
  if pid=$(broker_pid); then
    bootstrap=$(bootstrap_addr)
    if port_open "${bootstrap%:*}" "${bootstrap##*:}"; then
      log "broker already running (pid $pid)"
      printf '%s\n' "$bootstrap" >"$BOOTSTRAP_FILE"
      printf '%s\n' "$bootstrap"
      return 0
    fi
    die "broker pid $pid is running but $bootstrap does not accept connections"
  fi
  command -v java >/dev/null 2>&1 || die "java not found"
  resolve_classpath
  if formatted && [[ -f $PROPS ]]; then
    log "reusing formatted dir $DIR"
  else
    ((require_formatted == 0)) || die "$DIR is not formatted; use 'up' first"
    write_config
    format_storage
  fi
  start_broker
}

cmd_prepare() {
  claim_dir
  lock_dir
  if formatted && [[ -f $PROPS ]]; then
    log "reusing formatted dir $DIR"
  else
    command -v java >/dev/null 2>&1 || die "java not found"
    resolve_classpath
    write_config
    format_storage
  fi
  bootstrap_addr
}

cmd_down() {
  local real
  existing_owned_dir || return 0
  lock_dir
  stop_broker TERM "$STOP_TIMEOUT" || log "broker not running"
  rm -f -- "$BOOTSTRAP_FILE"
  if ((CLEAN)); then
    real=$(cd -- "$DIR" && pwd -P)
    case $real in
      / | "$HOME" | /tmp | /var/tmp)
        die "refusing to delete $real"
        ;;
    esac
    [[ $REPO_ROOT/ != "$real"/* ]] || die "refusing to delete $real (is or contains the repo)"
    exec 9>&-
    rm -rf -- "$DIR"
    log "deleted $DIR"
  fi
}

cmd_kill() {
  existing_owned_dir || return 0
  lock_dir
  stop_broker KILL 10 || log "broker not running"
  rm -f -- "$BOOTSTRAP_FILE"
}

cmd_status() {
  local pid
  if [[ -f $PROPS ]] && pid=$(broker_pid); then
    echo "running $pid $(bootstrap_addr)"
  else
    echo "stopped"
    return 3
  fi
}

case $CMD in
  up) cmd_up 0 ;;
  start) cmd_up 1 ;;
  prepare) cmd_prepare ;;
  down | stop) cmd_down ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  classpath)
    resolve_classpath
    printf '%s\n' "$(<"$CP_FILE")"
    ;;
  run)
    ((${#RUN_ARGS[@]} > 0)) || die "run needs a main class"
    resolve_classpath
    exec java -cp "$(<"$CP_FILE")" "${RUN_ARGS[@]}"
    ;;
  logs) printf '%s\n' "$SERVER_LOG" ;;
  help | -h | --help) usage ;;
  *)
    usage
    die "unknown command: $CMD"
    ;;
esac
