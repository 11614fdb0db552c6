#!/usr/bin/env bash
# Soak test of a Lockstep redundant pair (not run in CI).
#
# For --minutes (default 30) it runs, on loopback:
#   - a main and a backup node, configured from conf/main.xml and conf/backup.xml (ports
#     moved to a free range, everything else as shipped);
#   - nginx in front as the CDN, configured from conf/cdn/nginx.conf (upstreams and port
#     moved likewise);
#   - --streams (default 20) ffmpeg encoders, each pushing one stream to both nodes through
#     the tee muxer (onfail=ignore), a short test pattern encoded once and looped with
#     -stream_loop -1 -re -c copy; an encoder that exits or loses one of its two outputs is
#     restarted, and counted;
#   - --held (default 5000) LL-HLS blocking playlist requests (`lsbench hold`, from
#     scripts/bench/held): half through the CDN, a quarter at each node directly; each one
#     re-issued for the next hinted part as soon as it is answered, for the whole run;
#   - `lockstep verify` on one stream after another (20 s each, a new one every 30 s):
#     both nodes must serve byte-identical playlists and objects.
# Every ~30 s it samples from /proc the RSS and CPU of each node, of nginx, of the encoders
# and of the held-request client, and the machine's own load.
#
# It reports errors (held-request failures and non-200 answers, encoder restarts, ERROR and
# WARN lines in the nodes' logs, nginx [error]/[crit]/[alert]/[emerg] lines, verify
# request errors), lockstep differences, the RSS table (also written as CSV) and CPU use.
# RSS is judged flat when, for each node, the mean of the last 20 % of the run exceeds the
# mean of the 20 %-40 % window by at most --tolerance percent (default 5) or 8 MiB,
# whichever is larger. The first 20 % are left out: the live windows fill (~1 min) and the
# allocator's arenas grow for several minutes under this load. The slope of a linear fit
# from 20 % on is printed too.
#
# Exit status: 0 when there were no errors, no differences and both nodes' RSS was flat;
# 1 otherwise; 2 on a usage or set-up error; 130/143 when interrupted (after the report).
# Every process it starts is stopped by its PID on exit, Ctrl-C included.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/soak.sh [options]

  --minutes N      how long to run, after set-up (default 30)
  --streams N      live streams, one ffmpeg encoder each (default 20)
  --held N         held blocking playlist requests (default 5000)
  --interval S     seconds between RSS/CPU samples (default 30)
  --tolerance P    RSS growth allowed, percent (default 5; at least 8 MiB)
  --port-base P    first of the 21 ports used (default 24000): main P..P+3,
                   backup P+10..P+13, CDN P+20
  --csv FILE       also write the RSS/CPU samples here (always in the work directory)
  --no-build       use the existing release binaries (no cargo build)
  -h, --help       show this help

Installs nginx, ffmpeg and curl from apt when missing (needs root or sudo).
Logs and samples stay in /dev/shm/lockstep-soak.XXXXXX (or $SOAK_TMPDIR, else /tmp;
printed at the end); the CDN's cache there is removed on exit.
EOF
}

minutes=30
streams=20
held=5000
interval=30
tolerance=5
port_base=24000
csv_out=
build=1
while [ $# -gt 0 ]; do
    case $1 in
    --minutes | --streams | --held | --interval | --tolerance | --port-base)
        if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
            echo "soak.sh: $1 needs a number" >&2
            exit 2
        fi
        case $1 in
        --minutes) minutes=$2 ;;
        --streams) streams=$2 ;;
        --held) held=$2 ;;
        --interval) interval=$2 ;;
        --tolerance) tolerance=$2 ;;
        --port-base) port_base=$2 ;;
        esac
        shift 2
        ;;
    --csv)
        [ $# -ge 2 ] || {
            echo "soak.sh: --csv needs a file" >&2
            exit 2
        }
        csv_out=$2
        shift 2
        ;;
    --no-build)
        build=0
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "soak.sh: unknown option: $1" >&2
        usage >&2
        exit 2
        ;;
    esac
done
[[ $streams =~ ^[0-9]+$ && $held =~ ^[0-9]+$ && $port_base =~ ^[0-9]+$ ]] || {
    echo "soak.sh: --streams, --held and --port-base are whole numbers" >&2
    exit 2
}
[ "$streams" -ge 1 ] || {
    echo "soak.sh: --streams must be at least 1" >&2
    exit 2
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-$root/target}
lockstep=$target/release/lockstep
lsbench=$target/lsbench/release/lsbench
media_dir=/tmp/lockstep-soak-media
media=$media_dir/pattern-64s.flv
clk_tck=$(getconf CLK_TCK)

say() {
    printf '[soak %s] %s\n' "$(date +%T)" "$*"
}

# ------------------------------------------------------------ processes ---
# Every process started, by PID; stopped newest first on exit.
pids=()
names=()
workdir=
sleeper=
interrupted=0

stop_pid() { # PID NAME
    local p=$1 n=0
    kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null || true
    while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if kill -0 "$p" 2>/dev/null; then
        say "$2 (pid $p) did not stop within 5 s: SIGKILL"
        kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local status=$?
    trap - INT TERM EXIT
    local i
    if [ -n "$sleeper" ]; then
        kill "$sleeper" 2>/dev/null || true
    fi
    # TERM to all first (in parallel they stop faster), then wait for each.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
    done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_pid "${pids[i]}" "${names[i]}"
    done
    if [ -n "$workdir" ]; then
        rm -rf "$workdir/cdn/cache"
        say "logs and samples kept in $workdir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'interrupted=130' INT
trap 'interrupted=143' TERM

started() { # NAME PID
    names+=("$1")
    pids+=("$2")
}

# Replace the PID recorded for NAME (a restarted encoder).
restarted() { # NAME PID
    local i
    for i in "${!names[@]}"; do
        if [ "${names[i]}" = "$1" ]; then
            pids[i]=$2
            return 0
        fi
    done
    started "$1" "$2"
}

# Sleep that a signal interrupts at once.
pause() {
    sleep "$1" &
    sleeper=$!
    wait "$sleeper" 2>/dev/null || true
    sleeper=
}

fail_setup() {
    echo "soak.sh: $*" >&2
    exit 2
}

# ------------------------------------------------------------ dependencies ---
as_root=()
if [ "$EUID" -ne 0 ]; then
    as_root=(sudo)
fi
apt_updated=0
need() { # COMMAND PACKAGE
    if command -v "$1" >/dev/null 2>&1; then
        return 0
    fi
    if [ "$EUID" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        fail_setup "$1 is missing; install the $2 package (needs root)"
    fi
    say "installing $2 from apt"
    if [ $apt_updated -eq 0 ]; then
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        apt_updated=1
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
PATH=$PATH:/usr/sbin
need ffmpeg ffmpeg
need nginx nginx
need curl curl

# Each held request is a connection (and the CDN's half another one upstream now and then).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((held + 1000)) ]; then
    fail_setup "open files limit $(ulimit -n) is too low for $held held requests (raise the hard limit)"
fi

port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
main_rtmp=$port_base main_srt=$((port_base + 1)) main_ts=$((port_base + 2)) main_http=$((port_base + 3))
backup_rtmp=$((port_base + 10)) backup_srt=$((port_base + 11)) backup_ts=$((port_base + 12))
backup_http=$((port_base + 13))
cdn_port=$((port_base + 20))
for port in $main_rtmp $main_http $backup_rtmp $backup_http $cdn_port; do
    port_busy "$port" && fail_setup "TCP port $port is in use; choose another --port-base"
done

if [ $build -eq 1 ]; then
    say "cargo build --release (lockstep)"
    (CARGO_TARGET_DIR=$target cargo build --release --quiet --bin lockstep)
    say "cargo build --release (scripts/bench/held: lsbench)"
    CARGO_TARGET_DIR=$target/lsbench cargo build --release --quiet --manifest-path scripts/bench/held/Cargo.toml
fi
[ -x "$lockstep" ] || fail_setup "$lockstep not found; run without --no-build"
[ -x "$lsbench" ] || fail_setup "$lsbench not found; run without --no-build"

# The feed: 64 s of 320x240 30 fps H.264 (2 s GOP = SegmentDuration, no B-frames) + AAC,
# encoded once and cached. Looped with -c copy, so the encoders cost almost no CPU.
# -stream_loop shifts each loop by the longer track's duration: the AAC track must end exactly
# with the video, or every loop moves the keyframes off the 2 s grid (with 60 s of audio, which
# the encoder's priming makes 60.011 s, by 11 ms a loop: after ~24 loops every segment is late).
# 2,999 AAC frames of input + the 1,024 priming samples = 3,000 frames = 64.000 s.
if [ ! -s "$media" ]; then
    mkdir -p "$media_dir"
    say "encoding $media (once)"
    nice ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i testsrc2=size=320x240:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -af atrim=end_sample=3070976 -t 64 -c:v libx264 -preset veryfast -tune zerolatency -b:v 400k -g 60 -keyint_min 60 -sc_threshold 0 \
        -pix_fmt yuv420p -c:a aac -b:a 64k -ar 48000 -f flv "$media.tmp"
    mv "$media.tmp" "$media"
fi

# In memory when /dev/shm is there: on a shared machine, another job filling the disk would
# otherwise fail the CDN's cache writes (and so held requests) in the middle of the run.
work_base=${SOAK_TMPDIR:-/tmp}
if [ -z "${SOAK_TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    work_base=/dev/shm
fi
workdir=$(mktemp -d "$work_base/lockstep-soak.XXXXXX")
# nginx workers (user nobody when started as root) must reach their cache.
chmod 755 "$workdir"
mkdir -p "$workdir/cdn" "$workdir/ffmpeg" "$workdir/verify"

# ------------------------------------------------------------ configuration ---
# The shipped pair configuration with its ports moved (and bound to loopback only).
node_conf() { # SRC DEST RTMP SRT TS HTTP PEER_HTTP OLD_RTMP OLD_SRT OLD_TS OLD_HTTP OLD_PEER
    sed -e "s|<IP>\*</IP>|<IP>127.0.0.1</IP>|" \
        -e "s|<Port>$8</Port>|<Port>$3</Port>|" \
        -e "s|<Port>$9</Port>|<Port>$4</Port>|" \
        -e "s|<Port>${10}/udp</Port>|<Port>$5/udp</Port>|" \
        -e "s|<Port>${10}</Port>|<Port>$5</Port>|" \
        -e "s|<Port>${11}</Port>|<Port>$6</Port>|" \
        -e "s|http://127.0.0.1:${12}|http://127.0.0.1:$7|" \
        "$1" >"$2"
    local p
    for p in "$8" "$9" "${10}" "${11}" "${12}"; do
        if grep -q ">$p<\|>$p/udp<\|:$p<" "$2"; then
            fail_setup "port $p of $1 was not replaced in $2"
        fi
    done
}
node_conf conf/main.xml "$workdir/main.xml" "$main_rtmp" "$main_srt" "$main_ts" "$main_http" "$backup_http" \
    1935 9999 4000 3333 3334
node_conf conf/backup.xml "$workdir/backup.xml" "$backup_rtmp" "$backup_srt" "$backup_ts" "$backup_http" "$main_http" \
    1936 9998 4001 3334 3333
# The access log keeps only answers with status >= 400: 5,000 held requests make ~10,000
# answers a second, which would be gigabytes of log in half an hour.
# shellcheck disable=SC2016 # $status and $soak_failed are nginx variables
sed -e "s|127.0.0.1:3333|127.0.0.1:$main_http|" \
    -e "s|127.0.0.1:3334|127.0.0.1:$backup_http|" \
    -e "s|listen 8080;|listen 127.0.0.1:$cdn_port;|" \
    -e 's|^\( *\)access_log access.log cdn;|\1map $status $soak_failed { ~^[45] 1; default 0; }\n\1access_log access.log cdn if=$soak_failed;|' \
    conf/cdn/nginx.conf >"$workdir/cdn/nginx.conf"
# shellcheck disable=SC2016
grep -q 'if=$soak_failed' "$workdir/cdn/nginx.conf" || fail_setup "conf/cdn/nginx.conf: access_log not replaced"
grep -q "listen 127.0.0.1:$cdn_port;" "$workdir/cdn/nginx.conf" || fail_setup "conf/cdn/nginx.conf: listen not replaced"
grep -q "127.0.0.1:$backup_http backup;" "$workdir/cdn/nginx.conf" || fail_setup "conf/cdn/nginx.conf: upstream not replaced"

# ------------------------------------------------------------ start ---
wait_http() { # NAME URL SECONDS PID
    local n=0
    while ! curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null; do
        kill -0 "$4" 2>/dev/null || fail_setup "$1 exited; see $workdir"
        n=$((n + 1))
        [ $n -le $(($3 * 5)) ] || fail_setup "$1: no answer from $2 after $3 s; see $workdir"
        [ $interrupted -eq 0 ] || exit $interrupted
        sleep 0.2
    done
}

wait_listen() { # NAME PORT SECONDS PID
    local n=0
    while ! port_busy "$2"; do
        kill -0 "$4" 2>/dev/null || fail_setup "$1 exited; see $workdir"
        n=$((n + 1))
        [ $n -le $(($3 * 5)) ] || fail_setup "$1: not listening on port $2 after $3 s; see $workdir"
        [ $interrupted -eq 0 ] || exit $interrupted
        sleep 0.2
    done
}

say "work directory $workdir"
export LOCKSTEP_PAIR_SECRET=${LOCKSTEP_PAIR_SECRET:-soak-pair-secret-0123456789}
RUST_LOG=${RUST_LOG:-info} NO_COLOR=1 "$lockstep" --config "$workdir/main.xml" >"$workdir/main.log" 2>&1 &
main_pid=$!
started "main node" $main_pid
RUST_LOG=${RUST_LOG:-info} NO_COLOR=1 "$lockstep" --config "$workdir/backup.xml" >"$workdir/backup.log" 2>&1 &
backup_pid=$!
started "backup node" $backup_pid
wait_listen "main node" $main_http 20 $main_pid
wait_listen "backup node" $backup_http 20 $backup_pid
say "main node pid $main_pid (http $main_http), backup node pid $backup_pid (http $backup_http)"

nginx -c "$workdir/cdn/nginx.conf" -p "$workdir/cdn/" -e "$workdir/cdn/error.log" -g 'daemon off;' \
    >"$workdir/cdn/stdout.log" 2>&1 &
nginx_pid=$!
started "nginx CDN" $nginx_pid
wait_http "nginx CDN" "http://127.0.0.1:$cdn_port/cdn-health" 15 $nginx_pid
say "nginx CDN pid $nginx_pid (port $cdn_port)"

# One encoder per stream, teed to both nodes. -c copy needs no -flags +global_header (that
# is for encoding into the tee muxer: the FLV input already carries the sequence headers).
encoder_pid=()
encoder_restarts=0
# Per encoder: how many "Slave muxer #N failed" lines its log had (it lost a node).
tee_lost=()
start_encoder() { # INDEX
    local i=$1
    ffmpeg -nostdin -hide_banner -loglevel warning -stream_loop -1 -re -i "$media" -map 0 -c copy \
        -f tee "[f=flv:onfail=ignore]rtmp://127.0.0.1:$main_rtmp/app/s$i|[f=flv:onfail=ignore]rtmp://127.0.0.1:$backup_rtmp/app/s$i" \
        </dev/null >>"$workdir/ffmpeg/s$i.log" 2>&1 &
    encoder_pid[i]=$!
    restarted "encoder s$i" $!
}
for ((i = 0; i < streams; i++)); do
    start_encoder "$i"
    sleep 0.1
done
say "$streams encoders started"
for ((i = 0; i < streams; i++)); do
    for port in $main_http $backup_http; do
        wait_http "stream s$i on port $port" "http://127.0.0.1:$port/app/s$i/video1.m3u8" 30 "${encoder_pid[i]}"
    done
done
say "all $streams streams live on both nodes"

# Held requests: every other one through the CDN, the rest alternately at each node. The
# client runs 15 s past the end of the sampling loop, so that the last sample includes it.
run_seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
"$lsbench" hold --targets "127.0.0.1:$cdn_port,127.0.0.1:$main_http,127.0.0.1:$cdn_port,127.0.0.1:$backup_http" \
    --streams "$streams" --held "$held" --duration $((run_seconds + 15)) --report 10 --timeout 30 \
    >"$workdir/hold.log" 2>&1 &
hold_pid=$!
started "lsbench hold" $hold_pid

# ------------------------------------------------------------ sampling ---
proc_ticks() { # PID...: utime+stime, summed
    local sum=0 p t
    for p in "$@"; do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || t=0
        sum=$((sum + ${t:-0}))
    done
    echo $sum
}
proc_rss() { # PID...: VmRSS KiB, summed
    local sum=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || v=0
        sum=$((sum + ${v:-0}))
    done
    echo $sum
}
# nginx: the master and its workers (word splitting of the PID list is intended below).
nginx_pids() { echo "$nginx_pid" "$(pgrep -P "$nginx_pid" 2>/dev/null | tr '\n' ' ' || true)"; }
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }

csv=$workdir/samples.csv
echo "t_s,main_rss_kib,backup_rss_kib,main_cpu_pct,backup_cpu_pct,nginx_rss_kib,nginx_cpu_pct,encoders_cpu_pct,lsbench_cpu_pct,machine_cpu_pct,others_cpu_pct,load1,held_outstanding" >"$csv"
prev_t=
prev=()
sample() { # ELAPSED_S
    local t=$1 now_ticks
    local m_t b_t n_t e_t l_t mach idle
    m_t=$(proc_ticks $main_pid)
    b_t=$(proc_ticks $backup_pid)
    # shellcheck disable=SC2046
    n_t=$(proc_ticks $(nginx_pids))
    e_t=$(proc_ticks "${encoder_pid[@]}")
    l_t=$(proc_ticks $hold_pid)
    read -r mach idle < <(machine_ticks)
    now_ticks=$(date +%s.%N)
    local m_r b_r n_r
    m_r=$(proc_rss $main_pid)
    b_r=$(proc_rss $backup_pid)
    # shellcheck disable=SC2046
    n_r=$(proc_rss $(nginx_pids))
    local outstanding
    outstanding=$( (grep '^STAT' "$workdir/hold.log" 2>/dev/null || true) | tail -1 | sed -n 's/.*outstanding=\([0-9]*\).*/\1/p')
    if [ -n "$prev_t" ]; then
        # CPU percentages of one core over the interval; machine-wide as percent of all cores.
        local dt
        dt=$(awk -v a="$now_ticks" -v b="$prev_t" 'BEGIN { print a - b }')
        local row
        row=$(awk -v dt="$dt" -v hz="$clk_tck" -v ncpu="$(nproc)" \
            -v m="$((m_t - prev[0]))" -v b="$((b_t - prev[1]))" -v n="$((n_t - prev[2]))" \
            -v e="$((e_t - prev[3]))" -v l="$((l_t - prev[4]))" \
            -v mt="$((mach - prev[5]))" -v it="$((idle - prev[6]))" 'BEGIN {
                # A process that exited in the interval reads as 0 ticks: no negative CPU.
                if (m < 0) m = 0; if (b < 0) b = 0; if (n < 0) n = 0; if (e < 0) e = 0; if (l < 0) l = 0
                mc = (mt > 0) ? 100 * (mt - it) / mt : 0
                ours = (m + b + n + e + l) / hz / dt * 100 / ncpu
                others = mc - ours; if (others < 0) others = 0
                printf "%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f", m/hz/dt*100, b/hz/dt*100, n/hz/dt*100, e/hz/dt*100, l/hz/dt*100, mc, others
            }')
        IFS=, read -r mc bc nc ec lc machc othc <<<"$row"
        echo "$t,$m_r,$b_r,$mc,$bc,$n_r,$nc,$ec,$lc,$machc,$othc,$(cut -d' ' -f1 /proc/loadavg),${outstanding:-0}" >>"$csv"
        printf '[soak %s] t=%4ss  RSS main %7.1f MiB  backup %7.1f MiB  nginx %6.1f MiB | CPU main %5.1f%%  backup %5.1f%%  nginx %5.1f%%  encoders %5.1f%%  held client %5.1f%% | machine %5.1f%% (others %5.1f%%) load %s | held %s\n' \
            "$(date +%T)" "$t" "$(awk -v k="$m_r" 'BEGIN{print k/1024}')" "$(awk -v k="$b_r" 'BEGIN{print k/1024}')" \
            "$(awk -v k="$n_r" 'BEGIN{print k/1024}')" "$mc" "$bc" "$nc" "$ec" "$lc" "$machc" "$othc" \
            "$(cut -d' ' -f1 /proc/loadavg)" "${outstanding:-0}"
    fi
    prev=("$m_t" "$b_t" "$n_t" "$e_t" "$l_t" "$mach" "$idle")
    prev_t=$now_ticks
}

# ------------------------------------------------------------ verify ---
verify_pid=
verify_file=
verify_runs=0
verify_failed_runs=0
verify_compared=0
verify_differing=0
verify_req_errors=0
verify_next=0
verify_stream=0
verify_done() { # exit status of the finished run
    local st=$1 line c d e
    verify_runs=$((verify_runs + 1))
    line=$(grep -E '^[0-9]+ compared: ' "$verify_file" | tail -1 || true)
    c=$(sed -n 's/^\([0-9]*\) compared: .*/\1/p' <<<"$line")
    d=$(sed -n 's/.* identical, \([0-9]*\) differing.*/\1/p' <<<"$line")
    e=$(sed -n 's/^request errors: main \([0-9]*\), backup \([0-9]*\)/\1 \2/p' "$verify_file" | awk '{ s += $1 + $2 } END { print s + 0 }')
    verify_compared=$((verify_compared + ${c:-0}))
    verify_differing=$((verify_differing + ${d:-0}))
    verify_req_errors=$((verify_req_errors + ${e:-0}))
    if [ "$st" -ne 0 ]; then
        verify_failed_runs=$((verify_failed_runs + 1))
        say "verify $(basename "$verify_file" .txt): exit $st, compared ${c:-0}, differing ${d:-0}, request errors ${e:-0} (see $verify_file)"
    fi
}

# ------------------------------------------------------------ run ---
say "running for $minutes min: $streams streams, $held held requests; sampling every $interval s"
t0=$(date +%s)
end=$((t0 + run_seconds))
next_sample=$t0
sample 0
next_sample=$((t0 + interval))
while [ $interrupted -eq 0 ]; do
    now=$(date +%s)
    [ "$now" -lt $end ] || break
    # Encoders: restart any that exited, or that lost one of its two outputs (with
    # onfail=ignore the tee muxer goes on with the other node and never reconnects: a node that
    # ended the stream would not get it back).
    for ((i = 0; i < streams; i++)); do
        if ! kill -0 "${encoder_pid[i]}" 2>/dev/null; then
            wait "${encoder_pid[i]}" 2>/dev/null && st=0 || st=$?
            encoder_restarts=$((encoder_restarts + 1))
            say "encoder s$i (pid ${encoder_pid[i]}) exited with status $st: restarting (see $workdir/ffmpeg/s$i.log)"
            echo "=== restarted at $(date +%T) after exit status $st" >>"$workdir/ffmpeg/s$i.log"
            start_encoder "$i"
            continue
        fi
        lost=$(grep -c 'Slave muxer #[0-9]* failed' "$workdir/ffmpeg/s$i.log" 2>/dev/null || true)
        if [ "${lost:-0}" -gt "${tee_lost[i]:-0}" ]; then
            tee_lost[i]=$lost
            encoder_restarts=$((encoder_restarts + 1))
            say "encoder s$i (pid ${encoder_pid[i]}) lost an output: restarting it (see $workdir/ffmpeg/s$i.log)"
            stop_pid "${encoder_pid[i]}" "encoder s$i"
            echo "=== restarted at $(date +%T) after losing an output" >>"$workdir/ffmpeg/s$i.log"
            start_encoder "$i"
        fi
    done
    kill -0 $main_pid 2>/dev/null || {
        say "the main node exited"
        break
    }
    kill -0 $backup_pid 2>/dev/null || {
        say "the backup node exited"
        break
    }
    kill -0 $nginx_pid 2>/dev/null || {
        say "nginx exited"
        break
    }
    # Lockstep checks, one stream after another.
    if [ -n "$verify_pid" ] && ! kill -0 "$verify_pid" 2>/dev/null; then
        wait "$verify_pid" 2>/dev/null && st=0 || st=$?
        verify_done "$st"
        verify_pid=
    fi
    if [ -z "$verify_pid" ] && [ "$now" -ge $verify_next ] && [ $((end - now)) -gt 25 ]; then
        verify_file=$workdir/verify/$(printf '%03d' $verify_runs)-s$verify_stream.txt
        "$lockstep" verify --main "http://127.0.0.1:$main_http" --backup "http://127.0.0.1:$backup_http" \
            --stream "app/s$verify_stream" --duration 20 >"$verify_file" 2>&1 &
        verify_pid=$!
        restarted "lockstep verify" $verify_pid
        verify_stream=$(((verify_stream + 1) % streams))
        verify_next=$((now + 30))
    fi
    if [ "$now" -ge $next_sample ]; then
        sample $((now - t0))
        next_sample=$((next_sample + interval))
    fi
    pause 1
done
elapsed=$(($(date +%s) - t0))
[ "$elapsed" -gt 0 ] || elapsed=1
[ $interrupted -ne 0 ] || sample "$elapsed"
if [ -n "$verify_pid" ]; then
    # Let the last check finish (it runs 20 s at most).
    n=0
    while kill -0 "$verify_pid" 2>/dev/null && [ $n -lt 300 ] && [ $interrupted -eq 0 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if ! kill -0 "$verify_pid" 2>/dev/null; then
        wait "$verify_pid" 2>/dev/null && st=0 || st=$?
        verify_done "$st"
    fi
    verify_pid=
fi
# The held-request client ends by itself at the end of the run; give it a little time.
n=0
while kill -0 $hold_pid 2>/dev/null && [ $n -lt 900 ] && [ $interrupted -eq 0 ]; do
    sleep 0.1
    n=$((n + 1))
done
if kill -0 $hold_pid 2>/dev/null; then
    stop_pid $hold_pid "lsbench hold"
fi
wait $hold_pid 2>/dev/null && hold_status=0 || hold_status=$?

# ------------------------------------------------------------ report ---
count_lines() { # PATTERN FILE
    grep -cE "$1" "$2" 2>/dev/null || true
}
hold_summary=$(grep '^HOLD' "$workdir/hold.log" | tail -1 || true)
hold_errors=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$hold_summary")
hold_connected=$(sed -n 's/.* connected=\([0-9]*\).*/\1/p' <<<"$hold_summary")
hold_responses=$(sed -n 's/.* responses=\([0-9]*\).*/\1/p' <<<"$hold_summary")
hold_reconnects=$(sed -n 's/.* reconnects=\([0-9]*\).*/\1/p' <<<"$hold_summary")
[ -n "$hold_summary" ] || hold_errors=1
not_connected=$((held - ${hold_connected:-0}))
main_log_errors=$(count_lines ' (ERROR|WARN) ' "$workdir/main.log")
backup_log_errors=$(count_lines ' (ERROR|WARN) ' "$workdir/backup.log")
nginx_errors=$(count_lines '\[(error|crit|alert|emerg)\]' "$workdir/cdn/error.log")
cdn_failed=$(grep -c . "$workdir/cdn/access.log" 2>/dev/null || true)
errors=$((${hold_errors:-0} + not_connected + encoder_restarts + main_log_errors + backup_log_errors + nginx_errors + verify_req_errors))

echo
echo "==== Lockstep soak: $minutes min ($elapsed s measured), $streams streams, $held held requests ===="
echo "machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ { print $2 }') GiB; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| t (s) | main RSS (MiB) | backup RSS (MiB) | main CPU % | backup CPU % | nginx CPU % | encoders CPU % | held client CPU % | machine CPU % | others' CPU % | load 1m |"
echo "|------:|---------------:|-----------------:|-----------:|-------------:|------------:|---------------:|------------------:|--------------:|--------------:|--------:|"
tail -n +2 "$csv" | awk -F, '{ printf "| %d | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2/1024, $3/1024, $4, $5, $7, $8, $9, $10, $11, $12 }'
echo
# Flatness: mean of the last 20 % of the run against the 20 %-40 % window, per node.
flat=1
flat_lines=()
for col in 2 3; do
    node=$([ $col -eq 2 ] && echo main || echo backup)
    r=$(tail -n +2 "$csv" | awk -F, -v T="$elapsed" -v c=$col -v tol="$tolerance" '
        { t = $1; v = $c }
        t >= 0.2 * T && t < 0.4 * T { a += v; na++ }
        t >= 0.8 * T { b += v; nb++ }
        t >= 0.2 * T { n++; sx += t; sy += v; sxx += t * t; sxy += t * v }
        END {
            if (na == 0 || nb == 0) { print "nodata"; exit }
            ma = a / na; mb = b / nb; g = mb - ma
            allow = ma * tol / 100; if (allow < 8192) allow = 8192
            slope = (n > 1 && n * sxx - sx * sx != 0) ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0
            printf "%s %.1f %.1f %.1f %.1f %.1f %d %d\n", (g <= allow ? "flat" : "GROWING"), ma / 1024, mb / 1024, g / 1024, allow / 1024, slope * 3600 / 1024, na, nb
        }')
    if [ "$r" = nodata ]; then
        flat_lines+=("RSS $node: not enough samples to judge (run longer or sample more often)")
        flat=0
        continue
    fi
    read -r verdict ma mb g allow slope na nb <<<"$r"
    [ "$verdict" = flat ] || flat=0
    flat_lines+=("RSS $node: mean 20-40 % $ma MiB ($na samples), last 20 % $mb MiB ($nb samples): growth $g MiB, allowed $allow MiB -> $verdict (linear fit from 20 % on: $slope MiB/h)")
done
cpu_means=$(tail -n +2 "$csv" | awk -F, '{ m += $4; b += $5; n2 += $7; e += $8; l += $9; mc += $10; o += $11; ld += $12; n++ }
    END { if (n) printf "main %.1f %%, backup %.1f %%, nginx %.1f %%, encoders %.1f %%, held client %.1f %% (of one core); machine %.1f %% of all cores, of which others %.1f %%; mean load %.2f", m/n, b/n, n2/n, e/n, l/n, mc/n, o/n, ld/n }')

printf '%s\n' "${flat_lines[@]}"
echo "mean CPU: $cpu_means"
echo "held requests: $held opened, ${hold_connected:-0} connected, ${hold_responses:-0} answers, ${hold_errors:-?} errors (lsbench exit $hold_status); ${hold_reconnects:-0} reconnections on Connection: close (not errors)"
grep '^ERROR' "$workdir/hold.log" | head -20 | sed 's/^/    /' || true
echo "CDN: ${cdn_failed:-0} answers with status >= 400 in its access log"
echo "encoder restarts: $encoder_restarts"
echo "node log ERROR/WARN lines: main $main_log_errors, backup $backup_log_errors"
grep -hE ' (ERROR|WARN) ' "$workdir/main.log" "$workdir/backup.log" 2>/dev/null | head -10 | sed 's/^/    /' || true
echo "nginx error log [error]/[crit]/[alert]/[emerg] lines: $nginx_errors"
grep -E '\[(error|crit|alert|emerg)\]' "$workdir/cdn/error.log" 2>/dev/null | head -5 | sed 's/^/    /' || true
echo "lockstep verify: $verify_runs runs (20 s each, streams in turn), $verify_compared objects compared, $verify_differing differing, $verify_req_errors request errors, $verify_failed_runs runs not OK"
echo "errors: $errors; lockstep differences: $verify_differing; RSS flat: $([ $flat -eq 1 ] && echo yes || echo no)"
echo "samples: $csv"
if [ -n "$csv_out" ]; then
    cp "$csv" "$csv_out"
    echo "samples copied to $csv_out"
fi

if [ $interrupted -ne 0 ]; then
    echo "interrupted after $elapsed s"
    exit $interrupted
fi
if [ $errors -eq 0 ] && [ "$verify_differing" -eq 0 ] && [ "$verify_compared" -gt 0 ] && [ $verify_failed_runs -eq 0 ] \
    && [ $flat -eq 1 ]; then
    echo "PASS"
    exit 0
fi
echo "FAIL"
exit 1
