#!/usr/bin/env bash
# seal_vs_age.sh -- throughput of `ovtp seal` and `ovtp open` against age 1.1
# (`age -r` and `age -d`, X25519 recipient) on one large random file, measured
# alternately in the same run, with the peak RSS of every process.
#
# The input lives in tmpfs (as ../../shared/bench/40_age.sh does) and every
# output goes to /dev/null, so only the tools' own work is timed: reading the
# file, the crypto, writing. age's payload is ChaCha20-Poly1305 in 64 KiB
# STREAM chunks; so is ovtp's, which also hashes every chunk (SHA-256) for the
# sender's signature over the whole file, and signs the header (see
# docs/protocol.md, section "Sealed files"). The four variants run in a rotating order in
# each repetition:
#   age_encrypt   age -r RECIPIENT -o /dev/null IN
#   ovtp_seal     ovtp seal -r bob IN -o /dev/null         (as alice)
#   age_decrypt   age -d -i KEY -o /dev/null IN.age
#   ovtp_open     ovtp open IN.ovtp -o /dev/null            (as bob)
# ovtp runs as `deno run --allow-all V8FLAGS main.ts`, V8FLAGS from
# scripts/v8_flags.json as the binary has them (start-up included: about 0.1 s).
#
# Knobs (environment): BIG_BYTES (2147483648, 2 GiB); REPS (3); STEP_TIMEOUT
# (180 s per process); RESULTS_DIR (./results beside this script);
# OVTP_SHARED_BENCH (the shared/bench folder, default ../../shared/bench).
# Output: a Markdown table on stdout (also $RESULTS_DIR/seal_vs_age.md), one
# TSV line per run in $RESULTS_DIR/seal_vs_age.tsv (shared/bench's columns),
# versions and machine facts in $RESULTS_DIR/env.txt. Needs /usr/bin/time and
# age (installed with apt-get when missing, hence root), about 3 × BIG_BYTES of
# tmpfs (or /tmp).
set -euo pipefail
export LC_ALL=C

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
SHARED_BENCH="${OVTP_SHARED_BENCH:-$REPO_DIR/../shared/bench}"
if [[ ! -r "$SHARED_BENCH/lib.sh" ]]; then
  echo "seal_vs_age.sh: error: Cannot find the shared benchmark helpers \"$SHARED_BENCH/lib.sh\"" >&2
  echo "seal_vs_age.sh: hint: check out shared/ beside the repository, or set OVTP_SHARED_BENCH=/path/to/shared/bench" >&2
  exit 2
fi
command -v deno >/dev/null || { echo "seal_vs_age.sh: error: deno is not on PATH" >&2; exit 2; }
export RESULTS_DIR="${RESULTS_DIR:-$BENCH_DIR/results}"
# shellcheck source=/dev/null
source "$SHARED_BENCH/lib.sh"
((REPS >= 1)) || { echo "seal_vs_age.sh: error: REPS must be at least 1" >&2; exit 2; }

need_pkgs /usr/bin/time:time age:age age-keygen:age
make_tmp
set_results seal_vs_age
# shellcheck disable=SC2016 # expanded by that sh
env_report sh -c 'echo "age $(age --version)"; deno --version | head -n1'

# --allow-all: Deno asks for it to write under /dev/shm, where the files are.
# As ovtp ships: the V8 settings of the npm launcher and the compiled binary.
OVTP_V8_FLAGS="$(sed -n 's/^\["\(--v8-flags=[^"]*\)"\]$/\1/p' "$REPO_DIR/scripts/v8_flags.json")"
[[ -n $OVTP_V8_FLAGS ]] || { echo "seal_vs_age: error: Cannot read scripts/v8_flags.json" >&2; exit 2; }
OVTP=(deno run --quiet --allow-all "$OVTP_V8_FLAGS" "$REPO_DIR/main.ts")
ovtp_as() { # ovtp_as HOME ARGS...
  local home=$1; shift
  OVTP_HOME="$home" timeout "$STEP_TIMEOUT" "${OVTP[@]}" "$@"
}

log "creating a $BIG_BYTES-byte random file in $TMP"
IN="$TMP/in.bin"
make_random_file "$IN" "$BIG_BYTES"
age-keygen -o "$TMP/age.key" 2>/dev/null
AGE_RECIPIENT=$(age-keygen -y "$TMP/age.key")
ovtp_as "$TMP/alice" keygen --comment alice >/dev/null
ovtp_as "$TMP/bob" keygen --comment bob >/dev/null
ovtp_as "$TMP/alice" add-key "$(ovtp_as "$TMP/bob" id)" --name bob >/dev/null

log "sealing once with each tool, and checking both round trips"
timeout "$STEP_TIMEOUT" age -r "$AGE_RECIPIENT" -o "$TMP/in.age" "$IN"
ovtp_as "$TMP/alice" seal -r bob "$IN" -o "$TMP/in.ovtp"
timeout "$STEP_TIMEOUT" age -d -i "$TMP/age.key" "$TMP/in.age" | cmp - "$IN" \
  || { log "age round trip mismatch"; exit 1; }
ovtp_as "$TMP/bob" open "$TMP/in.ovtp" 2>/dev/null | cmp - "$IN" \
  || { log "ovtp round trip mismatch"; exit 1; }
log "ciphertext: age $(stat -c %s "$TMP/in.age") bytes, ovtp $(stat -c %s "$TMP/in.ovtp") bytes"

cpu_jiffies() { # total and busy-by-others are derived from two snapshots of /proc/stat
  awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat
}

run_variant() { # run_variant VARIANT REP
  local variant=$1 rep=$2 t0 t1 secs rc=0 user sys rss
  local -a cmd
  case "$variant" in
    age_encrypt) cmd=(age -r "$AGE_RECIPIENT" -o /dev/null "$IN") ;;
    age_decrypt) cmd=(age -d -i "$TMP/age.key" -o /dev/null "$TMP/in.age") ;;
    ovtp_seal) cmd=(env OVTP_HOME="$TMP/alice" "${OVTP[@]}" seal -r bob "$IN" -o /dev/null) ;;
    ovtp_open) cmd=(env OVTP_HOME="$TMP/bob" "${OVTP[@]}" open "$TMP/in.ovtp" -o /dev/null) ;;
  esac
  t0=$(now_ns)
  timeout "$STEP_TIMEOUT" /usr/bin/time -f "%U %S %M" -o "$TMP/time" "${cmd[@]}" 2>"$TMP/stderr" \
    || rc=$?
  t1=$(now_ns)
  secs=$(secs_between "$t0" "$t1")
  if ((rc)); then
    record seal_vs_age "$variant" "$rep" NA MB/s "$secs" "" "" "FAILED rc=$rc $(head -c 200 "$TMP/stderr")"
    return 0
  fi
  read -r user sys rss <"$TMP/time"
  record seal_vs_age "$variant" "$rep" "$(mbps "$BIG_BYTES" "$secs")" MB/s "$secs" "$rss" "" \
    "cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u + s}')s"
}

VARIANTS=(age_encrypt ovtp_seal age_decrypt ovtp_open)
read -r total0 steal0 < <(cpu_jiffies)
busy0=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
start_ns=$(now_ns)
for rep in $(seq "$REPS"); do
  shift_by=$(((rep - 1) % ${#VARIANTS[@]}))
  for i in "${!VARIANTS[@]}"; do
    run_variant "${VARIANTS[$(((i + shift_by) % ${#VARIANTS[@]}))]}" "$rep"
  done
done
read -r total1 steal1 < <(cpu_jiffies)
busy1=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
loop_secs=$(secs_between "$start_ns" "$(now_ns)")

# --- summary ---------------------------------------------------------------------------
SUMMARY="$RESULTS_DIR/seal_vs_age.md"
this_run=$(awk -F'\t' -v since="$(date -d "@$((start_ns / 1000000000))" -Is)" \
  'NR > 1 && $1 == "seal_vs_age" && $10 >= since' "$RESULTS")
{
  echo "## ovtp seal/open vs age 1.1, $BIG_BYTES bytes, $REPS repetitions ($(date -Is))"
  echo
  echo "| variant | runs | median MB/s | min | max | peak RSS (KiB, max) | CPU s (median) |"
  echo "| ------- | ---- | ----------- | --- | --- | ------------------- | -------------- |"
  for variant in "${VARIANTS[@]}"; do
    awk -F'\t' -v v="$variant" '$2 == v && $4 != "NA" {
        n++; x[n] = $4; if ($7 > rss) rss = $7; sub(/^cpu=/, "", $9); sub(/s$/, "", $9); c[n] = $9 }
      function median(a, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
      END {
        if (!n) { printf "| %s | 0 | – | – | – | – | – |\n", v; exit }
        m = median(x, n); lo = x[1]; hi = x[n]; cm = median(c, n)
        printf "| %s | %d | %.1f | %.1f | %.1f | %d | %.2f |\n", v, n, m, lo, hi, rss, cm }' \
      <<<"$this_run"
  done
  echo
  for pair in "ovtp_seal age_encrypt" "ovtp_open age_decrypt"; do
    read -r ours theirs <<<"$pair"
    awk -F'\t' -v a="$ours" -v b="$theirs" '
      $2 == a && $4 != "NA" { na++; xa[na] = $4 } $2 == b && $4 != "NA" { nb++; xb[nb] = $4 }
      function median(x, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
        return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }
      END { if (na && nb) printf "- %s / %s: %.2f (median to median; target at least 0.5)\n", a, b, median(xa, na) / median(xb, nb) }' \
      <<<"$this_run"
  done
  awk -v t0="$total0" -v t1="$total1" -v s0="$steal0" -v s1="$steal1" -v b0="$busy0" -v b1="$busy1" \
    -v secs="$loop_secs" -v cpus="$(nproc)" 'BEGIN {
      d = t1 - t0; if (d <= 0) exit
      printf "- CPU during the loop (%.0f s, %d cores): busy %.0f%%, stolen by the hypervisor %.0f%% (clean figures need the machine otherwise idle: age uses one core, ovtp up to all)\n",
        secs, cpus, 100 * (b1 - b0) / d, 100 * (s1 - s0) / d }'
  echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee -a "$SUMMARY"
log "done: $RESULTS"
