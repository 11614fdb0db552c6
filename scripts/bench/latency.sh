#!/usr/bin/env bash
# Ingest-to-available latency: from the last byte of the frame that completes a part
# (the first frame of the next part: the packager cannot close a part before it) being
# written to the RTMP socket, to the response head of a held request for that part
# (the preload-hinted part, answered the moment the part is complete), and of the
# blocking playlist request for the same point.
#
#   scripts/bench/latency.sh             4 streams, 60 s window, 2 runs
#   QUICK=1 scripts/bench/latency.sh     2 streams, 15 s, 1 run
#
# The publisher is lsbench's own RTMP client (scripts/bench/held), which paces the cached
# 720p30 file's FLV tags in real time and records each video frame's send time; the part's
# tfdt + sample durations name the completing frame exactly. Requests sent after their
# part was already complete are excluded (they measure the client, not the server).
#
# Env: STREAMS, WINDOW, WARMUP, RUNS, CARGO_TARGET_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
    STREAMS=${STREAMS:-2}; WINDOW=${WINDOW:-15}; WARMUP=${WARMUP:-8}; RUNS=${RUNS:-1}
else
    STREAMS=${STREAMS:-4}; WINDOW=${WINDOW:-60}; WARMUP=${WARMUP:-10}; RUNS=${RUNS:-2}
fi

need ffmpeg:ffmpeg curl:curl
ensure_media
build_lockstep
build_lsbench
machine_line

summaries=()
for r in $(seq "$RUNS"); do
    start_lockstep
    log "run $r: $STREAMS streams"
    "$LSBENCH" run --rtmp "127.0.0.1:$LOCKSTEP_RTMP" --http "127.0.0.1:$LOCKSTEP_HTTP" --streams "$STREAMS" \
        --warmup "$WARMUP" --duration "$WINDOW" | tee "$WORK/latency-$r.txt"
    summaries+=("$(grep '^SUMMARY' "$WORK/latency-$r.txt")")
    stop_all
    sleep 1
done
echo
printf '%s\n' "${summaries[@]}"
for k in part_p50 part_p99; do
    printf '%s median over runs: %s ms\n' "$k" \
        "$(printf '%s\n' "${summaries[@]}" | sed -n "s/.* $k=\([^ ]*\).*/\1/p" | median)"
done
