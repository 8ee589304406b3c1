# shellcheck shell=bash
# Helpers shared by ovtp's shell benchmarks (send_vs_ssh.sh, sendfile_vs_ssh.sh).
# Source it after setting the script's own knobs (RESULTS_DIR above all): it
# finds and sources the shared baseline helpers (../../shared/bench/lib.sh, or
# $OVTP_SHARED_BENCH), then adds what both scripts need: a private sshd as
# shared/bench/20_ssh.sh starts it, temporary ovtp identities, a private
# `ovtp listen`, and the summary statistics.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_NAME="$(basename "$0")"
SHARED_BENCH="${OVTP_SHARED_BENCH:-$REPO_DIR/../shared/bench}"
if [[ ! -r "$SHARED_BENCH/lib.sh" ]]; then
  echo "$BENCH_NAME: error: Cannot find the shared benchmark helpers \"$SHARED_BENCH/lib.sh\"" >&2
  echo "$BENCH_NAME: hint: check out shared/ beside the repository, or set OVTP_SHARED_BENCH=/path/to/shared/bench" >&2
  exit 2
fi
if [[ ! -f "$REPO_DIR/main.ts" ]]; then
  echo "$BENCH_NAME: error: Cannot find \"$REPO_DIR/main.ts\"" >&2
  exit 2
fi
command -v deno >/dev/null || { echo "$BENCH_NAME: error: deno is not on PATH" >&2; exit 2; }
# ovtp runs as it ships: with the V8 settings that the npm launcher and the
# compiled binary pass (scripts/v8_flags.json).
OVTP_V8_FLAGS="$(sed -n 's/^\["\(--v8-flags=[^"]*\)"\]$/\1/p' "$REPO_DIR/scripts/v8_flags.json")"
[[ -n $OVTP_V8_FLAGS ]] || { echo "$BENCH_NAME: error: Cannot read scripts/v8_flags.json" >&2; exit 2; }
OVTP_RUN=(deno run --allow-all "$OVTP_V8_FLAGS")
export RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
# shellcheck source=/dev/null
source "$SHARED_BENCH/lib.sh"

# bench_enter SCRIPT ARGS...  installs what is missing, resolves the project's
# dependencies while the network is still there (a no-op when cached), then
# re-executes SCRIPT in a private network namespace holding only `lo`.
bench_enter() {
  need_pkgs "${BASE_PKGS[@]}" /usr/sbin/sshd:openssh-server ssh:openssh-client
  if [[ -z "${IN_NETNS:-}" ]]; then
    (cd "$REPO_DIR" && timeout "$STEP_TIMEOUT" deno cache --quiet main.ts) \
      || { log "deno cache main.ts failed"; exit 1; }
  fi
  enter_netns "$@"
}

# add_cleanup SHELL_TEXT  one more thing for lib.sh's cleanup() to run on exit
add_cleanup() {
  # shellcheck disable=SC2034 # EXTRA_CLEANUP is read by cleanup() in lib.sh
  EXTRA_CLEANUP="${EXTRA_CLEANUP:+$EXTRA_CLEANUP; }$1"
}

# --- private sshd, as shared/bench/20_ssh.sh starts it ---------------------------------
# start_private_sshd BASE_PORT  -> SSH_PORT, SSH_OPTS, SCP_OPTS, SSH_KEX; sshd runs in
# the background (tracked, so cleanup stops it).
start_private_sshd() {
  if [[ ! -d /run/sshd ]]; then
    mkdir -p /run/sshd; chmod 755 /run/sshd; add_cleanup 'rmdir /run/sshd 2>/dev/null'
  fi
  SSH_PORT=$(free_port "$1")
  ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$TMP/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C bench-user -f "$TMP/id_ed25519"
  cp "$TMP/id_ed25519.pub" "$TMP/authorized_keys"
  echo "[127.0.0.1]:$SSH_PORT $(cat "$TMP/host_ed25519.pub")" >"$TMP/known_hosts"
  cat >"$TMP/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $TMP/host_ed25519
PidFile $TMP/sshd.pid
AuthorizedKeysFile $TMP/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 200:30:400
MaxSessions 50
LogLevel ERROR
Subsystem sftp /usr/lib/openssh/sftp-server
# Keep root's slow ~/.bashrc out of the figures (see shared/bench/README.md).
SetEnv SHLVL=1
EOF
  timeout 30 /usr/sbin/sshd -t -f "$TMP/sshd_config"
  local common=(-i "$TMP/id_ed25519" -o IdentitiesOnly=yes
    -o UserKnownHostsFile="$TMP/known_hosts" -o StrictHostKeyChecking=yes
    -o BatchMode=yes -o CheckHostIP=no -o GSSAPIAuthentication=no -o Compression=no)
  SSH_OPTS=(-F /dev/null -p "$SSH_PORT" "${common[@]}" -o ControlMaster=no -o ControlPath=none
    -o LogLevel=ERROR)
  # shellcheck disable=SC2034 # for the caller
  SCP_OPTS=(-F /dev/null -P "$SSH_PORT" "${common[@]}" -q)
  bg /usr/sbin/sshd -D -f "$TMP/sshd_config" -E "$TMP/sshd.log"
  wait_port "$SSH_PORT" 10
  timeout 30 ssh "${SSH_OPTS[@]}" root@127.0.0.1 true || { log "ssh sanity check failed"; cat "$TMP/sshd.log" >&2; exit 1; }
  # shellcheck disable=SC2034 # for the caller
  SSH_KEX=$(timeout 30 ssh -v "${SSH_OPTS[@]}" -o LogLevel=DEBUG1 root@127.0.0.1 true 2>&1 \
    | sed -n 's/.*kex: algorithm: //p' | head -n1)
}

# --- ovtp -----------------------------------------------------------------------------------
# ovtp ARGS...  one ovtp command from the repository, bounded, stdin closed.
# Benchmarks connect to a fresh server each run: record its key without asking.
export OVTP_ACCEPT_NEW=1
ovtp() { (cd "$REPO_DIR" && timeout "$STEP_TIMEOUT" "${OVTP_RUN[@]}" main.ts "$@" </dev/null); }

# make_ovtp_homes  -> SRV_HOME and CLI_HOME: fresh identities in $TMP, the client's
# key (named "bench-client") authorized on the server.
make_ovtp_homes() {
  SRV_HOME="$TMP/ovtp_server"; CLI_HOME="$TMP/ovtp_client"
  ovtp keygen --home "$SRV_HOME" --comment bench-server >"$TMP/keygen_srv.out" 2>&1 || { cat "$TMP/keygen_srv.out" >&2; exit 1; }
  ovtp keygen --home "$CLI_HOME" --comment bench-client >"$TMP/keygen_cli.out" 2>&1 || { cat "$TMP/keygen_cli.out" >&2; exit 1; }
  local pub; pub=$(ovtp id --home "$CLI_HOME")
  ovtp add-key --home "$SRV_HOME" "$pub" >"$TMP/add_key.out" 2>&1 || { cat "$TMP/add_key.out" >&2; exit 1; }
}

# start_ovtp_listen ERRFILE [WRAPPER...] -- [LISTEN ARGS...]
#   Starts `[WRAPPER...] deno run main.ts listen --home $SRV_HOME --host 127.0.0.1
#   --port 0 [ARGS...]` in the background (stdout to /dev/null, stderr to ERRFILE) and
#   waits until it reports its port. Sets LISTEN_PID (the background job: the wrapper,
#   or deno itself), DENO_LISTEN_PID (the deno process) and OVTP_PORT.
start_ovtp_listen() {
  local err=$1 wrapper=() _
  shift
  while (($#)) && [[ $1 != -- ]]; do wrapper+=("$1"); shift; done
  (($#)) && shift
  (cd "$REPO_DIR" && exec "${wrapper[@]}" "${OVTP_RUN[@]}" main.ts listen --home "$SRV_HOME" \
    --host 127.0.0.1 --port 0 "$@" </dev/null >/dev/null 2>"$err") &
  LISTEN_PID=$!; track "$LISTEN_PID"
  OVTP_PORT=""
  for _ in $(seq 1500); do # up to 30 s
    OVTP_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$err" | head -n1)
    [[ -n "$OVTP_PORT" ]] && break
    kill -0 "$LISTEN_PID" 2>/dev/null || break
    sleep 0.02
  done
  if [[ -z "$OVTP_PORT" ]]; then log "ovtp listen did not report its port"; cat "$err" >&2; exit 1; fi
  DENO_LISTEN_PID=$LISTEN_PID
  if ((${#wrapper[@]})); then DENO_LISTEN_PID=$(pgrep -n -x deno -P "$LISTEN_PID" || true); fi
  [[ -n "$DENO_LISTEN_PID" ]] || { log "cannot find the deno process of ovtp listen"; exit 1; }
}

# stop_ovtp_listen  SIGTERM to deno (listen exits 0 on it), so that a wrapper such as
# /usr/bin/time sees a normal exit and writes its report; KILL after 10 s.
stop_ovtp_listen() {
  kill -TERM "$DENO_LISTEN_PID" 2>/dev/null || true
  wait_bg "$LISTEN_PID" 10 || true
}

# --- machine state and statistics -------------------------------------------------------
# steal: CPU time the hypervisor gave to other guests (field 9 of the cpu line)
cpu_ticks() { awk '/^cpu /{t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t}' /proc/stat; }
steal_since() { # steal_since STEAL0 TOTAL0 -> percent of all CPU time since then
  local s t
  read -r s t < <(cpu_ticks)
  awk -v s=$((s - $1)) -v t=$((t - $2)) 'BEGIN{ if (t > 0) printf "%.0f", 100 * s / t; else print "NA" }'
}
# process_cpu_ticks PID -> user + system clock ticks so far
process_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# shellcheck disable=SC2034 # for the caller
CLK_TCK=$(getconf CLK_TCK)

# stats FILE KEY [DECIMALS] -> "n median min max" over the values of the lines
# "KEY<TAB>value", with DECIMALS (1) digits after the point
stats() {
  awk -F'\t' -v k="$2" '$1 == k {print $2}' "$1" | sort -g | awk -v d="${3:-1}" '
    {a[NR] = $1}
    END {
      if (NR == 0) { print "0 NA NA NA"; exit }
      m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      f = "%." d "f"
      printf "%d " f " " f " " f "\n", NR, m, a[1], a[NR]
    }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "NA" || b == "NA" || b == 0) print "NA"; else printf "%.2f", a / b }'; }
