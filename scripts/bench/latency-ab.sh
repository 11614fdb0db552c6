#!/usr/bin/env bash
# A/B of ingest-to-available latency between two Lockstep binaries, run at the same time
# (separate ports, the same lsbench load on each) so that machine noise hits both.
#
#   A=/path/to/lockstep-before B=/path/to/lockstep-after scripts/bench/latency-ab.sh
#
# Env: STREAMS (4 per server), WINDOW (60 s), WARMUP (10 s), RUNS (3).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
: "${A:?binary A}" "${B:?binary B}"
STREAMS=${STREAMS:-4}; WINDOW=${WINDOW:-60}; WARMUP=${WARMUP:-10}; RUNS=${RUNS:-3}
need ffmpeg:ffmpeg curl:curl
ensure_media
build_lsbench
machine_line
rows=()
for r in $(seq "$RUNS"); do
    RUST_LOG=info "$A" --config "$BENCH_DIR/lockstep-bench.xml" >"$WORK/lockstep-a.log" 2>&1 &
    pa=$!; track $pa
    env BENCH_LOCKSTEP_RTMP=$((LOCKSTEP_RTMP + 10)) BENCH_LOCKSTEP_HTTP=$((LOCKSTEP_HTTP + 10)) RUST_LOG=info \
        "$B" --config "$BENCH_DIR/lockstep-bench.xml" >"$WORK/lockstep-b.log" 2>&1 &
    pb=$!; track $pb
    wait_http "http://127.0.0.1:$LOCKSTEP_HTTP/"; wait_http "http://127.0.0.1:$((LOCKSTEP_HTTP + 10))/"
    "$LSBENCH" run --rtmp "127.0.0.1:$LOCKSTEP_RTMP" --http "127.0.0.1:$LOCKSTEP_HTTP" --streams "$STREAMS" \
        --warmup "$WARMUP" --duration "$WINDOW" --quiet >"$WORK/ab-a-$r.txt" 2>&1 &
    la=$!; track $la
    "$LSBENCH" run --rtmp "127.0.0.1:$((LOCKSTEP_RTMP + 10))" --http "127.0.0.1:$((LOCKSTEP_HTTP + 10))" --streams "$STREAMS" \
        --warmup "$WARMUP" --duration "$WINDOW" --quiet >"$WORK/ab-b-$r.txt" 2>&1 &
    lb=$!; track $lb
    wait $la $lb || true
    for side in a b; do
        f=$WORK/ab-$side-$r.txt
        all=$(grep 'hinted-part response' "$f" | awk -F'|' '{printf "%.3f / %.3f", $4, $5}')
        mid=$(grep 'parts inside a segment' "$f" | awk -F'|' '{printf "%.3f / %.3f", $4, $5}')
        last=$(grep 'last parts' "$f" | awk -F'|' '{printf "%.3f / %.3f", $4, $5}')
        rows+=("| $r | ${side^^} | $all | $mid | $last |")
    done
    stop_all
    sleep 1
done
echo
echo "| run | binary | all parts p50 / p99 (ms) | parts inside a segment p50 / p99 | last parts of a segment p50 / p99 |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
