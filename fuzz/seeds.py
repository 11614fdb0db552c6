#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, written to fuzz/corpus/<target>/.

Cuts the golden inputs (golden/*/input.flv, golden/*/input.ts) into small
seeds, builds hand-made ones (an RTMP handshake + connect + publish + media
byte stream, AMF0 commands, SRT stream ids and handshake packets, HTTP
request lines, peer-link responses), copies conf/*.xml, and adds the crash
inputs kept under golden/fuzz-regressions/<target>/. Deterministic: the same
repository gives the same seeds. Usage: fuzz/seeds.py [OUTPUT_DIR]
"""

import glob
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "corpus")
TARGETS = ["rtmp", "amf", "flv", "codec", "ts_demux", "mpegts_udp", "srt", "config", "http", "peer"]


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ------------------------------------------------------------------ FLV ---

def flv_tags(buf):
    """[(type, timestamp_ms, body)] of an FLV file."""
    off = struct.unpack(">I", buf[5:9])[0] + 4
    tags = []
    while off + 11 <= len(buf):
        t = buf[off] & 0x1F
        size = int.from_bytes(buf[off + 1:off + 4], "big")
        ts = int.from_bytes(buf[off + 4:off + 7], "big") | (buf[off + 7] << 24)
        body = buf[off + 11:off + 11 + size]
        tags.append((t, ts, body))
        off += 11 + size + 4
    return tags


def flv_file(tags, flags=5):
    out = bytearray(b"FLV\x01" + bytes([flags]) + struct.pack(">I", 9) + b"\0\0\0\0")
    for t, ts, body in tags:
        out += bytes([t]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([ts >> 24 & 0xFF])
        out += b"\0\0\0" + body + struct.pack(">I", 11 + len(body))
    return bytes(out)


def small_tags(tags, limit, max_body=6000):
    """The first `limit` tags, video frame bodies cut to `max_body` bytes
    (the NAL length fields then overrun: the demuxer's error path)."""
    out = []
    for t, ts, body in tags[:limit]:
        out.append((t, ts, body[:max_body]))
    return out


def synthetic_tags(tags, seconds=5):
    """The golden stream's sequence headers, then `seconds` of tiny but
    well-framed media: one short NAL unit per video frame (30 fps, an IDR
    every second) and a short raw AAC frame per audio frame (1024 samples
    at 48 kHz): small seeds that still publish and package (the demuxers
    and the packager do not decode the payloads)."""
    heads = [t for t in tags[:10] if (t[0] == 9 and t[2][1:2] == b"\0") or (t[0] == 8 and t[2][1:2] == b"\0")]
    out = list(heads)
    events = []
    for i in range(seconds * 30):
        key = i % 30 == 0
        nal = bytes([0x65 if key else 0x41]) + bytes((i * 13 + k) & 0xFF for k in range(23))
        body = bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + struct.pack(">I", len(nal)) + nal
        events.append((i * 1000 // 30, 1, (9, i * 1000 // 30, body)))
    for i in range(seconds * 48000 // 1024):
        ts = i * 1024 * 1000 // 48000
        events.append((ts, 0, (8, ts, b"\xaf\x01" + bytes([0x21, 0x10, 0x05]) + bytes(12))))
    out += [e[2] for e in sorted(events, key=lambda e: (e[0], e[1]))]
    return out


def avc_nals_from_avcc(avcc):
    """SPS and PPS NAL units of an avcC record."""
    nals = []
    n = avcc[5] & 0x1F
    p = 6
    for _ in range(n):
        ln = struct.unpack(">H", avcc[p:p + 2])[0]
        nals.append(avcc[p + 2:p + 2 + ln])
        p += 2 + ln
    m = avcc[p]
    p += 1
    for _ in range(m):
        ln = struct.unpack(">H", avcc[p:p + 2])[0]
        nals.append(avcc[p + 2:p + 2 + ln])
        p += 2 + ln
    return nals


# ------------------------------------------------------------------ AMF ---

def amf_str(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_num(x):
    return b"\x00" + struct.pack(">d", x)


def amf_obj(props):
    out = b"\x03"
    for k, v in props:
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + v
    return out + b"\x00\x00\x09"


def amf_ecma(props):
    out = b"\x08" + struct.pack(">I", len(props))
    for k, v in props:
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + v
    return out + b"\x00\x00\x09"


NULL = b"\x05"


def command(name, tx, obj, *args):
    return amf_str(name) + amf_num(tx) + obj + b"".join(args)


CONNECT = command("connect", 1, amf_obj([
    ("app", amf_str("app")), ("type", amf_str("nonprivate")), ("flashVer", amf_str("FMLE/3.0")),
    ("tcUrl", amf_str("rtmp://127.0.0.1:1935/app")),
]))
RELEASE = command("releaseStream", 2, NULL, amf_str("stream"))
FCPUBLISH = command("FCPublish", 3, NULL, amf_str("stream"))
CREATE = command("createStream", 4, NULL)
PUBLISH = command("publish", 5, NULL, amf_str("stream?key=x"), amf_str("live"))
FCUNPUBLISH = command("FCUnpublish", 6, NULL, amf_str("stream"))
DELETE = command("deleteStream", 7, NULL, amf_num(1))
PLAY = command("play", 5, NULL, amf_str("stream"))


# ----------------------------------------------------------------- RTMP ---

def chunks(csid, type_id, stream_id, ts, payload, chunk_size):
    """One message as a type 0 chunk and type 3 continuations."""
    ext = ts >= 0xFFFFFF
    head = bytes([csid]) + (0xFFFFFF if ext else ts).to_bytes(3, "big") + len(payload).to_bytes(3, "big")
    head += bytes([type_id]) + struct.pack("<I", stream_id)
    if ext:
        head += struct.pack(">I", ts)
    out = bytearray(head)
    out += payload[:chunk_size]
    p = chunk_size
    while p < len(payload):
        out += bytes([0xC0 | csid]) + (struct.pack(">I", ts) if ext else b"")
        out += payload[p:p + chunk_size]
        p += chunk_size
    return bytes(out)


def handshake():
    c1 = struct.pack(">II", 0, 0) + bytes((i * 7 + 3) & 0xFF for i in range(1528))
    c2 = bytes(1536)
    return b"\x03" + c1 + c2


def rtmp_session(tags, chunk_size=4096, tail=b""):
    out = bytearray()
    out += chunks(2, 1, 0, 0, struct.pack(">I", chunk_size), 128)
    cs = chunk_size
    out += chunks(3, 20, 0, 0, CONNECT, cs)
    out += chunks(2, 5, 0, 0, struct.pack(">I", 2500000), cs)
    out += chunks(3, 20, 0, 0, RELEASE, cs)
    out += chunks(3, 20, 0, 0, FCPUBLISH, cs)
    out += chunks(3, 20, 0, 0, CREATE, cs)
    out += chunks(4, 20, 1, 0, PUBLISH, cs)
    meta = amf_str("@setDataFrame") + amf_str("onMetaData") + amf_ecma([
        ("width", amf_num(1280)), ("height", amf_num(720)), ("videodatarate", amf_num(2500)),
        ("audiodatarate", amf_num(128)), ("framerate", amf_num(30)),
    ])
    out += chunks(4, 18, 1, 0, meta, cs)
    for t, ts, body in tags:
        if t in (8, 9):
            out += chunks(6 if t == 9 else 5, t, 1, ts, body, cs)
    out += tail
    return bytes(out)


# ------------------------------------------------------------------ SRT ---

def srt_handshake(version, shake_type, exts):
    cif = struct.pack(">IHHIIIiI", version, 0, 2 if version == 5 else 0, 0x1234, 1500, 8192, shake_type, 0x42)
    cif += struct.pack(">I", 0) + bytes(16)
    for kind, body in exts:
        cif += struct.pack(">HH", kind, len(body) // 4) + body
    header = struct.pack(">HHIII", 0x8000, 0, 0, 0, 0)
    return header + cif


def srt_streamid_ext(sid):
    b = sid.encode()
    b += b"\0" * (-len(b) % 4)
    # srt-protocol reads the stream id as little-endian 32-bit words.
    words = b"".join(b[i:i + 4][::-1] for i in range(0, len(b), 4))
    return (5, words)


# ----------------------------------------------------------------- main ---

def main():
    flvs = sorted(glob.glob(os.path.join(ROOT, "golden", "*", "input.flv")))
    tss = sorted(glob.glob(os.path.join(ROOT, "golden", "*", "input.ts")))
    av_tags = None
    for path in flvs:
        name = os.path.basename(os.path.dirname(path))
        tags = flv_tags(read(path))
        if av_tags is None or name == "avc30_gop1":
            av_tags = tags
        # Whole-file seeds, cut short: the sequence headers and a few frames.
        put("flv", name + "_head", flv_file(small_tags(tags, 12)))
        put("flv", name + "_cut", flv_file(small_tags(tags, 40, 1500)))
        put("flv", name + "_synthetic", flv_file(synthetic_tags(tags)))
        put("flv", name + "_mid", flv_file([tags[0], tags[1], tags[2]] + small_tags(tags[60:80], 20, 2000)))
        for t, ts, body in tags[:40]:
            if t == 18:
                put("amf", name + "_metadata", body)
            if t == 9 and len(body) > 5 and body[1] == 0:
                avcc = body[5:]
                put("codec", name + "_avcc", avcc)
                nals = avc_nals_from_avcc(avcc)
                put("codec", name + "_sps", nals[0])
                put("codec", name + "_annexb", b"".join(b"\0\0\0\1" + n for n in nals))
            if t == 8 and len(body) > 2 and body[1] == 0:
                asc = body[2:]
                put("codec", name + "_asc", asc)
        for t, ts, body in tags[40:]:
            if t == 9 and len(body) > 5 and body[1] == 1:
                put("codec", name + "_frame", body[5:2000])
                break
    # AMF3 metadata: an onMetaData name in AMF0, then an AMF3 object.
    put("amf", "amf3_metadata", b"\x00" + amf_str("onMetaData")[0:] + b"\x11\x0a\x0b\x01\x0bwidth\x04\x8a\x00\x01")
    for label, body in [("connect", CONNECT), ("publish", PUBLISH), ("create", CREATE), ("fcunpublish", FCUNPUBLISH),
                        ("nested", command("connect", 1, amf_obj([("a", amf_obj([("b", b"\x0a\0\0\0\2" + amf_num(1) +
                                                                                  amf_ecma([("c", NULL)]))]))])))]:
        put("amf", "cmd_" + label, body)
    # ADTS frame header.
    put("codec", "adts", bytes([0xFF, 0xF1, 0x50, 0x80, 0x2E, 0x7F, 0xFC]) + bytes(360))

    for path in tss:
        name = os.path.basename(os.path.dirname(path))
        buf = read(path)
        put("ts_demux", name + "_head", b"\x00" + buf[:188 * 120])
        put("ts_demux", name + "_chunked", b"\x03" + buf[:188 * 60])
        put("ts_demux", name + "_mid", b"\x00" + buf[:188 * 4] + buf[188 * 400:188 * 460])
        put("mpegts_udp", name + "_head", b"\x06" + buf[:188 * 200])
        put("mpegts_udp", name + "_small", b"\x00" + buf[:188 * 40])
        for i in range(0, 188 * 50, 188):
            if buf[i + 1] & 0x40 and (int.from_bytes(buf[i + 1:i + 3], "big") & 0x1FFF) not in (0, 0x1000):
                payload = buf[i + 4:i + 188]
                if buf[i + 3] & 0x20:
                    payload = buf[i + 5 + buf[i + 4]:i + 188]
                if payload[:3] == b"\0\0\1":
                    put("codec", name + "_pes_es", payload[9 + payload[8]:])
                    break

    # RTMP: handshake + connect + publish + media, in several read sizes.
    if av_tags is not None:
        media = synthetic_tags(av_tags)
        sess = rtmp_session(media)
        put("rtmp", "publish_one_read", b"\x00" + handshake() + sess)
        put("rtmp", "publish_small_reads", b"\x05" + handshake() + sess)
        put("rtmp", "publish_no_handshake", b"\x80" + sess)
        put("rtmp", "publish_unpublish", b"\x80" + rtmp_session(media[:10], 128,
                                                                 chunks(3, 20, 0, 0, FCUNPUBLISH, 128)))
        put("rtmp", "publish_chunk128", b"\x81" + rtmp_session(media[:12], 128))
        put("rtmp", "play", b"\x80" + chunks(3, 20, 0, 0, CONNECT, 128) + chunks(3, 20, 0, 0, CREATE, 128) +
            chunks(8, 20, 1, 0, PLAY, 128))
        agg = bytearray()
        for t, ts, body in media[2:40]:
            agg += bytes([t]) + len(body).to_bytes(3, "big") + ts.to_bytes(3, "big") + b"\0\0\0\0" + body
            agg += struct.pack(">I", 11 + len(body))
        put("rtmp", "aggregate", b"\x80" + rtmp_session(media[:2], 4096, chunks(7, 22, 1, 100, bytes(agg), 4096)))
        put("rtmp", "ext_timestamp", b"\x80" + rtmp_session([(t, ts + 0xFFFFF0, b) for t, ts, b in media[:6]]))

    # SRT stream ids and handshakes.
    for i, sid in enumerate(["#!::r=app/stream,m=publish", "app/stream", "#!::u=bob,r=app/s%41b,m=publish,s=x",
                             "#!::m=request,r=app/stream", "srt://host:9999?streamid=app/stream", "#!::r=app/",
                             "app/stream?key=1"]):
        put("srt", "streamid_%d" % i, sid)
    put("srt", "hs_induction", srt_handshake(4, 1, []))
    hsreq = (1, struct.pack(">III", 0x00010401, 0xBF, 0x00780078))
    put("srt", "hs_conclusion", srt_handshake(5, -1, [hsreq, srt_streamid_ext("#!::r=app/stream,m=publish")]))
    put("srt", "hs_conclusion_km", srt_handshake(5, -1, [hsreq, (3, bytes(48)), srt_streamid_ext("app/stream")]))
    put("srt", "keepalive", struct.pack(">HHIII", 0x8001, 0, 0, 0, 0))
    put("srt", "data", struct.pack(">IIII", 1, 0xC0000000, 0, 0) + bytes(188))

    # Server.xml.
    for path in sorted(glob.glob(os.path.join(ROOT, "conf", "*.xml"))):
        put("config", os.path.basename(path), read(path))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    lib = read(os.path.join(ROOT, "fuzz", "src", "lib.rs")).decode()
    start = lib.index('r#"<?xml') + 2
    put("config", "fuzz_lib.xml", lib[start:lib.index('"#;', start)])
    put("config", "env.xml", '<Server version="8"><Name>${env:NAME:x}</Name><Bind><Providers><RTMP>'
                             '<Port>${env:LOCKSTEP_RTMP_PORT}</Port></RTMP></Providers></Bind></Server>')

    # HTTP requests: target, Range, Accept-Encoding, Origin, method.
    reqs = [
        "/app/live/llhls.m3u8", "/app/live/video1.m3u8", "/app/live/video1.m3u8?_HLS_msn=2&_HLS_part=1",
        "/app/live/video1.m3u8?_HLS_msn=99&_HLS_part=0&_HLS_skip=YES", "/app/live/audio2.m3u8?_HLS_skip=v2",
        "/app/live/video1_init.mp4", "/app/live/video1_1.m4s", "/app/live/video1_2.1.m4s",
        "/app/live/video1_9.0.m4s", "/app/live/playlist.m3u8", "/app/live/ts.m3u8", "/app/live/ts_1.ts",
        "/keyed/live/llhls.m3u8", "/keyed/live/video1.m3u8?session=abc&_HLS_msn=1",
        "/app/live/video1.m3u8?_HLS_part=1", "/app/nope/llhls.m3u8", "/app/../x", "/",
    ]
    for i, r in enumerate(reqs):
        put("http", "get_%02d" % i, r)
    put("http", "range", "/app/live/video1_1.m4s\nbytes=10-99\ngzip\nhttp://a.example.com\nGET")
    put("http", "range_suffix", "/app/live/video1_init.mp4\nbytes=-20\n\n\nHEAD")
    put("http", "gzip", "/app/live/video1.m3u8\n\ngzip;q=0.5, br;q=1, *;q=0\nhttp://player.test:8080\nGET")
    put("http", "preflight", "/app/live/llhls.m3u8\n\n\nhttps://cdn.example.com\nOPTIONS")

    # Peer link: a stream state as JSON, bare and in HTTP responses.
    seg = lambda msn, parts: {"msn": msn, "start": msn * 90000 * 2, "duration": 180000, "discontinuity": False,
                              "parts": [[45000, k == 0, False] for k in range(parts)], "complete": parts == 4,
                              "discontinuity_sequence": 0}
    state = {"adopted": False, "started_ms": 1700000000000, "offset_90k": 900000,
             "anchor": {"llhls": [0, 0], "hls": [0, 0], "discontinuity_sequence": 0},
             "keyframes": [["00ff", 0], ["abcd", 180000]],
             "history": {"llhls": [[1, [seg(0, 4), seg(1, 4), seg(2, 2)]], [2, [seg(0, 4), seg(1, 4)]]],
                         "hls": [seg(0, 0), seg(1, 0)]},
             "lockstep_failures": 0}
    body = json.dumps(state).encode()
    put("peer", "state.json", body)
    put("peer", "time.json", b'{"now_ms": 1700000000000}')
    put("peer", "response", b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    chunked = b"".join(b"%x\r\n" % len(body[i:i + 100]) + body[i:i + 100] + b"\r\n" for i in range(0, len(body), 100))
    put("peer", "response_chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"1\"\r\n\r\n" +
        chunked + b"0\r\n\r\n")
    joined = dict(state, anchor={"llhls": [700, 5], "hls": None, "discontinuity_sequence": 3})
    put("peer", "state_joined.json", json.dumps(joined))

    # Crash inputs found earlier (also replayed by cargo test).
    for target in TARGETS:
        for path in sorted(glob.glob(os.path.join(ROOT, "golden", "fuzz-regressions", target, "*"))):
            put(target, "regression_" + os.path.basename(path), read(path))

    for target in TARGETS:
        d = os.path.join(OUT, target)
        n = len(os.listdir(d)) if os.path.isdir(d) else 0
        print("%-11s %3d seeds" % (target, n))


if __name__ == "__main__":
    main()
