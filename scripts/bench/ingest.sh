#!/usr/bin/env bash
# Ingest cost: CPU seconds per stream-minute and RSS per stream, Lockstep (LL-HLS + HLS)
# vs nginx-rtmp (HLS, 2 s fragments, hls_path on tmpfs), both fed the same file by N
# `ffmpeg -re -stream_loop -1 -i FILE -c copy -f flv` pushes each, at the same time.
#
#   scripts/bench/ingest.sh [N ...]      default: 1 8 32
#   QUICK=1 scripts/bench/ingest.sh      1 and 4 streams, 20 s window
#
# Env: WARMUP (s, default 25), WINDOW (s, default 60; split in 3 sub-windows whose
# ratios give the median), CARGO_TARGET_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
    STREAMS=${*:-1 4}; WARMUP=${WARMUP:-15}; WINDOW=${WINDOW:-21}
else
    STREAMS=${*:-1 8 32}; WARMUP=${WARMUP:-25}; WINDOW=${WINDOW:-60}
fi
SUB=3

need ffmpeg:ffmpeg nginx:nginx nginx-rtmp:libnginx-mod-rtmp
ensure_media
build_lockstep
machine_line

results=()
for n in $STREAMS; do
    log "N=$n: starting Lockstep and nginx-rtmp"
    start_lockstep
    start_nginx 1 rtmp
    ngx_pids=$(with_children "$NGINX_PID")
    sleep 2
    idle_l=$(rss_kib "$LOCKSTEP_PID"); idle_n=$(rss_kib $ngx_pids)
    pushers=()
    for i in $(seq 0 $((n - 1))); do
        for dest in "rtmp://127.0.0.1:$LOCKSTEP_RTMP/app/s$i" "rtmp://127.0.0.1:$NGINX_RTMP/app/s$i"; do
            ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i "$MEDIA" -c copy -f flv "$dest" \
                >>"$WORK/ffmpeg.log" 2>&1 &
            track $!; pushers+=($!)
        done
        sleep 0.05
    done
    log "N=$n: $((2 * n)) pushes running; warm-up ${WARMUP}s"
    sleep "$WARMUP"
    ngx_pids=$(with_children "$NGINX_PID")
    step=$((WINDOW / SUB))
    l0=$(cpu_ticks "$LOCKSTEP_PID"); n0=$(cpu_ticks $ngx_pids); t0=$(date +%s.%N)
    lt=(); nt=(); ratios=()
    for k in $(seq $SUB); do
        sleep "$step"
        l1=$(cpu_ticks "$LOCKSTEP_PID"); n1=$(cpu_ticks $ngx_pids)
        lt+=($((l1 - l0))); nt+=($((n1 - n0)))
        ratios+=("$(awk -v a=$((l1 - l0)) -v b=$((n1 - n0)) 'BEGIN{printf "%.3f", (b>0)?a/b:0}')")
        l0=$l1; n0=$n1
    done
    t1=$(date +%s.%N)
    rss_l=$(rss_kib "$LOCKSTEP_PID"); rss_n=$(rss_kib $ngx_pids)
    # nginx-rtmp keeps its HLS files in tmpfs (page cache, not its RSS): count them too.
    shm=$(du -sk /dev/shm/lockstep-bench-hls | cut -f1); rss_n=$((rss_n + shm))
    # Health: every push still running, every stream served by both.
    alive=0; for p in "${pushers[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    ok_l=0; ok_n=0
    for i in $(seq 0 $((n - 1))); do
        curl -sf -o /dev/null "http://127.0.0.1:$LOCKSTEP_HTTP/app/s$i/video1.m3u8" && ok_l=$((ok_l + 1))
        [ -s "/dev/shm/lockstep-bench-hls/s$i/index.m3u8" ] && ok_n=$((ok_n + 1))
    done
    warn=$(grep -c 'WARN' "$WORK/lockstep.log" || true)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
    sum_l=0; for x in "${lt[@]}"; do sum_l=$((sum_l + x)); done
    sum_n=0; for x in "${nt[@]}"; do sum_n=$((sum_n + x)); done
    med=$(printf '%s\n' "${ratios[@]}" | median)
    line=$(awk -v n="$n" -v l="$sum_l" -v g="$sum_n" -v w="$wall" -v hz="$CLK_TCK" -v med="$med" \
        -v rl="$rss_l" -v rn="$rss_n" -v il="$idle_l" -v iN="$idle_n" -v subs="${ratios[*]}" \
        -v okl="$ok_l" -v okn="$ok_n" -v alive="$alive" -v warn="$warn" 'BEGIN{
        sm = n * w / 60; cl = l / hz / sm; cn = g / hz / sm;
        printf "| %3d | %8.3f | %8.3f | %6.3f (%s) | %7.1f | %7.1f | %6.2f | %6.2f | %d/%d %d/%d %d/%d %s |",
          n, cl, cn, med, subs, rl/1024, rn/1024, (rl-il)/1024/n, (rn-iN)/1024/n, okl, n, okn, n, alive, 2*n, warn }')
    results+=("$line")
    log "N=$n: $line"
    stop_all
    sleep 1
done

echo
echo "Ingest: CPU seconds per stream-minute (utime+stime of the server process(es) over ${WINDOW}s of steady state),"
echo "RSS; Lockstep = LL-HLS + HLS, nginx-rtmp = HLS; same N ffmpeg -c copy pushes into each, concurrently."
echo
echo "| N | Lockstep CPU s / stream-min | nginx-rtmp CPU s / stream-min | ratio L/N, median of $SUB sub-windows (each) | Lockstep RSS MiB | nginx RSS + tmpfs files MiB | Lockstep MiB / stream | nginx MiB / stream (incl. files) | health: Lockstep streams, nginx streams, pushes alive, Lockstep WARN lines |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${results[@]}"
