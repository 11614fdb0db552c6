#!/usr/bin/env bash
# A/B of Lockstep's ingest CPU under two environments or two binaries, run side by side with
# the same N ffmpeg pushes each (so machine noise hits both): A = plain, B = with $B_ENV;
# A_BIN / B_BIN choose the binaries (default: the release build of this tree for both).
#
#   B_ENV='GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=268435456' \
#       scripts/bench/ingest-ab.sh [N]          default N 8, 25 s warm-up, 3 x 20 s windows
#   A_BIN=/path/to/lockstep-before B_BIN=/path/to/lockstep-after scripts/bench/ingest-ab.sh
#
# Prints CPU s per stream-minute of each, the B/A ratio per window and the median.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=${1:-8}; WARMUP=${WARMUP:-25}; STEP=${STEP:-20}; SUB=${SUB:-3}
if [ -z "${A_BIN:-}${B_BIN:-}" ]; then B_ENV=${B_ENV:?set B_ENV (e.g. GLIBC_TUNABLES=...) or A_BIN/B_BIN}; fi
B_ENV=${B_ENV:-}
need ffmpeg:ffmpeg curl:curl
ensure_media
if [ -z "${A_BIN:-}" ] || [ -z "${B_BIN:-}" ]; then build_lockstep; fi
A_BIN=${A_BIN:-$LOCKSTEP}; B_BIN=${B_BIN:-$LOCKSTEP}
machine_line
raise_nofile
RUST_LOG=info "$A_BIN" --config "$BENCH_DIR/lockstep-bench.xml" >"$WORK/lockstep-a.log" 2>&1 &
A=$!; track $A
env BENCH_LOCKSTEP_RTMP=$((LOCKSTEP_RTMP + 10)) BENCH_LOCKSTEP_HTTP=$((LOCKSTEP_HTTP + 10)) $B_ENV RUST_LOG=info \
    "$B_BIN" --config "$BENCH_DIR/lockstep-bench.xml" >"$WORK/lockstep-b.log" 2>&1 &
B=$!; track $B
wait_http "http://127.0.0.1:$LOCKSTEP_HTTP/"; wait_http "http://127.0.0.1:$((LOCKSTEP_HTTP + 10))/"
for i in $(seq 0 $((N - 1))); do
    for port in "$LOCKSTEP_RTMP" $((LOCKSTEP_RTMP + 10)); do
        ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i "$MEDIA" -c copy -f flv \
            "rtmp://127.0.0.1:$port/app/s$i" >>"$WORK/ffmpeg.log" 2>&1 &
        track $!
    done
    sleep 0.05
done
log "A/B: $N pushes each; warm-up ${WARMUP}s"
sleep "$WARMUP"
a0=$(cpu_ticks $A); b0=$(cpu_ticks $B); ratios=(); ta=0; tb=0
for k in $(seq "$SUB"); do
    sleep "$STEP"
    a1=$(cpu_ticks $A); b1=$(cpu_ticks $B)
    ratios+=("$(awk -v a=$((a1 - a0)) -v b=$((b1 - b0)) 'BEGIN{printf "%.3f", b/a}')")
    ta=$((ta + a1 - a0)); tb=$((tb + b1 - b0)); a0=$a1; b0=$b1
done
sm=$(awk -v n="$N" -v t=$((SUB * STEP)) 'BEGIN{print n*t/60}')
echo "A: $A_BIN; B: $B_BIN${B_ENV:+ with $B_ENV}"
awk -v a=$ta -v b=$tb -v sm="$sm" -v hz="$CLK_TCK" -v r="${ratios[*]}" -v med="$(printf '%s\n' "${ratios[@]}" | median)" \
    -v ra="$(rss_kib $A)" -v rb="$(rss_kib $B)" 'BEGIN{
    printf "| A CPU s/stream-min | B CPU s/stream-min | B/A per window | B/A median | A RSS MiB | B RSS MiB |\n|---|---|---|---|---|---|\n";
    printf "| %.3f | %.3f | %s | %s | %.0f | %.0f |\n", a/hz/sm, b/hz/sm, r, med, ra/1024, rb/1024 }'
