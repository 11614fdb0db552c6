#!/usr/bin/env python3
"""Concatenate FLV files tag by tag: each later file's tags (its sequence
headers included) follow the previous file's, timestamps shifted to start
one video frame (33 ms) after the previous file's last tag."""
import sys
out, ins = sys.argv[1], sys.argv[2:]
res = bytearray()
offset = 0
for n, path in enumerate(ins):
    d = open(path, 'rb').read()
    if n == 0:
        res += d[:13]
    i = int.from_bytes(d[5:9], 'big') + 4
    last = 0
    while i + 11 <= len(d):
        sz = int.from_bytes(d[i + 1:i + 4], 'big')
        ts = int.from_bytes(d[i + 4:i + 7], 'big') | (d[i + 7] << 24)
        tag = bytearray(d[i:i + 11 + sz + 4])
        if tag[0] == 18 and n > 0:  # onMetaData only once
            i += 11 + sz + 4
            continue
        t = ts + offset
        last = max(last, t)
        tag[4:7] = (t & 0xFFFFFF).to_bytes(3, 'big')
        tag[7] = (t >> 24) & 0xFF
        res += tag
        i += 11 + sz + 4
    offset = last + 33
open(out, 'wb').write(res)
