#!/usr/bin/env bash
# Held blocking playlist requests: 10,000 connections over 20 live streams, each chaining
# `video1.m3u8?_HLS_msn=M&_HLS_part=P` for the hinted next part (as LL-HLS players do).
#
#   scripts/bench/held.sh                20 streams x 500 held, 30 s window, 2 runs
#   QUICK=1 scripts/bench/held.sh        10 streams x 200 held, 15 s, 1 run
#
# Method (scripts/bench/held/src/main.rs): the tool publishes the 20 streams itself over
# RTMP and notes when each video frame's last byte went into the socket. A prober per
# stream fetches each hinted part with a held request; the part's tfdt + durations give the
# DTS of the frame that completed it (the next part's first frame). Wake-up latency of a
# held request = arrival of its response head − that frame's send time (so it includes
# ingest + packaging, i.e. it is an upper bound of the wake-up itself); also given: arrival
# − the first response for the same point (the spread among the point's waiters).
# Requests sent after their point was already complete are answered at once and excluded.
# Memory per held request = (server RSS while >= 95 % are held − RSS with the streams only)
# / number held; it includes the connection (HTTP/1.1, one request per connection).
#
# Env: STREAMS, PER_STREAM, WINDOW, WARMUP, RUNS, CARGO_TARGET_DIR.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then
    STREAMS=${STREAMS:-10}; PER_STREAM=${PER_STREAM:-200}; WINDOW=${WINDOW:-15}; WARMUP=${WARMUP:-45}; RUNS=${RUNS:-1}
else
    STREAMS=${STREAMS:-20}; PER_STREAM=${PER_STREAM:-500}; WINDOW=${WINDOW:-30}; WARMUP=${WARMUP:-50}; RUNS=${RUNS:-2}
fi

need ffmpeg:ffmpeg curl:curl
ensure_media
build_lockstep
build_lsbench
raise_nofile
machine_line
echo "open files limit: $(ulimit -n)"

summaries=()
for r in $(seq "$RUNS"); do
    start_lockstep
    log "run $r: $STREAMS streams, $((STREAMS * PER_STREAM)) held requests"
    "$LSBENCH" run --rtmp "127.0.0.1:$LOCKSTEP_RTMP" --http "127.0.0.1:$LOCKSTEP_HTTP" --streams "$STREAMS" \
        --held-per-stream "$PER_STREAM" --warmup "$WARMUP" --duration "$WINDOW" --server-pid "$LOCKSTEP_PID" \
        | tee "$WORK/held-$r.txt"
    summaries+=("$(grep '^SUMMARY' "$WORK/held-$r.txt")")
    echo "Lockstep log: $(grep -c WARN "$WORK/lockstep.log" || true) WARN lines"
    stop_all
    sleep 1
done
echo
printf '%s\n' "${summaries[@]}"
