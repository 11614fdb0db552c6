//! Comparing the two nodes of a pair: fetch the same URLs from both and
//! compare bytes. Playlists are only comparable at the same point, so the
//! comparison asks for blocking playlists at recent (msn, part) points.
#![allow(dead_code)]

use std::time::Duration;

use super::{playlist_uris, server_xml, wait_for, AppXml, Ports, Server};

/// A Server.xml for one node of a pair (`role` main or backup) on `me`,
/// whose peer listens on `peer`: one application in `mode`, 1.5 s silence.
pub fn pair_xml(me: Ports, peer: Ports, role: &str, mode: &str, secret: &str) -> String {
    server_xml(me, &[AppXml { timestamp_mode: mode.into(), silence_ms: 1500, ..AppXml::default() }]).replacen(
        "<VirtualHosts>",
        &format!(
            "<Pair><Role>{role}</Role><PeerUrl>http://127.0.0.1:{}</PeerUrl><Secret>{secret}</Secret></Pair>\n  <VirtualHosts>",
            peer.http
        ),
        1,
    )
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `/app/stream/{name}` of `s` as text, if it answers 200.
pub fn get_text(s: &Server, name: &str) -> Option<String> {
    let (st, body) = s.get(&format!("/app/stream/{name}"));
    (st == 200).then(|| text(&body))
}

/// The hinted next part of a media playlist: (msn, part).
pub fn hint(playlist: &str) -> Option<(u64, u32)> {
    let l = playlist.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))?;
    let uri = l.split("URI=\"").nth(1)?.split('"').next()?;
    let (msn, part) = uri.rsplit_once('_')?.1.strip_suffix(".m4s")?.split_once('.')?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

/// Wait (up to 30 s) until `s` serves `app/stream`'s video playlist.
pub fn wait_live(s: &Server, what: &str) {
    wait_for(what, Duration::from_secs(30), || get_text(s, "video1.m3u8").map(|_| ()));
}

#[derive(Default, Debug)]
pub struct Comparison {
    pub identical: usize,
    pub differing: Vec<String>,
    /// Blocking playlist requests found identical, as "rendition msn.part".
    pub points: Vec<String>,
}

/// Fetch from both nodes every object `b` lists (it must be served by
/// both), the masters, and blocking playlists (full and delta) at every
/// point from segment `from` (default: four segments back) to the newest
/// point both nodes have; compare bytes.
pub fn compare(a: &Server, b: &Server, from: Option<u64>) -> Comparison {
    let mut c = Comparison::default();
    // `listed`: (listed by b, listed by a); a node must serve what it lists.
    let check = |path: &str, listed: (bool, bool), c: &mut Comparison| {
        let (sa, ba) = a.get(path);
        let (sb, bb) = b.get(path);
        if listed.0 && sb != 200 {
            c.differing.push(format!("{path} (listed by the backup, answered {sb})"));
        } else if listed.1 && sa != 200 {
            c.differing.push(format!("{path} (listed by the main, answered {sa})"));
        } else if sa == 200 && sb == 200 {
            if ba == bb {
                c.identical += 1;
            } else {
                c.differing.push(path.to_string());
            }
        }
    };
    check("/app/stream/llhls.m3u8", (false, false), &mut c);
    check("/app/stream/playlist.m3u8", (false, false), &mut c);
    for rendition in ["video1", "audio2", "ts"] {
        let Some(pl) = get_text(b, &format!("{rendition}.m3u8")) else { continue };
        let a_pl = get_text(a, &format!("{rendition}.m3u8"));
        let a_uris = a_pl.as_deref().map(playlist_uris).unwrap_or_default();
        for uri in playlist_uris(&pl).iter().filter(|u| !u.ends_with(".m3u8")) {
            check(&format!("/app/stream/{uri}"), (true, a_uris.contains(uri)), &mut c);
        }
        // Probe from the node that is behind: the other has those points too.
        let a_hint = a_pl.as_deref().and_then(hint);
        let Some((msn, part)) = hint(&pl).into_iter().chain(a_hint).min() else { continue };
        let first = from.unwrap_or(msn.saturating_sub(4)).min(msn);
        for m in first..=msn {
            let parts = if m == msn { part } else { 8 };
            for p in 0..parts {
                let q = format!("/app/stream/{rendition}.m3u8?_HLS_msn={m}&_HLS_part={p}");
                let n = c.identical;
                check(&q, (false, false), &mut c);
                check(&format!("{q}&_HLS_skip=YES"), (false, false), &mut c);
                if c.identical > n {
                    c.points.push(format!("{rendition} {m}.{p}"));
                }
            }
            if m < msn {
                check(&format!("/app/stream/{rendition}.m3u8?_HLS_msn={m}"), (false, false), &mut c);
            }
        }
    }
    c
}

/// [`compare`], asserting that nothing differs and at least `min` objects
/// and points were compared.
pub fn assert_identical(a: &Server, b: &Server, from: Option<u64>, scenario: &str, min: usize) -> Comparison {
    let c = compare(a, b, from);
    assert!(
        c.differing.is_empty(),
        "{scenario}: {} identical, differing: {:?}\nmain log:\n{}\nbackup log:\n{}",
        c.identical,
        c.differing,
        a.log_text(),
        b.log_text()
    );
    assert!(c.identical >= min, "{scenario}: only {} objects compared", c.identical);
    println!("{scenario}: {} objects identical, 0 differing", c.identical);
    c
}
