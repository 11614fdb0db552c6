#!/usr/bin/env bash
# Scale: the largest number of concurrent real-time 3 Mb/s streams (720p30 H.264 + AAC)
# that Lockstep ingests over RTMP and packages (LL-HLS + HLS) on this machine, stepping N up.
#
#   scripts/bench/scale.sh [N ...]       default steps 16 32 48 64 96 128 192 256 (stops at the first failure)
#   QUICK=1 scripts/bench/scale.sh       steps 4 8, short windows
#
# A step passes when, over the window, for every stream:
#   - its parts advance in real time: media seconds published per wall second >= 0.98
#     (from the prober's parts: part-end DTS vs arrival time);
#   - parts are on time: p99 over all streams' parts of ingest-to-available (completing
#     frame sent → hinted-part response) <= ON_TIME_MS (100);
#   - the publisher never ran more than MAX_LAG_MS (250) behind real time (RTMP back-pressure);
# and the log has no packager warning and no dropped sample (logged at debug, enabled here).
# A failing step is run once more before it counts as a failure: the machine is shared, and
# one stall of another job's making can fail a 20 s window.
# The publishers are lsbench's RTMP clients (one process; ffmpeg per stream would cost more
# than the server). Memory per stream = (RSS at the end of the window − RSS before any
# publisher) / N.
#
# Env: WARMUP, WINDOW, ON_TIME_MS, CARGO_TARGET_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
    STEPS=${*:-4 8}; WARMUP=${WARMUP:-8}; WINDOW=${WINDOW:-8}
else
    STEPS=${*:-16 32 48 64 96 128 192 256}; WARMUP=${WARMUP:-12}; WINDOW=${WINDOW:-20}
fi
ON_TIME_MS=${ON_TIME_MS:-100}; MAX_LAG_MS=${MAX_LAG_MS:-250}

need ffmpeg:ffmpeg curl:curl
ensure_media
build_lockstep
build_lsbench
raise_nofile
machine_line

rows=(); best=0
step() { # N → appends a row, sets verdict
    local n=$1
    start_lockstep
    rss0=$(rss_kib "$LOCKSTEP_PID"); c0=$(cpu_ticks "$LOCKSTEP_PID"); t0=$(date +%s.%N)
    log "N=$n"
    out=$("$LSBENCH" run --rtmp "127.0.0.1:$LOCKSTEP_RTMP" --http "127.0.0.1:$LOCKSTEP_HTTP" --streams "$n" \
        --warmup "$WARMUP" --duration "$WINDOW" --quiet 2>&1 | tee "$WORK/scale-$n.txt" | grep '^SUMMARY' || true)
    rss1=$(rss_kib "$LOCKSTEP_PID"); c1=$(cpu_ticks "$LOCKSTEP_PID"); t1=$(date +%s.%N)
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$out"; }
    tool=$(get tool_cpu); rate=$(get rate_min); p99=$(get part_p99); worst=$(get worst_stream_p99); lag=$(get lag_max); errs=$(get errors)
    pwarn=$(grep 'WARN' "$WORK/lockstep.log" | grep -c 'packager' || true)
    drops=$(grep -c 'DroppedSample' "$WORK/lockstep.log" || true)
    cpu=$(awk -v a="$c0" -v b="$c1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN{printf "%.0f", (b-a)/hz/(t1-t0)*100}')
    verdict=$(awk -v r="${rate:-0}" -v p="${p99:-1e9}" -v l="${lag:-1e9}" -v e="${errs:-1}" -v w="$pwarn" -v d="$drops" \
        -v lim="$ON_TIME_MS" -v ll="$MAX_LAG_MS" 'BEGIN{print (r>=0.98 && p<=lim && l<=ll && e==0 && w==0 && d==0) ? "OK" : "FAIL"}')
    row=$(awk -v n="$n" -v r="$rate" -v p="$p99" -v wp="$worst" -v l="$lag" -v e="$errs" -v w="$pwarn" -v d="$drops" -v cpu="$cpu" \
        -v m0="$rss0" -v m1="$rss1" -v v="$verdict" -v tool="$tool" \
        'BEGIN{printf "| %d | %s | %s | %s | %s | %s | %s/%s | %s %% | %s %% | %.1f | %.2f | **%s** |", n, r, p, wp, l, e, w, d, cpu, tool, m1/1024, (m1-m0)/1024/n, v}')
    rows+=("$row"); log "$row"
    stop_all
    sleep 1
}
for n in $STEPS; do
    step "$n"
    [ "$verdict" = OK ] || step "$n"
    [ "$verdict" = OK ] || break
    best=$n
done
echo
echo "Scale: lsbench publishers (real time, 720p30 ~3 Mb/s + AAC), Lockstep LL-HLS + HLS, warm-up ${WARMUP}s, window ${WINDOW}s."
echo
echo "| N | min media s / wall s | p99 ingest→available, all parts (ms) | worst stream p99 (ms) | publisher max lag (ms) | HTTP errors | packager WARN / dropped samples | Lockstep CPU (of 200 %) | lsbench CPU (of 200 %) | RSS MiB | MiB / stream | verdict |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "largest passing N: $best"
