//! OriginMode false: per-viewer session keys, end to end. A key issued by one
//! node is accepted by another node with the same secret (a player or CDN
//! switching between main and backup keeps working).

mod support;

use std::time::Duration;

use support::*;

const SECRET: &str = "0123456789abcdef-shared-by-the-pair";

fn start(tag: &str, secret: &str) -> Server {
    let ports = Ports::free();
    let xml = server_xml(ports, &[AppXml::default()]).replace(
        "<OriginMode>true</OriginMode>",
        &format!("<OriginMode>false</OriginMode><SessionKeySecret>{secret}</SessionKeySecret>"),
    );
    Server::start_xml(tag, ports, &xml)
}

fn key_of(master: &str) -> String {
    master
        .lines()
        .find_map(|l| l.split("session=").nth(1))
        .map(|k| k.split(['"', '&']).next().unwrap_or_default().to_string())
        .expect("the master playlist carries a session key")
}

#[test]
fn session_keys_gate_every_url_and_verify_on_either_node() {
    let a = start("origin-a", SECRET);
    let b = start("origin-b", SECRET);
    let other = start("origin-c", "a-different-secret-for-this-one");
    let input = standard_input(&a.dir, "flv", 20);
    let _pa = ffmpeg_push(&input, "flv", &a.rtmp_url("app", "stream"));
    let _pb = ffmpeg_push(&input, "flv", &b.rtmp_url("app", "stream"));
    let _pc = ffmpeg_push(&input, "flv", &other.rtmp_url("app", "stream"));
    for s in [&a, &b, &other] {
        wait_for("the master playlist", Duration::from_secs(20), || {
            (s.get("/app/stream/llhls.m3u8").0 == 200).then_some(())
        });
    }

    let (st, master) = a.get("/app/stream/llhls.m3u8");
    assert_eq!(st, 200);
    let master = String::from_utf8_lossy(&master).into_owned();
    let key = key_of(&master);
    assert!(master.contains(&format!("video1.m3u8?session={key}")), "{master}");
    assert!(master.contains(&format!("URI=\"audio2.m3u8?session={key}\"")), "{master}");
    // Every viewer gets its own key.
    let (_, again) = a.get("/app/stream/llhls.m3u8");
    assert_ne!(key_of(&String::from_utf8_lossy(&again)), key);

    // Without a key: 401; with a bad one: 403.
    assert_eq!(a.get("/app/stream/video1.m3u8").0, 401);
    assert_eq!(a.get("/app/stream/video1_init.mp4").0, 401);
    assert_eq!(a.get("/app/stream/video1.m3u8?session=v1.1.00.00").0, 403);
    // Change the MAC's last hex digit (to a different one).
    let last = if key.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &key[..key.len() - 1]);
    assert_eq!(a.get(&format!("/app/stream/video1.m3u8?session={tampered}")).0, 403);

    // With the key: the playlist's URIs all carry it, and they work.
    let (st, media) = a.get(&format!("/app/stream/video1.m3u8?session={key}"));
    assert_eq!(st, 200);
    let media = String::from_utf8_lossy(&media).into_owned();
    let uris = playlist_uris(&media);
    assert!(!uris.is_empty());
    for u in &uris {
        assert!(u.ends_with(&format!("session={key}")), "{u} lacks the key");
    }
    let init = uris.iter().find(|u| u.starts_with("video1_init.mp4")).expect("map URI");
    assert_eq!(a.get(&format!("/app/stream/{init}")).0, 200);

    // The other node of the pair accepts the key; a node with another secret
    // does not.
    assert_eq!(b.get(&format!("/app/stream/video1.m3u8?session={key}")).0, 200);
    assert_eq!(b.get(&format!("/app/stream/{init}")).0, 200);
    assert_eq!(other.get(&format!("/app/stream/video1.m3u8?session={key}")).0, 403);
}
