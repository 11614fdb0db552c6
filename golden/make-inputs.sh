#!/usr/bin/env bash
# Regenerates the golden inputs. The committed files are the reference: a
# different ffmpeg build may produce different bytes, so run this only to
# add or deliberately replace a case (then review the snapshot changes).
set -euo pipefail
cd "$(dirname "$0")"
ff() { ffmpeg -hide_banner -loglevel error -y "$@"; }
x264="-c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p -b:v 300k"
aac="-c:a aac -b:a 64k -ar 48000 -ac 2"

# 30 fps, GOP 1 s (fixed), AAC 48 kHz stereo, 12 s, FLV (the RTMP payload format).
mkdir -p avc30_gop1
ff -f lavfi -i "testsrc2=size=320x240:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
   -t 12 $x264 -g 30 -keyint_min 30 -sc_threshold 0 -bf 2 $aac -f flv avc30_gop1/input.flv

# 29.97 fps, GOP 2 s (60 frames = 2.002 s), AAC 44.1 kHz, 16 s, MPEG-TS.
mkdir -p avc2997_gop2
ff -f lavfi -i "testsrc2=size=320x240:rate=30000/1001" -f lavfi -i "sine=frequency=330:sample_rate=44100" \
   -t 16 $x264 -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 64k -ar 44100 -ac 2 -f mpegts avc2997_gop2/input.ts

# Irregular keyframes: scene cuts on (hard hue cuts every 1.3 s) plus forced
# keyframes at irregular times, max GOP 2 s, 25 fps, 12 s, FLV.
mkdir -p scenecut
ff -f lavfi -i "testsrc2=size=320x240:rate=25,hue=H=floor(t/1.3)*2.1:s=1+mod(floor(t/1.3)\,2)" \
   -f lavfi -i "sine=frequency=550:sample_rate=48000" \
   -t 12 $x264 -g 50 -keyint_min 5 -sc_threshold 40 -force_key_frames "0,0.52,3.1,3.3,7.77" $aac \
   -f flv scenecut/input.flv

# Audio only: AAC 48 kHz stereo, 10 s, MPEG-TS.
mkdir -p audio_only
ff -f lavfi -i "sine=frequency=660:sample_rate=48000" -t 10 $aac -f mpegts audio_only/input.ts

# Video only: 30 fps, GOP 1 s, 10 s, FLV.
mkdir -p video_only
ff -f lavfi -i "testsrc2=size=320x240:rate=30" -t 10 $x264 -g 30 -keyint_min 30 -sc_threshold 0 \
   -f flv video_only/input.flv

# Timestamps far from zero: MPEG-TS starting 3.5 s before the 33-bit PTS
# wrap (2^33 / 90 kHz = 95443.717678 s), so the wrap happens mid-stream.
mkdir -p far_timestamps
ff -f lavfi -i "testsrc2=size=320x240:rate=30" -f lavfi -i "sine=frequency=770:sample_rate=48000" \
   -t 10 $x264 -g 30 -keyint_min 30 -sc_threshold 0 $aac -output_ts_offset 95440.2 \
   -f mpegts far_timestamps/input.ts

# Codec configuration changes mid-stream: two FLV pieces joined tag by tag
# (flvcat.py), so the second piece's AVC and AAC sequence headers arrive
# mid-stream as they do from an encoder that was reconfigured. 30 fps, GOP
# 1 s, 6 s each. config_change: 640x360 then 1280x720, AAC 48 kHz both
# (same AudioSpecificConfig). config_change_rate: the same video, AAC 48 kHz
# then 44.1 kHz.
mkdir -p config_change config_change_rate
piece() { # size rate out
  ff -f lavfi -i "testsrc2=size=$1:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=$2" -t 6 $x264 \
     -g 30 -keyint_min 30 -sc_threshold 0 -bf 2 -c:a aac -b:a 64k -ar "$2" -ac 2 -f flv "$3"
}
tmp=$(mktemp -d)
piece 640x360 48000 "$tmp/a.flv"
piece 1280x720 48000 "$tmp/b.flv"
piece 1280x720 44100 "$tmp/c.flv"
python3 flvcat.py config_change/input.flv "$tmp/a.flv" "$tmp/b.flv"
python3 flvcat.py config_change_rate/input.flv "$tmp/a.flv" "$tmp/c.flv"
rm -rf "$tmp"
