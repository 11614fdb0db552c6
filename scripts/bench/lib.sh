# Shared helpers for scripts/bench/*.sh (sourced, not run).
#
# Every process a script starts is recorded with `track PID` and stopped by PID
# on exit (TERM, then KILL after 5 s); nothing is ever killed by name.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
WORK=${BENCH_WORK:-/tmp/lockstep-bench}
MEDIA=$WORK/test.flv
LOCKSTEP_RTMP=${BENCH_LOCKSTEP_RTMP:-19350}
LOCKSTEP_HTTP=${BENCH_LOCKSTEP_HTTP:-13333}
NGINX_RTMP=${BENCH_NGINX_RTMP:-19351}
NGINX_HTTP=${BENCH_NGINX_HTTP:-18080}
export BENCH_LOCKSTEP_RTMP=$LOCKSTEP_RTMP BENCH_LOCKSTEP_HTTP=$LOCKSTEP_HTTP
CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$WORK"

PIDS=()
track() { PIDS+=("$@"); }

stop_pid() {
    local p=$1
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$p" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
}

# Stop every tracked process, newest first.
stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}"
    done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# Install the benchmark's peers from apt if a command is missing.
need() {
    local missing=()
    for spec in "$@"; do
        local cmd=${spec%%:*} pkg=${spec#*:}
        if [ "$cmd" = nginx-rtmp ]; then
            [ -f /usr/lib/nginx/modules/ngx_rtmp_module.so ] || missing+=("$pkg")
        elif ! command -v "$cmd" >/dev/null 2>&1; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} from apt"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# The test input: 60 s of 1280x720 30 fps H.264 (~2.9 Mb/s, 2 s GOP, no B-frames) + 128 kb/s
# AAC, in FLV. Encoded once and cached; noise keeps the encoder at its bitrate.
ensure_media() {
    [ -s "$MEDIA" ] && return 0
    need ffmpeg:ffmpeg
    log "encoding $MEDIA (once, about a minute)"
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
        -vf noise=alls=12:allf=t -c:v libx264 -preset veryfast -tune zerolatency \
        -b:v 2900k -maxrate 3000k -bufsize 3000k -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
        -c:a aac -b:a 128k -ar 48000 -f flv "$MEDIA.tmp" && mv "$MEDIA.tmp" "$MEDIA"
}

# LOCKSTEP_BIN=path runs that binary instead of building this tree.
build_lockstep() {
    if [ -n "${LOCKSTEP_BIN:-}" ]; then
        LOCKSTEP=$LOCKSTEP_BIN
        log "using $LOCKSTEP (LOCKSTEP_BIN)"
        return 0
    fi
    log "building lockstep (release, CARGO_TARGET_DIR=$TARGET)"
    (cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release --quiet --bin lockstep)
    LOCKSTEP=$TARGET/release/lockstep
}

build_lsbench() {
    log "building scripts/bench/held (lsbench)"
    CARGO_TARGET_DIR=$TARGET/lsbench cargo build --release --quiet --manifest-path "$BENCH_DIR/held/Cargo.toml"
    LSBENCH=$TARGET/lsbench/release/lsbench
}

raise_nofile() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
}

wait_http() { # URL [seconds]
    local url=$1 t=${2:-20}
    for _ in $(seq $((t * 10))); do
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    echo "no answer from $url" >&2
    return 1
}

# Start Lockstep with the bench configuration; sets LOCKSTEP_PID.
start_lockstep() {
    raise_nofile
    RUST_LOG=${BENCH_RUST_LOG:-info,lockstep::ingest::session=debug} \
        "$LOCKSTEP" --config "$BENCH_DIR/lockstep-bench.xml" >"$WORK/lockstep.log" 2>&1 &
    LOCKSTEP_PID=$!
    track "$LOCKSTEP_PID"
    wait_http "http://127.0.0.1:$LOCKSTEP_HTTP/"
}

# nginx (+ rtmp module) with its own prefix under $WORK/nginx; sets NGINX_PID (master).
# $1 = worker_processes, $2 = rtmp|http|both.
start_nginx() {
    local workers=$1 mode=$2 dir=$WORK/nginx
    rm -rf "$dir" && mkdir -p "$dir/logs" "$dir/www"
    mkdir -p /dev/shm/lockstep-bench-hls && rm -rf /dev/shm/lockstep-bench-hls/*
    {
        echo "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;"
        echo "user root; worker_processes $workers; pid $dir/nginx.pid; error_log $dir/logs/error.log warn;"
        echo "worker_rlimit_nofile 65536; events { worker_connections 20000; }"
        if [ "$mode" != http ]; then
            cat <<RTMP
rtmp { server { listen 127.0.0.1:$NGINX_RTMP; chunk_size 4096;
  application app { live on; record off; hls on; hls_path /dev/shm/lockstep-bench-hls;
    hls_fragment 2s; hls_playlist_length 20s; hls_nested on; } } }
RTMP
        fi
        cat <<HTTP
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 60s;
  open_file_cache max=1000 inactive=60s; types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp2t ts; }
  server { listen 127.0.0.1:$NGINX_HTTP; root $dir/www; } }
HTTP
    } >"$dir/nginx.conf"
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
    NGINX_PID=$!
    track "$NGINX_PID"
    wait_http "http://127.0.0.1:$NGINX_HTTP/"
}

# PIDs of a process and its direct children (nginx master + workers).
with_children() { echo "$1" $(pgrep -P "$1" || true); }

# utime+stime clock ticks, summed over PIDs.
cpu_ticks() {
    local sum=0 p t
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        # After the ")" that ends comm, utime and stime are the 12th and 13th fields.
        t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
        sum=$((sum + ${t:-0}))
    done
    echo "$sum"
}

# RSS in KiB, summed over PIDs.
rss_kib() {
    local sum=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

machine_line() {
    echo "machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB, load avg at start $(cut -d' ' -f1-3 /proc/loadavg)"
}
