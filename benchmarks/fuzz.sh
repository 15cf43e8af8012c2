#!/usr/bin/env bash
# Fuzzes the parsers that take bytes from outside: builds the libFuzzer targets of
# benchmarks/fuzz/ (Debian's clang 19, ASan + UBSan) and runs each for a bounded time,
# then prints a summary table (target, seconds, executions, corpus size, crashes).
#
#   benchmarks/fuzz.sh                       # every target, 60 s each
#   benchmarks/fuzz.sh --seconds 300 --targets "wire mtb"
#
# Work directory (--work-dir, default build-fuzz/fuzz): seeds/<target> is regenerated from
# real inputs each run (fuzz_seeds), corpus/<target> keeps what the fuzzer found across
# runs, crashes/<target> gets each crashing input (crash-*, timeout-*, oom-*), logs/ the
# fuzzer output. Runs in fork mode, so a crash is saved and fuzzing goes on. Exit status 1
# when any target crashed. Reproduce one: build-fuzz/bin/fuzz_<target> <crash file>.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets="wire mtb csv job_spec checkpoint"
seconds=60
targets="$all_targets"
build_dir=build-fuzz
work_dir=""
usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  echo "flags: --seconds N (per target) --targets \"LIST\" (of: $all_targets)"
  echo "       --build-dir DIR (default build-fuzz) --work-dir DIR (default BUILD_DIR/fuzz)"
}
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --work-dir) work_dir="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "fuzz.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
done
work_dir="${work_dir:-$build_dir/fuzz}"
for t in $targets; do
  case " $all_targets " in *" $t "*) ;; *) echo "fuzz.sh: unknown target $t" >&2; exit 2 ;; esac
done

bash launch/install-deps.sh --fuzz
CC=clang-19 CXX=clang++-19 cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMTPS_FUZZ=ON -DMTPS_CUDA=OFF -DMTPS_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target fuzz_seeds $(for t in $targets; do echo "fuzz_$t"; done)

rm -rf "$work_dir/seeds"
"$build_dir/bin/fuzz_seeds" "$work_dir/seeds"
mkdir -p "$work_dir/logs"

rows=()
any_crash=0
for t in $targets; do
  corpus="$work_dir/corpus/$t"
  crashes="$work_dir/crashes/$t"
  log="$work_dir/logs/$t.log"
  mkdir -p "$corpus" "$crashes" "$work_dir/seeds/$t"
  files_before=$(find "$crashes" -type f | wc -l)
  echo "fuzz.sh: $t for ${seconds}s (log: $log)"
  # Fork mode: each crash, timeout or OOM is saved and the fuzzer goes on. Inputs are
  # bounded by what the seeds need; -rss_limit_mb leaves room for the other users.
  "$build_dir/bin/fuzz_$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$crashes/" "$corpus" "$work_dir/seeds/$t" >"$log" 2>&1 || true
  # Fork mode's status lines: "#EXECS: cov: .. corp: N .. oom/timeout/crash: O/T/C ..".
  last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
  execs=$(sed -nE 's/^#([0-9]+):.*/\1/p' <<<"$last")
  corp=$(sed -nE 's/.* corp: ([0-9]+) .*/\1/p' <<<"$last")
  events=$(sed -nE 's|.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*|\1 oom, \2 timeout, \3 crash|p' <<<"$last")
  files_after=$(find "$crashes" -type f | wc -l)
  new_files=$((files_after - files_before))
  [ "$new_files" -gt 0 ] && any_crash=1
  rows+=("$t|$seconds|${execs:-?}|${corp:-?}|${events:-?}|$new_files")
done

echo
printf '%-11s %7s %12s %7s %-30s %s\n' target seconds executions corpus "events (oom, timeout, crash)" "new crash files"
for r in "${rows[@]}"; do
  IFS='|' read -r t s e c ev n <<<"$r"
  printf '%-11s %7s %12s %7s %-30s %s\n' "$t" "$s" "$e" "$c" "$ev" "$n"
done
if [ "$any_crash" -ne 0 ]; then
  echo
  echo "crashing inputs:"
  for t in $targets; do find "$work_dir/crashes/$t" -type f -newer "$work_dir/seeds" | sed 's/^/  /'; done
  exit 1
fi
