#!/usr/bin/env bash
# A redundant pair on one host: main (conf/main.xml) and backup
# (conf/backup.xml) Lockstep nodes, an nginx CDN in front of them
# (conf/cdn/nginx.conf) and an ffmpeg test feed pushed to both at once with
# the tee muxer. Play through the CDN, kill the main, keep playing.
#
# Ctrl-C (or SIGTERM) stops every process the script started, by PID.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/demo-pair.sh [options]

  --no-build     use the existing release binary (no cargo build --release)
  -h, --help     show this help

Ports: main RTMP 1935 / SRT 9999 / MPEG-TS 4000 / HTTP 3333, backup RTMP 1936 /
SRT 9998 / MPEG-TS 4001 / HTTP 3334, CDN (nginx) 8080. They must be free.
Installs nginx and ffmpeg from apt when missing (needs root or sudo).
EOF
}

build=1
for arg in "$@"; do
    case $arg in
    --no-build) build=0 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "demo-pair.sh: unknown option: $arg" >&2
        usage >&2
        exit 2
        ;;
    esac
done

# The repository root, whatever the working directory.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
lockstep=$target/release/lockstep

say() {
    printf '[demo] %s\n' "$*"
}

# ------------------------------------------------------------ processes ---
# Every process started, by PID, stopped in reverse order on exit.
pids=()
names=()
workdir=
sleeper=

cleanup() {
    local status=$?
    trap - INT TERM EXIT
    local i
    if [ -n "$sleeper" ]; then
        kill "$sleeper" 2>/dev/null || true
    fi
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        if kill -0 "${pids[i]}" 2>/dev/null; then
            say "stopping ${names[i]} (pid ${pids[i]})"
            kill -TERM "${pids[i]}" 2>/dev/null || true
        fi
    done
    # Give each up to 5 s, then SIGKILL.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        local n=0
        while kill -0 "${pids[i]}" 2>/dev/null && [ $n -lt 50 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        if kill -0 "${pids[i]}" 2>/dev/null; then
            say "${names[i]} (pid ${pids[i]}) did not stop: SIGKILL"
            kill -KILL "${pids[i]}" 2>/dev/null || true
        fi
        wait "${pids[i]}" 2>/dev/null || true
    done
    if [ -n "$workdir" ]; then
        say "logs kept in $workdir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# started NAME PID: remember a background process.
started() {
    names+=("$1")
    pids+=("$2")
    say "started $1 (pid $2)"
}

# ------------------------------------------------------------ dependencies ---
as_root=()
if [ "$EUID" -ne 0 ]; then
    as_root=(sudo)
fi
apt_updated=0
need() {
    local tool=$1 package=$2
    if command -v "$tool" >/dev/null 2>&1; then
        return 0
    fi
    if [ "$EUID" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        echo "demo-pair.sh: $tool is missing; install the $package package (needs root)" >&2
        exit 1
    fi
    say "installing $package from apt"
    if [ $apt_updated -eq 0 ]; then
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}
need ffmpeg ffmpeg
# Debian installs nginx in /usr/sbin, which a normal user's PATH may lack.
PATH=$PATH:/usr/sbin
need nginx nginx
command -v curl >/dev/null 2>&1 || need curl curl

# Refuse to start when a port is taken (by an earlier demo, or a real server).
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for port in 1935 1936 3333 3334 8080; do
    if port_busy "$port"; then
        echo "demo-pair.sh: TCP port $port is in use; stop what listens there first" >&2
        exit 1
    fi
done

if [ $build -eq 1 ]; then
    say "cargo build --release"
    cargo build --release
fi
if [ ! -x "$lockstep" ]; then
    echo "demo-pair.sh: $lockstep not found; run without --no-build" >&2
    exit 1
fi

workdir=$(mktemp -d /tmp/lockstep-demo.XXXXXX)
# nginx workers (user nobody when started as root) must reach their cache.
chmod 755 "$workdir"
mkdir -p "$workdir/cdn"

# wait_http NAME URL SECONDS PID: until URL answers 200 (or give up).
wait_http() {
    local name=$1 url=$2 limit=$3 pid=$4 n=0
    while ! curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo-pair.sh: $name exited; see $workdir" >&2
            exit 1
        fi
        n=$((n + 1))
        if [ $n -gt $((limit * 5)) ]; then
            echo "demo-pair.sh: $name: no answer from $url after ${limit} s; see $workdir" >&2
            exit 1
        fi
        sleep 0.2
    done
}

# wait_port NAME PORT PID: until something accepts TCP connections on PORT.
wait_port() {
    local name=$1 port=$2 pid=$3 n=0
    while ! port_busy "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "demo-pair.sh: $name exited; see its log in $workdir" >&2
            exit 1
        fi
        n=$((n + 1))
        if [ $n -gt 75 ]; then
            echo "demo-pair.sh: $name does not listen on $port after 15 s; see $workdir" >&2
            exit 1
        fi
        sleep 0.2
    done
}

# ------------------------------------------------------------ the pair ---
RUST_LOG=${RUST_LOG:-info} NO_COLOR=1 "$lockstep" --config conf/main.xml >"$workdir/main.log" 2>&1 &
started "main node" $!
main_pid=$!
RUST_LOG=${RUST_LOG:-info} NO_COLOR=1 "$lockstep" --config conf/backup.xml >"$workdir/backup.log" 2>&1 &
started "backup node" $!
backup_pid=$!
wait_port "main node" 3333 "$main_pid"
wait_port "backup node" 3334 "$backup_pid"

# ------------------------------------------------------------ the CDN ---
nginx -c "$root/conf/cdn/nginx.conf" -p "$workdir/cdn/" -e "$workdir/cdn/error.log" -g 'daemon off;' \
    >"$workdir/cdn/stdout.log" 2>&1 &
started "nginx CDN" $!
nginx_pid=$!
wait_http "nginx CDN" http://127.0.0.1:8080/cdn-health 15 "$nginx_pid"

# ------------------------------------------------------------ the feed ---
# One encoder, two outputs: the tee muxer sends the same packets to both
# nodes; onfail=ignore keeps feeding the backup when the main goes away.
# Keyframe every 2 s (60 frames at 30 fps) = SegmentDuration.
# -flags +global_header is required when encoding into the tee muxer: without
# it x264 puts SPS/PPS only in-band, the FLV outputs carry no AVC sequence
# header, and the nodes see an audio-only stream.
ffmpeg -nostdin -hide_banner -loglevel warning \
    -re -f lavfi -i testsrc2=size=640x360:rate=30 \
    -re -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -map 0:v -map 1:a \
    -c:v libx264 -preset veryfast -tune zerolatency -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -b:v 800k \
    -c:a aac -b:a 96k -flags +global_header \
    -f tee "[f=flv:onfail=ignore]rtmp://127.0.0.1:1935/app/stream|[f=flv:onfail=ignore]rtmp://127.0.0.1:1936/app/stream" \
    >"$workdir/ffmpeg.log" 2>&1 &
started "ffmpeg feed" $!
ffmpeg_pid=$!
wait_http "the stream through the CDN" http://127.0.0.1:8080/app/stream/video1.m3u8 30 "$ffmpeg_pid"

cat <<EOF

==== Lockstep pair demo is running ====

Play through the CDN (nginx on 8080, main first, backup on failure):
    ffplay http://127.0.0.1:8080/app/stream/llhls.m3u8
    ffplay http://127.0.0.1:8080/app/stream/playlist.m3u8        (classic HLS)

The nodes directly:
    main    http://127.0.0.1:3333/app/stream/llhls.m3u8   (pid $main_pid)
    backup  http://127.0.0.1:3334/app/stream/llhls.m3u8   (pid $backup_pid)

Check that both serve identical bytes:
    $lockstep verify --main http://127.0.0.1:3333 --backup http://127.0.0.1:3334 --stream app/stream --duration 10

See failover: kill the main and keep playing; the CDN now answers from the backup
(X-Upstream: 127.0.0.1:3334):
    kill $main_pid
    curl -sI http://127.0.0.1:8080/app/stream/video1.m3u8 | grep -i x-upstream

Logs: $workdir (main.log, backup.log, ffmpeg.log, cdn/access.log, cdn/error.log)
Ctrl-C stops everything this script started.
EOF

# Run until interrupted. A background sleep keeps the traps responsive.
feed_reported=0
while :; do
    if [ $feed_reported -eq 0 ] && ! kill -0 "$ffmpeg_pid" 2>/dev/null; then
        say "the ffmpeg feed stopped; see $workdir/ffmpeg.log"
        feed_reported=1
    fi
    sleep 5 &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=
done
