#!/usr/bin/env bash
# Scale: the largest number of concurrent real-time 3 Mb/s streams (720p30 H.264 + AAC)
# that Lockstep ingests over RTMP and packages (LL-HLS + HLS) on this machine, stepping N up.
#
#   scripts/bench/scale.sh [N ...]       default steps 16 32 64 96 128 192 256 384 (stops at the first failure)
#   QUICK=1 scripts/bench/scale.sh       steps 4 8, short windows
#
# A step passes when, over the window, for every stream:
#   - its parts advance in real time: media seconds published per wall second >= 0.98
#     (from the prober's parts: part-end DTS vs arrival time);
#   - its parts are on time: per-stream p99 of ingest-to-available (completing frame sent
#     → hinted-part response) <= ON_TIME_MS (100);
#   - the publisher never ran more than 100 ms behind real time (RTMP back-pressure);
# and the log has no packager warning and no dropped sample (logged at debug, enabled here).
# The publishers are lsbench's RTMP clients (one process; ffmpeg per stream would cost more
# than the server). Memory per stream = (RSS at the end of the window − RSS before any
# publisher) / N.
#
# Env: WARMUP, WINDOW, ON_TIME_MS, CARGO_TARGET_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
    STEPS=${*:-4 8}; WARMUP=${WARMUP:-8}; WINDOW=${WINDOW:-8}
else
    STEPS=${*:-16 32 64 96 128 192 256 384}; WARMUP=${WARMUP:-12}; WINDOW=${WINDOW:-15}
fi
ON_TIME_MS=${ON_TIME_MS:-100}

need ffmpeg:ffmpeg curl:curl
ensure_media
build_lockstep
build_lsbench
raise_nofile
machine_line

rows=(); best=0
for n in $STEPS; do
    start_lockstep
    rss0=$(rss_kib "$LOCKSTEP_PID"); c0=$(cpu_ticks "$LOCKSTEP_PID"); t0=$(date +%s.%N)
    log "N=$n"
    out=$("$LSBENCH" run --rtmp "127.0.0.1:$LOCKSTEP_RTMP" --http "127.0.0.1:$LOCKSTEP_HTTP" --streams "$n" \
        --warmup "$WARMUP" --duration "$WINDOW" --quiet 2>&1 | tee "$WORK/scale-$n.txt" | grep '^SUMMARY' || true)
    rss1=$(rss_kib "$LOCKSTEP_PID"); c1=$(cpu_ticks "$LOCKSTEP_PID"); t1=$(date +%s.%N)
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
    rate=$(get rate_min); p99=$(get worst_stream_p99); lag=$(get lag_max); errs=$(get errors)
    pwarn=$(grep 'WARN' "$WORK/lockstep.log" | grep -c 'packager' || true)
    drops=$(grep -c 'DroppedSample' "$WORK/lockstep.log" || true)
    cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.0f", (b-a)/hz/(t1-t0)*100}')
    verdict=$(awk -v r="${rate:-0}" -v p="${p99:-1e9}" -v l="${lag:-1e9}" -v e="${errs:-1}" -v w="$pwarn" -v d="$drops" -v lim="$ON_TIME_MS" \
        'BEGIN{print (r>=0.98 && p<=lim && l<=100 && e==0 && w==0 && d==0) ? "OK" : "FAIL"}')
    row=$(awk -v n="$n" -v r="$rate" -v p="$p99" -v l="$lag" -v e="$errs" -v w="$pwarn" -v d="$drops" -v cpu="$cpu" \
        -v m0="$rss0" -v m1="$rss1" -v v="$verdict" \
        'BEGIN{printf "| %d | %s | %s | %s | %s | %s/%s | %s %% | %.1f | %.2f | **%s** |", n, r, p, l, e, w, d, cpu, m1/1024, (m1-m0)/1024/n, v}')
    rows+=("$row"); log "$row"
    stop_all
    sleep 1
    [ "$verdict" = OK ] || break
    best=$n
done
echo
echo "Scale: lsbench publishers (real time, 720p30 ~3 Mb/s + AAC), Lockstep LL-HLS + HLS, warm-up ${WARMUP}s, window ${WINDOW}s."
echo
echo "| N | min media s / wall s | worst per-stream p99 ingest→available (ms) | publisher max lag (ms) | HTTP errors | packager WARN / dropped samples | Lockstep CPU (of 200 %) | RSS MiB | MiB / stream | verdict |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "largest passing N: $best"
