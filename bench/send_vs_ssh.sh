#!/usr/bin/env bash
# send_vs_ssh.sh -- start-up plus one round trip: one `ovtp send` process against
# one `ssh host true`, measured alternately in the same loop on loopback.
#
# A private sshd is started exactly as ../../shared/bench/20_ssh.sh does (own host
# key and config in a temp dir, key-only login, SetEnv SHLVL=1), and a private
# `ovtp listen` (temporary OVTP homes, never ~/.ovtp). Each iteration times, as
# wall time from process start to exit:
#   ssh         ssh -F /dev/null ... root@127.0.0.1 true   (default key exchange)
#   ovtp_cold   deno run --allow-all V8FLAGS main.ts send 127.0.0.1:PORT hi, with an
#               empty Deno cache (fresh DENO_DIR; the npm/remote package caches
#               are linked in, so nothing is fetched): a user's first run
#   ovtp_warm   the same command with a kept Deno cache (transpiled modules and
#               V8 code cache); its first run is excluded as warm-up
#   deno_empty  deno run --allow-all on an empty module (reference: Deno's own
#               start-up)                                 [REFERENCES=1]
#   ovtp_help   deno run --allow-all main.ts send --help, warm cache (reference:
#               start-up and module loading without any crypto or socket)
#                                                         [REFERENCES=1]
# The order rotates every iteration so no variant always runs first.
#
# Knobs (environment): N (20) iterations; REFERENCES (1); RUN_TIMEOUT (30 s per
# process); STEP_TIMEOUT (180 s per set-up step); RESULTS_DIR (./results beside
# this script); NO_NETNS=1 to stay in the host namespace; OVTP_SHARED_BENCH (the
# shared/bench folder, default ../../shared/bench from this script).
# Output: a Markdown table on stdout (also $RESULTS_DIR/send_vs_ssh.md) and one
# TSV line per run in $RESULTS_DIR/send_vs_ssh.tsv.
set -euo pipefail
export LC_ALL=C

N="${N:-20}"
REFERENCES="${REFERENCES:-1}"
RUN_TIMEOUT="${RUN_TIMEOUT:-30}"
# shellcheck source=bench/_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"
((N >= 1)) || { echo "$BENCH_NAME: error: N must be at least 1, got \"$N\"" >&2; exit 2; }

bench_enter "$BENCH_DIR/$BENCH_NAME" "$@"
make_tmp
set_results send_vs_ssh
env_report sh -c 'ssh -V; deno --version'

# --- Deno caches: the package caches are shared, the module caches private -----------
REAL_DENO_DIR=$(deno info --json 2>/dev/null | sed -n 's/.*"denoDir": *"\([^"]*\)".*/\1/p' | head -n1)
[[ -n "$REAL_DENO_DIR" && -d "$REAL_DENO_DIR" ]] || { log "cannot find DENO_DIR"; exit 1; }
new_deno_dir() { # new_deno_dir PATH  an empty Deno cache that reuses downloaded packages
  mkdir -p "$1"
  local d
  for d in npm remote; do [[ -e "$REAL_DENO_DIR/$d" ]] && ln -s "$REAL_DENO_DIR/$d" "$1/$d"; done
  return 0
}
WARM_DENO_DIR="$TMP/deno_warm"
new_deno_dir "$WARM_DENO_DIR"
export DENO_DIR="$WARM_DENO_DIR"
: >"$TMP/empty.ts"

# --- private sshd, as 20_ssh.sh starts it ----------------------------------------------
start_private_sshd 42122

# --- private ovtp identities and listener -------------------------------------------------
make_ovtp_homes
start_ovtp_listen "$TMP/listen.err"
log "ovtp listening on 127.0.0.1:$OVTP_PORT, sshd on 127.0.0.1:$SSH_PORT (kex $SSH_KEX)"
TARGET="127.0.0.1:$OVTP_PORT"

# --- the variants --------------------------------------------------------------------------
# Every variant is one argv, run from the repository under `timeout`; stdin is /dev/null.
VARIANTS=(ssh ovtp_cold ovtp_warm)
((REFERENCES)) && VARIANTS+=(deno_empty ovtp_help)
cmd_of() { # cmd_of VARIANT -> fills the array CMD
  case $1 in
    ssh) CMD=(ssh "${SSH_OPTS[@]}" root@127.0.0.1 true) ;;
    ovtp_cold | ovtp_warm) CMD=("${OVTP_RUN[@]}" main.ts send --home "$CLI_HOME" "$TARGET" hi) ;;
    deno_empty) CMD=(deno run --allow-all "$TMP/empty.ts") ;;
    ovtp_help) CMD=("${OVTP_RUN[@]}" main.ts send --help) ;;
  esac
}
SAMPLES="$TMP/samples.tsv"; : >"$SAMPLES"
declare -A FAILS=()
run_one() { # run_one VARIANT REP [warmup]  times one process; appends "VARIANT ms" to $SAMPLES
  local v=$1 rep=$2 warm=${3:-} dd="$WARM_DENO_DIR" t0 t1 rc=0 ms
  cmd_of "$v"
  if [[ $v == ovtp_cold ]]; then dd="$TMP/deno_cold.$rep"; rm -rf "$dd"; new_deno_dir "$dd"; fi
  cd "$REPO_DIR"
  t0=${EPOCHREALTIME/./}
  DENO_DIR="$dd" timeout "$RUN_TIMEOUT" "${CMD[@]}" </dev/null >"$TMP/run.out" 2>"$TMP/run.err" || rc=$?
  t1=${EPOCHREALTIME/./}
  cd - >/dev/null
  [[ $v == ovtp_cold ]] && rm -rf "$dd"
  ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", (b - a) / 1000}')
  if [[ -n $warm ]]; then
    log "warm-up $v: ${ms} ms rc=$rc $(head -c 200 "$TMP/run.out" | tr '\n' ' ')"
    if ((rc)); then log "warm-up of $v failed:"; head -c 2000 "$TMP/run.err" >&2; return 1; fi
    return 0
  fi
  if ((rc)); then
    FAILS[$v]=$((${FAILS[$v]:-0} + 1))
    record send_vs_ssh "$v" "$rep" NA ms NA "" "" "FAILED rc=$rc: $(head -c 300 "$TMP/run.err" | tr '\t\n' '  ')"
    return 0
  fi
  printf '%s\t%s\n' "$v" "$ms" >>"$SAMPLES"
  record send_vs_ssh "$v" "$rep" "$ms" ms "$(awk -v m="$ms" 'BEGIN{printf "%.4f", m / 1000}')" "" "" ""
}

# Warm-up (excluded): every variant once; this also records the server in the
# client's known_hosts, so the timed sends all see a known host.
for v in "${VARIANTS[@]}"; do run_one "$v" 0 warmup; done
cd "$REPO_DIR"
timeout "$RUN_TIMEOUT" "${OVTP_RUN[@]}" main.ts send --home "$CLI_HOME" "$TARGET" hi </dev/null >"$TMP/resp.out" 2>"$TMP/resp.err" || true
cd - >/dev/null
log "ovtp send response: $(head -c 300 "$TMP/resp.out" | tr '\n' ' ') stderr: $(head -c 300 "$TMP/resp.err" | tr '\n' ' ')"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
read -r STEAL0 TOTAL0 < <(cpu_ticks)
for rep in $(seq "$N"); do
  k=${#VARIANTS[@]}
  for ((i = 0; i < k; i++)); do run_one "${VARIANTS[$(((i + rep) % k))]}" "$rep"; done
done

# --- max RSS of one process each (outside the timed loop) ------------------------------------
rss_one() { # rss_one VARIANT -> KiB
  cmd_of "$1"
  (cd "$REPO_DIR" && timeout "$RUN_TIMEOUT" /usr/bin/time -f %M -o "$TMP/one.rss" "${CMD[@]}" </dev/null >/dev/null 2>&1) \
    && rss_of "$TMP/one.rss" || echo NA
}
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
STEAL_PCT=$(steal_since "$STEAL0" "$TOTAL0")
RSS_SSH=$(rss_one ssh); RSS_OVTP=$(rss_one ovtp_warm)

# --- summary -----------------------------------------------------------------------------------
read -r _ SSH_MED SSH_MIN SSH_MAX < <(stats "$SAMPLES" ssh)
{
  echo "## ovtp send vs ssh true (loopback, $(nproc) cores, N=$N, $(date -Is))"
  echo
  echo "ssh: $(ssh -V 2>&1), kex $SSH_KEX; deno $(deno --version | head -n1 | cut -d' ' -f2)"
  if [[ -n "${IN_NETNS:-}" ]]; then echo "network: private namespace (lo only)"; else echo "network: host namespace, 127.0.0.1 only"; fi
  echo "load average before / after the loop: $LOAD_BEFORE / $LOAD_AFTER (the loop itself adds about 1; more means other load)"
  echo "CPU stolen by the hypervisor during the loop: ${STEAL_PCT}% of all CPU time (near 0 for clean figures)"
  echo
  echo "| variant | runs | fails | median ms | min ms | max ms | ratio to ssh (median / min / max) |"
  echo "|---|---|---|---|---|---|---|"
  for v in "${VARIANTS[@]}"; do
    read -r n med mn mx < <(stats "$SAMPLES" "$v")
    printf '| %s | %s | %s | %s | %s | %s | %s / %s / %s |\n' "$v" "$n" "${FAILS[$v]:-0}" "$med" "$mn" "$mx" \
      "$(ratio "$med" "$SSH_MED")" "$(ratio "$mn" "$SSH_MIN")" "$(ratio "$mx" "$SSH_MAX")"
  done
  echo
  echo "ovtp_cold: every run with an empty Deno module cache (first run after install);"
  echo "ovtp_warm: kept module and V8 code cache, first run excluded as warm-up."
  echo "deno_empty / ovtp_help: Deno start-up alone / module loading without crypto or socket."
  echo "Max RSS of one process: ssh ${RSS_SSH} KiB, ovtp send ${RSS_OVTP} KiB."
} | tee "$RESULTS_DIR/send_vs_ssh.md"
log "done: $RESULTS and $RESULTS_DIR/send_vs_ssh.md"
