#!/usr/bin/env bash
# HTTP delivery: wrk against a part, a segment and a media playlist of a live Lockstep
# stream vs nginx serving the same bytes from files (tmpfs), in the same run, alternating.
#
#   scripts/bench/serve.sh               3 rounds x 3 objects x 2 servers x 10 s
#   QUICK=1 scripts/bench/serve.sh       1 round of 5 s
#
# Env: ROUNDS, DURATION (s per wrk run), CONNS (64), THREADS (2), CARGO_TARGET_DIR.
#
# wrk, Lockstep and nginx share the machine's 2 cores: wrk's 2 threads compete with the
# server under test, equally for both servers (nginx runs 2 workers, Lockstep's runtime 2
# threads). The stream is live (publisher connected) but its media is paused after 12 s
# (application "paused": no silence timeout), so the part and segment stay published for
# the whole run; with flowing media they would leave the window (a part in ~20 s).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${QUICK:-0}" = 1 ]; then ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-5}; else ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10}; fi
CONNS=${CONNS:-64}; THREADS=${THREADS:-2}

need wrk:wrk nginx:nginx ffmpeg:ffmpeg curl:curl
ensure_media
build_lockstep
build_lsbench
machine_line

start_lockstep
"$LSBENCH" publish --rtmp "127.0.0.1:$LOCKSTEP_RTMP" --app paused --prefix s --streams 1 \
    --pause-after 12 --duration 100000 --quiet >"$WORK/publish.log" 2>&1 &
track $!
log "publishing 12 s of media to /paused/s0, then holding the stream open"
sleep 15
base="http://127.0.0.1:$LOCKSTEP_HTTP/paused/s0"
pl=$(curl -sf "$base/video1.m3u8")
part=$(printf '%s\n' "$pl" | grep '^#EXT-X-PART:' | tail -1 | sed 's/.*URI="\([^"]*\)".*/\1/')
seg=$(printf '%s\n' "$pl" | grep -v '^#' | grep -v '^$' | tail -1)
objs=("$part" "$seg" video1.m3u8)
start_nginx 2 http
mkdir -p "$WORK/nginx/www/paused/s0"
for o in "${objs[@]}"; do
    curl -sf -o "$WORK/nginx/www/paused/s0/$o" "$base/$o"
    if ! curl -sf "http://127.0.0.1:$NGINX_HTTP/paused/s0/$o" | cmp -s - "$WORK/nginx/www/paused/s0/$o"; then
        echo "nginx does not serve the same bytes for $o" >&2; exit 1
    fi
done

run_wrk() { # URL → "req/s non2xx"
    local out
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$1" 2>&1)
    printf '%s\n' "$out" >>"$WORK/wrk.log"
    awk '/^Requests\/sec:/{r=$2} /Non-2xx/{e=$NF} END{printf "%s %d\n", r, e+0}' <<<"$out"
}

declare -A L N
for r in $(seq "$ROUNDS"); do
    for o in "${objs[@]}"; do
        # Alternate which server goes first, so that drift in background load hits both.
        if [ $((r % 2)) = 1 ]; then order="l n"; else order="n l"; fi
        for s in $order; do
            if [ "$s" = l ]; then url="$base/$o"; else url="http://127.0.0.1:$NGINX_HTTP/paused/s0/$o"; fi
            read -r rps bad < <(run_wrk "$url")
            [ "$bad" -gt 0 ] && log "WARNING: $bad non-2xx responses from $url"
            if [ "$s" = l ]; then L[$o]+="$rps "; else N[$o]+="$rps "; fi
            log "round $r $o $s: $rps req/s"
        done
    done
done

echo
echo "Serving: wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS round(s), Lockstep and nginx back to back per object (order alternating by round)."
echo
echo "| object | bytes | Lockstep req/s median (rounds) | nginx req/s median (rounds) | ratio L/N per round | ratio median | Lockstep MiB/s |"
echo "|---|---|---|---|---|---|---|"
for o in "${objs[@]}"; do
    size=$(stat -c %s "$WORK/nginx/www/paused/s0/$o")
    ml=$(printf '%s\n' ${L[$o]} | median); mn=$(printf '%s\n' ${N[$o]} | median)
    ratios=$(paste <(printf '%s\n' ${L[$o]}) <(printf '%s\n' ${N[$o]}) | awk '{printf "%.2f\n", $1/$2}')
    rm_=$(printf '%s\n' $ratios | median)
    awk -v o="$o" -v s="$size" -v ml="$ml" -v mn="$mn" -v al="${L[$o]% }" -v an="${N[$o]% }" -v r="$(echo $ratios)" -v rm="$rm_" 'BEGIN{
        printf "| %s | %d | %.0f (%s) | %.0f (%s) | %s | **%.2f** | %.0f |\n", o, s, ml, al, mn, an, r, rm, ml*s/1048576 }'
done
