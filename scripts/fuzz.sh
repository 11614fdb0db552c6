#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that see network or file input
# (fuzz/, cargo fuzz with libFuzzer). Runs each target for a given time and
# prints a table: target, seconds, executions, executions per second,
# coverage (edges) and features, corpus size, crashes.
#
# Works on the stable toolchain: the targets build without a sanitizer
# (`--sanitizer none`; the code is safe Rust, so AddressSanitizer would add
# nothing), which needs no -Z flag. cargo-fuzz is installed if missing.
#
# The corpus of each target lives in fuzz/corpus/<target>/ (not in git):
# `scripts/fuzz.sh seed` (re)writes the seeds there (fuzz/seeds.py: cuts of
# golden/*/input.*, hand-made streams, conf/*.xml and the crash inputs kept
# in golden/fuzz-regressions/); a run seeds a missing corpus itself. Crash
# inputs land in fuzz/artifacts/<target>/.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/fuzz.sh [options] [target...]
       scripts/fuzz.sh seed
       scripts/fuzz.sh build
       scripts/fuzz.sh list

  --time SECONDS   run each target this long (default 60)
  --jobs N         run N targets at once (default 1)
  --quick          a few seconds per target (CI): --time 5 --dev
  --dev            build without optimizations (much quicker to build,
                   slower to run: for short runs)
  --keep-going     go on after a crash (libFuzzer fork mode) and collect
                   every crash input, instead of stopping at the first
  --no-build       run the targets as built (FUZZ_BIN_DIR, default
                   fuzz/target/<host>/release, or .../debug with --dev)
  -h, --help       show this help

Without targets, runs every target. The exit status is non-zero if a target
crashed (panic, timeout, out of memory) or did not run.
USAGE
}

time_s=60
jobs=1
keep_going=0
profile=release
build=1
cmd=run
targets=()
while [ $# -gt 0 ]; do
    case $1 in
    --time)
        time_s=${2:?--time needs a value}
        shift
        ;;
    --time=*) time_s=${1#--time=} ;;
    --jobs)
        jobs=${2:?--jobs needs a value}
        shift
        ;;
    --jobs=*) jobs=${1#--jobs=} ;;
    --quick)
        time_s=5
        profile=debug
        ;;
    --dev) profile=debug ;;
    --keep-going) keep_going=1 ;;
    --no-build) build=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    seed | build | list) cmd=$1 ;;
    -*)
        echo "fuzz.sh: unknown option: $1" >&2
        usage >&2
        exit 2
        ;;
    *) targets+=("$1") ;;
    esac
    shift
done

# The repository root, whatever the working directory.
src=${BASH_SOURCE[0]}
case $src in
*/*) cd "${src%/*}/.." ;;
*) cd .. ;;
esac
root=$PWD
fuzz_target=$root/fuzz/target

all_targets=(rtmp amf flv codec ts_demux mpegts_udp srt config http peer)
if [ "${#targets[@]}" -eq 0 ]; then
    targets=("${all_targets[@]}")
fi

if [ "$cmd" = list ]; then
    printf '%s\n' "${all_targets[@]}"
    exit 0
fi
if [ "$cmd" = seed ]; then
    rm -rf fuzz/corpus
    exec python3 fuzz/seeds.py fuzz/corpus
fi

if [ "$build" -eq 1 ] || [ "$cmd" = build ]; then
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "+ cargo install cargo-fuzz --locked"
        cargo install cargo-fuzz --locked
    fi
    # One cargo invocation for all targets (they share the build).
    flags=(--sanitizer none)
    [ "$profile" = debug ] && flags+=(--dev)
    # Its own target directory, whatever CARGO_TARGET_DIR says: the
    # instrumented build shares nothing with the workspace's.
    echo "+ (cd fuzz && CARGO_TARGET_DIR=$fuzz_target cargo fuzz build ${flags[*]})"
    (cd fuzz && CARGO_TARGET_DIR="$fuzz_target" cargo fuzz build "${flags[@]}")
fi
if [ "$cmd" = build ]; then
    exit 0
fi
host=$(rustc -vV | sed -n 's/^host: //p')
bindir=${FUZZ_BIN_DIR:-$fuzz_target/$host/$profile}

if [ ! -d fuzz/corpus ]; then
    python3 fuzz/seeds.py fuzz/corpus
fi

logs=fuzz/logs
mkdir -p "$logs"

# Runs one target; its libFuzzer output goes to fuzz/logs/<target>.log.
run_one() {
    local t=$1
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    local before
    before=$(find "fuzz/artifacts/$t" -type f | wc -l)
    local start end rc=0
    start=$(date +%s)
    local extra=()
    if [ "$keep_going" -eq 1 ]; then
        extra=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    (cd fuzz && nice "$bindir/$t" "corpus/$t" -max_total_time="$time_s" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" "${extra[@]}") >"$logs/$t.log" 2>&1 || rc=$?
    end=$(date +%s)
    local after
    after=$(find "fuzz/artifacts/$t" -type f | wc -l)
    echo "$t $((end - start)) $rc $((after - before))" >"$logs/$t.result"
}

for t in "${targets[@]}"; do
    rm -f "$logs/$t.result"
done
running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait || true

# The table, from each log's final statistics.
failed=0
printf '\n%-11s %8s %12s %9s %7s %8s %7s %8s\n' target seconds execs exec/s cov ft corpus crashes
for t in "${targets[@]}"; do
    log=$logs/$t.log
    if [ ! -f "$logs/$t.result" ]; then
        printf '%-11s did not run\n' "$t"
        failed=1
        continue
    fi
    read -r _ secs rc new <"$logs/$t.result"
    # libFuzzer's final statistics; in fork mode, its last status line.
    last=$(grep -E '^#[0-9]+' "$log" | grep ' cov: ' | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    if [ -z "$rate" ] && [ -n "$execs" ] && [ "$secs" -gt 0 ]; then
        rate=$((execs / secs))
    fi
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    printf '%-11s %8s %12s %9s %7s %8s %7s %8s\n' "$t" "$secs" "${execs:--}" "${rate:--}" "${cov:--}" \
        "${ft:--}" "${corp:--}" "$new"
    if [ "$rc" -ne 0 ] || [ "$new" -ne 0 ]; then
        failed=1
        echo "  $t: exit status $rc; see $log" >&2
        grep -E "panicked at|==[0-9]+== ERROR|deadly signal|Test unit written to" "$log" | head -n 5 | sed 's/^/    /' >&2 || true
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: a target crashed or did not run (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
