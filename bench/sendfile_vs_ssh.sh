#!/usr/bin/env bash
# sendfile_vs_ssh.sh -- bulk throughput: one random file through `ovtp sendfile`,
# through an ssh pipe and through scp, measured alternately in the same run on
# loopback, plus the peak memory of both ovtp processes.
#
# A private sshd is started as ../../shared/bench/20_ssh.sh does (own host key
# and config in a temp dir, key-only login, SetEnv SHLVL=1), and a private
# `ovtp listen --inbox` (temporary OVTP homes, never ~/.ovtp). Files live on
# tmpfs (/dev/shm) when it has room, so no disk is measured. Each repetition
# sends the BIG_BYTES file once per variant, in an order that rotates:
#   ovtp      deno run main.ts sendfile --json 127.0.0.1:PORT FILE  (wall time of
#             the process: start-up, handshake, transfer, the server's SHA-256
#             check and fsync; the received file is deleted after each rep)
#   ssh_pipe  cat FILE | ssh -c $SSH_CIPHER host 'cat > /dev/null'
#   ssh_file  cat FILE | ssh -c $SSH_CIPHER host 'cat > TMPFS_FILE'   (deleted after)
#   scp       scp FILE host:TMPFS_FILE   (SFTP, default cipher; deleted after)
#   store     cat FILE > TMPFS_FILE       (no network, no crypto; deleted after)
# ovtp stores what it receives (and fsyncs it); the ssh pipe to /dev/null, the
# reference the issues name, does not. ssh_file is the same pipe storing the
# file where ovtp's inbox is, the like-for-like transfer; store is the ceiling
# of any variant that stores the file. On the project's 2-core virtual machine
# (2 GiB, same run) storing halved the ssh pipe: 765 MB/s to /dev/null, 363 MB/s
# to tmpfs, with `cat` alone storing at 2,646 MB/s.
# Memory: `ovtp listen` runs under /usr/bin/time -v and is stopped with SIGTERM
# after its transfers, every sendfile runs under /usr/bin/time -v. A first
# listen takes REPS sends of a SMALL_BYTES file, a second one all the big
# sends, so the two peak RSS figures of each side show whether memory grows
# with the file size.
#
# Knobs (environment): REPS (3); BIG_BYTES (2 GiB); SMALL_BYTES (100 MiB; 0 skips
# the small-file phase); SSH_CIPHER (aes128-gcm@openssh.com); VARIANTS ("ovtp
# ssh_pipe ssh_file scp store", any subset: "ovtp" alone is the quick probe used
# while tuning);
# STEP_TIMEOUT (180 s per step); RESULTS_DIR (./results beside this script);
# NO_NETNS=1 stays in the host namespace; OVTP_SHARED_BENCH (shared/bench).
# Output: a Markdown table on stdout (also $RESULTS_DIR/sendfile_vs_ssh.md) and one
# TSV line per transfer in $RESULTS_DIR/sendfile_vs_ssh.tsv.
set -euo pipefail
export LC_ALL=C

SMALL_BYTES="${SMALL_BYTES:-104857600}"
SSH_CIPHER="${SSH_CIPHER:-aes128-gcm@openssh.com}"
read -r -a VARIANTS <<<"${VARIANTS:-ovtp ssh_pipe ssh_file scp store}"
# shellcheck source=bench/_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"
for v in "${VARIANTS[@]}"; do
  [[ $v =~ ^(ovtp|ssh_pipe|ssh_file|scp|store)$ ]] \
    || { echo "$BENCH_NAME: error: Unknown variant \"$v\" (ovtp, ssh_pipe, ssh_file, scp, store)" >&2; exit 2; }
done
((REPS >= 1)) || { echo "$BENCH_NAME: error: REPS must be at least 1, got \"$REPS\"" >&2; exit 2; }

bench_enter "$BENCH_DIR/$BENCH_NAME" "$@"
make_tmp
set_results sendfile_vs_ssh
env_report sh -c 'ssh -V; deno --version'

# --- where the data goes: tmpfs when it has room for the sent and received copies ------------
room() { df -P --block-size=1 "$1" 2>/dev/null | awk 'NR==2{print $4}'; }
RESERVE=$((256 * 1024 * 1024)) # ovtp's inbox keeps 64 MiB free; leave more
if (($(room "$TMP") > 2 * BIG_BYTES + SMALL_BYTES + RESERVE)); then
  DEST="$TMP"
elif (($(room /dev/shm) > BIG_BYTES + RESERVE)); then
  DEST=$(mktemp -d /dev/shm/ovtp_bench.XXXXXX); add_cleanup "rm -rf '$DEST'"
else
  DEST="$TMP"; log "warning: no room on tmpfs; received files go to $(df -P "$TMP" | awk 'NR==2{print $6}')"
fi
INBOX="$DEST/inbox"
SCP_DST="$DEST/scp_dst.bin"
STORED="$DEST/stored.bin" # what ssh_file and store write
RECEIVED="$INBOX/bench-client/big.bin" # <inbox>/<sender's key name>/<file name>
log "files in $TMP, inbox and the other variants' targets in $DEST"

BIG="$TMP/big.bin"; make_random_file "$BIG" "$BIG_BYTES"
SMALL="$TMP/small/big.bin" # same name, so it lands where RECEIVED says
if ((SMALL_BYTES > 0)); then mkdir -p "$TMP/small"; head -c "$SMALL_BYTES" "$BIG" >"$SMALL"; fi

[[ " ${VARIANTS[*]} " =~ \ (ssh_pipe|ssh_file|scp)\  ]] && start_private_sshd 42222
make_ovtp_homes

# --- measuring one process ---------------------------------------------------------------------
SAMPLES="$TMP/samples.tsv"; : >"$SAMPLES"
declare -A FAILS=()
sample() { printf '%s\t%s\n' "$1" "$2" >>"$SAMPLES"; } # sample KEY VALUE
time_field() { # time_field FILE LABEL -> the value of one line of /usr/bin/time -v
  awk -F': ' -v l="$2" 'index($0, l) {print $2; exit}' "$1" 2>/dev/null || true
}
cpu_secs() { # cpu_secs TIME_FILE -> user + system seconds
  awk -v u="$(time_field "$1" 'User time (seconds)')" -v s="$(time_field "$1" 'System time (seconds)')" \
    'BEGIN{printf "%.2f", u + s}'
}
per_gb() { awk -v x="$1" -v b="$2" 'BEGIN{printf "%.3f", x / (b / 1e9)}'; } # per_gb SECONDS BYTES
failed() { # failed VARIANT REP WHY
  FAILS[$1]=$((${FAILS[$1]:-0} + 1))
  record sendfile_vs_ssh "$1" "$2" NA MB/s NA "" "" "FAILED $3"
}

# run_ovtp GROUP REP FILE BYTES  one sendfile under /usr/bin/time -v, against the running
# listen; checks and deletes the received file.
run_ovtp() {
  local group=$1 rep=$2 file=$3 bytes=$4 t0 t1 rc=0 secs srv0 srv1 xfer rss cli_cpu srv_cpu hwm
  srv0=$(process_cpu_ticks "$DENO_LISTEN_PID")
  t0=$(now_ns)
  (cd "$REPO_DIR" && timeout "$STEP_TIMEOUT" /usr/bin/time -v -o "$TMP/cli.time" \
    "${OVTP_RUN[@]}" main.ts sendfile --home "$CLI_HOME" --json --quiet "127.0.0.1:$OVTP_PORT" "$file" \
    </dev/null >"$TMP/cli.out" 2>"$TMP/cli.err") || rc=$?
  t1=$(now_ns)
  srv1=$(process_cpu_ticks "$DENO_LISTEN_PID")
  if ((rc == 0)) && [[ $(stat -c %s "$RECEIVED" 2>/dev/null) != "$bytes" ]]; then rc=99; fi
  rm -f "$RECEIVED"
  if ((rc)); then failed "$group" "$rep" "rc=$rc: $(head -c 300 "$TMP/cli.err" | tr '\t\n' '  ')"; return 0; fi
  secs=$(secs_between "$t0" "$t1")
  xfer=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$TMP/cli.out")
  [[ $xfer =~ ^[0-9.]+$ && $xfer != 0 ]] || xfer=$secs
  rss=$(time_field "$TMP/cli.time" 'Maximum resident set size')
  cli_cpu=$(cpu_secs "$TMP/cli.time")
  srv_cpu=$(awk -v t=$((srv1 - srv0)) -v h="$CLK_TCK" 'BEGIN{printf "%.2f", t / h}')
  hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$DENO_LISTEN_PID/status")
  sample "$group" "$(mbps "$bytes" "$secs")"
  sample "${group}_xfer" "$(mbps "$bytes" "$xfer")"
  sample "${group}_rss_cli" "$rss"
  sample "${group}_cpu_cli" "$(per_gb "$cli_cpu" "$bytes")"
  sample "${group}_cpu_srv" "$(per_gb "$srv_cpu" "$bytes")"
  record sendfile_vs_ssh "$group" "$rep" "$(mbps "$bytes" "$secs")" MB/s "$secs" "$rss" "$hwm" \
    "transfer only $(mbps "$bytes" "$xfer") MB/s; CPU client ${cli_cpu}s server ${srv_cpu}s"
}

# measured VARIANT REP WHAT CHECK_FILE -- COMMAND...  runs one copy of the big file
# under /usr/bin/time -v; CHECK_FILE (or -) must then hold BIG_BYTES, and is deleted.
measured() {
  local variant=$1 rep=$2 what=$3 check=$4 t0 t1 rc=0 secs
  shift 5
  t0=$(now_ns)
  timeout "$STEP_TIMEOUT" /usr/bin/time -v -o "$TMP/cli.time" "$@" 2>"$TMP/cli.err" || rc=$?
  t1=$(now_ns)
  if [[ $check != - ]]; then
    if ((rc == 0)) && [[ $(stat -c %s "$check" 2>/dev/null) != "$BIG_BYTES" ]]; then rc=99; fi
    rm -f "$check"
  fi
  if ((rc)); then failed "$variant" "$rep" "rc=$rc: $(head -c 300 "$TMP/cli.err" | tr '\t\n' '  ')"; return 0; fi
  secs=$(secs_between "$t0" "$t1")
  sample "$variant" "$(mbps "$BIG_BYTES" "$secs")"
  record sendfile_vs_ssh "$variant" "$rep" "$(mbps "$BIG_BYTES" "$secs")" MB/s "$secs" \
    "$(time_field "$TMP/cli.time" 'Maximum resident set size')" "" "$what"
}
# "cat file | ssh" is the measured command, as in 20_ssh.sh.
SSH_PIPE=(bash -c 'cat "$1" | ssh -c "$2" "${@:4}" root@127.0.0.1 "$3"' ssh_pipe)
run_ssh_pipe() { # run_ssh_pipe REP
  measured ssh_pipe "$1" "cat file | ssh -c $SSH_CIPHER 'cat >/dev/null'" - -- \
    "${SSH_PIPE[@]}" "$BIG" "$SSH_CIPHER" 'cat > /dev/null' "${SSH_OPTS[@]}"
}
run_ssh_file() { # run_ssh_file REP
  measured ssh_file "$1" "cat file | ssh -c $SSH_CIPHER 'cat >tmpfs'" "$STORED" -- \
    "${SSH_PIPE[@]}" "$BIG" "$SSH_CIPHER" "cat > '$STORED'" "${SSH_OPTS[@]}"
}
run_scp() { # run_scp REP
  measured scp "$1" "scp (SFTP, default cipher) to tmpfs" "$SCP_DST" -- \
    scp "${SCP_OPTS[@]}" "$BIG" "root@127.0.0.1:$SCP_DST"
}
run_store() { # run_store REP
  measured store "$1" "cat file >tmpfs" "$STORED" -- sh -c 'cat "$1" > "$2"' store "$BIG" "$STORED"
}

# listen_phase NAME  starts listen under /usr/bin/time -v, warms both sides up with one
# untimed send (it also records the new port in known_hosts).
listen_phase() {
  start_ovtp_listen "$TMP/listen_$1.err" /usr/bin/time -v -o "$TMP/listen_$1.time" -- --inbox "$INBOX"
  local warm="$TMP/warm/big.bin"
  mkdir -p "$TMP/warm"; head -c 1048576 "$BIG" >"$warm"
  run_ovtp warmup 0 "$warm" 1048576
}
end_listen_phase() { # end_listen_phase NAME -> the listen's peak RSS in KiB
  stop_ovtp_listen
  time_field "$TMP/listen_$1.time" 'Maximum resident set size'
}

has_ovtp=0; [[ " ${VARIANTS[*]} " == *" ovtp "* ]] && has_ovtp=1
RSS_SRV_SMALL=NA; RSS_SRV_BIG=NA
if ((has_ovtp && SMALL_BYTES > 0)); then
  log "memory phase: $REPS x $SMALL_BYTES bytes through ovtp sendfile"
  listen_phase small
  for rep in $(seq "$REPS"); do run_ovtp ovtp_small "$rep" "$SMALL" "$SMALL_BYTES"; done
  RSS_SRV_SMALL=$(end_listen_phase small)
fi

((has_ovtp)) && listen_phase big
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
read -r STEAL0 TOTAL0 < <(cpu_ticks)
for rep in $(seq "$REPS"); do
  k=${#VARIANTS[@]}
  for ((i = 0; i < k; i++)); do
    case ${VARIANTS[$(((i + rep) % k))]} in
      ovtp) run_ovtp ovtp "$rep" "$BIG" "$BIG_BYTES" ;;
      ssh_pipe) run_ssh_pipe "$rep" ;;
      ssh_file) run_ssh_file "$rep" ;;
      scp) run_scp "$rep" ;;
      store) run_store "$rep" ;;
    esac
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
STEAL_PCT=$(steal_since "$STEAL0" "$TOTAL0")
((has_ovtp)) && RSS_SRV_BIG=$(end_listen_phase big)

# --- summary -----------------------------------------------------------------------------------
gib() { awk -v b="$1" 'BEGIN{ if (b >= 2^30) printf "%.1f GiB", b / 2^30; else printf "%.0f MiB", b / 2^20 }'; }
read -r _ OVTP_MED OVTP_MIN OVTP_MAX < <(stats "$SAMPLES" ovtp)
row() { # row KEY LABEL WHAT
  local n med mn mx vs
  read -r n med mn mx < <(stats "$SAMPLES" "$1")
  vs="$(ratio "$OVTP_MED" "$med") / $(ratio "$OVTP_MIN" "$mn") / $(ratio "$OVTP_MAX" "$mx")"
  [[ $1 == ovtp_xfer ]] && vs="-"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$3" "$n" "${FAILS[$1]:-0}" "$med" "$mn" "$mx" "$vs"
}
med() { local n m; read -r n m _ < <(stats "$SAMPLES" "$1" 2); echo "$m"; }
{
  echo "## ovtp sendfile vs ssh (loopback, $(nproc) cores, REPS=$REPS, $(gib "$BIG_BYTES") random file, $(date -Is))"
  echo
  echo "ssh: $(ssh -V 2>&1), kex ${SSH_KEX:-not measured}; deno $(deno --version | head -n1 | cut -d' ' -f2)"
  if [[ -n "${IN_NETNS:-}" ]]; then echo "network: private namespace (lo only)"; else echo "network: host namespace, 127.0.0.1 only"; fi
  echo "source file in $(df -P "$TMP" | awk 'NR==2{print $6}'), ovtp inbox and the other targets in $(df -P "$DEST" | awk 'NR==2{print $6}')"
  echo "load average before / after the loop: $LOAD_BEFORE / $LOAD_AFTER (the loop itself adds about 1.5; more means other load)"
  echo "CPU stolen by the hypervisor during the loop: ${STEAL_PCT}% of all CPU time (near 0 for clean figures)"
  echo
  echo "| variant | command | reps | fails | median MB/s | min MB/s | max MB/s | ovtp ÷ this (median / min / max) |"
  echo "|---|---|---|---|---|---|---|---|"
  for v in "${VARIANTS[@]}"; do
    case $v in
      ovtp)
        row ovtp "ovtp sendfile" "sendfile host file, process start to exit (verified, fsynced)"
        row ovtp_xfer "ovtp, transfer only" "its own timing: offer to verified result, no start-up or handshake" ;;
      ssh_pipe) row ssh_pipe "ssh pipe" "cat file \\| ssh -c $SSH_CIPHER host 'cat >/dev/null'" ;;
      ssh_file) row ssh_file "ssh pipe, stored" "cat file \\| ssh -c $SSH_CIPHER host 'cat >tmpfs'" ;;
      scp) row scp "scp" "scp file host:tmpfs (SFTP, default cipher)" ;;
      store) row store "store alone" "cat file >tmpfs (no network: the ceiling of a stored copy)" ;;
    esac
  done
  if ((has_ovtp)); then
    echo
    echo "ovtp CPU per GB sent (median of reps): client $(med ovtp_cpu_cli) s, server $(med ovtp_cpu_srv) s," \
      "sum $(awk -v a="$(med ovtp_cpu_cli)" -v b="$(med ovtp_cpu_srv)" 'BEGIN{printf "%.2f", a + b}') s"
    echo "(user + system; both processes share the $(nproc) cores, so their sum bounds the throughput)."
    echo
    echo "| file | reps | sendfile (client) peak RSS KiB, median / max | listen (server) peak RSS KiB |"
    echo "|---|---|---|---|"
    if ((SMALL_BYTES > 0)); then
      read -r n m _ mx < <(stats "$SAMPLES" ovtp_small_rss_cli 0)
      echo "| $(gib "$SMALL_BYTES") | $n | $m / $mx | $RSS_SRV_SMALL |"
    fi
    read -r n m _ mx < <(stats "$SAMPLES" ovtp_rss_cli 0)
    echo "| $(gib "$BIG_BYTES") | $n | $m / $mx | $RSS_SRV_BIG |"
    echo
    echo "Each listen served one 1 MiB warm-up send and then the reps of that row; its peak"
    echo "is over its whole life. Both sides should be flat: memory must not grow with the file."
  fi
} | tee "$RESULTS_DIR/sendfile_vs_ssh.md"
log "done: $RESULTS and $RESULTS_DIR/sendfile_vs_ssh.md"
