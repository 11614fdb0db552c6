//! Publish authentication, end to end: the real `lockstep` binary with
//! publish keys and a SignedPolicy, ffmpeg publishing over RTMP and SRT,
//! signed URLs made by `lockstep sign-url`. Refused publishers fail and get
//! one log line naming the stream and the reason; accepted ones are served
//! under the URL without the query; no secret reaches the log.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use support::*;

const KEY: &str = "pk-2d9c1a7e44b0f35e";
const OLD_KEY: &str = "pk-rotated-out-0f1e2d3c";
const SECRET: &str = "sp-secret-7b1f0c9d2e6a4853";
/// The REST API credentials of the test server (`user:password`).
const TOKEN: &str = "admin:api-token-5e8d";

/// A test input of `seconds` in `ext` (flv or ts), made once per process.
fn input(ext: &str, seconds: u32) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-auth-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    standard_input(&dir, ext, seconds)
}

/// The default test server with the REST API on `api`, `keys` as the
/// application's publish keys and, when `signed`, a SignedPolicy for RTMP
/// and SRT.
fn xml(ports: Ports, api: u16, keys: &[&str], signed: bool) -> String {
    let mut xml = server_xml(ports, &[AppXml::default()])
        .replacen("<Bind>", &format!("<Bind>\n    <Managers><API><Port>{api}</Port></API></Managers>"), 1)
        .replacen(
            "<VirtualHosts>",
            &format!("<Managers><API><AccessToken>{TOKEN}</AccessToken></API></Managers>\n  <VirtualHosts>"),
            1,
        );
    if !keys.is_empty() {
        let keys: String = keys.iter().map(|k| format!("<Key>{k}</Key>")).collect();
        let app = "<Name>app</Name>\n          <Providers>";
        assert!(xml.contains(app), "{xml}");
        xml = xml.replacen(app, &format!("{app}<PublishKeys>{keys}</PublishKeys>"), 1);
    }
    if signed {
        let sp = format!(
            "<SignedPolicy><PolicyQueryKeyName>policy</PolicyQueryKeyName>\
             <SignatureQueryKeyName>signature</SignatureQueryKeyName><SecretKey>{SECRET}</SecretKey>\
             <Enables><Providers>rtmp,srt</Providers></Enables></SignedPolicy>\n      <Applications>"
        );
        xml = xml.replacen("<Applications>", &sp, 1);
    }
    xml
}

/// `lockstep sign-url ARGS` with the server's configuration.
fn sign(server: &Server, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .arg("sign-url")
        .args(args)
        .arg("--config")
        .arg(server.dir.join("Server.xml"))
        .stdin(Stdio::null())
        .output()
        .expect("run lockstep sign-url");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "sign-url {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("signature"), "{text}");
    text
}

/// ffmpeg publishing `input` to `url` must fail (refused) within 15 s, and
/// the server log one more refusal naming `stream` and `reason`.
fn refused(server: &Server, input: &Path, format: &str, url: &str, stream: &str, reason: &str) {
    let before = rejections(server);
    let mut push = ffmpeg_push(input, format, url);
    let status = push.wait_timeout(Duration::from_secs(15));
    assert!(status.is_some_and(|s| !s.success()), "push to {url} was not refused: {status:?}");
    let lines = wait_for("the refusal's log line", Duration::from_secs(5), || {
        let now = rejections(server);
        (now.len() > before.len()).then_some(now)
    });
    assert_eq!(lines.len(), before.len() + 1, "one log line per refusal:\n{}", server.log_text());
    let line = lines.last().map(String::as_str).unwrap_or_default();
    assert!(line.contains(&format!("not authorized to publish app/{stream}")), "{line}");
    assert!(line.contains(reason), "{line}\n  should say {reason:?}");
    assert_eq!(server.get(&format!("/app/{stream}/llhls.m3u8")).0, 404, "{stream} is served");
}

fn rejections(server: &Server) -> Vec<String> {
    server.log_text().lines().filter(|l| l.contains("publish rejected")).map(str::to_string).collect()
}

/// ffmpeg publishing `input` to `url` is accepted: the stream is packaged
/// and served under `/app/{stream}/` (no key, no signature). The push is
/// stopped once a segment is listed.
fn accepted(server: &Server, input: &Path, format: &str, url: &str, stream: &str) {
    let mut push = ffmpeg_push(input, format, url);
    let media = wait_for(&format!("a segment of app/{stream} ({url})"), Duration::from_secs(30), || {
        assert!(push.running(), "push to {url} ended early:\n{}", server.log_text());
        let (status, body) = server.get(&format!("/app/{stream}/video1.m3u8"));
        let text = String::from_utf8_lossy(&body).to_string();
        let hls = server.get(&format!("/app/{stream}/playlist.m3u8")).0;
        (status == 200 && text.contains("#EXTINF") && hls == 200).then_some(text)
    });
    assert!(!media.contains("key=") && !media.contains("signature"), "{media}");
    let (status, master) = server.get(&format!("/app/{stream}/llhls.m3u8"));
    assert_eq!(status, 200);
    assert!(!String::from_utf8_lossy(&master).contains("key="));
    push.kill();
}

/// Standard base64 (for HTTP Basic credentials).
fn base64(s: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// No secret (keys, SecretKey, policies, signatures) anywhere in the log.
fn assert_log_has_no_secret(server: &Server, secrets: &[String]) {
    let log = server.log_text();
    assert!(!log.is_empty());
    for s in secrets {
        assert!(!log.contains(s.as_str()), "the log shows the secret {s:?}:\n{log}");
    }
    // Only the hint "?key=..." may show a key parameter.
    assert_eq!(log.matches("key=").count(), log.matches("key=...").count(), "{log}");
}

/// The values of `policy` and `signature` in a signed URL (either encoding).
fn signed_parts(url: &str) -> Vec<String> {
    let decoded = url.replace("%3D", "=").replace("%26", "&").replace("%3F", "?");
    decoded
        .split(['?', '&'])
        .filter_map(|p| p.strip_prefix("policy=").or_else(|| p.strip_prefix("signature=")))
        .map(str::to_string)
        .collect()
}

#[test]
fn publish_keys_over_rtmp_and_srt() {
    let ports = Ports::free();
    let api = free_tcp_port();
    let server = Server::start_xml("auth-keys", ports, &xml(ports, api, &[KEY, OLD_KEY], false));
    let flv = input("flv", 20);
    let ts = input("ts", 20);
    let rtmp = |stream_and_query: &str| format!("rtmp://127.0.0.1:{}/app/{stream_and_query}", ports.rtmp);
    let srt = |streamid: &str| format!("srt://127.0.0.1:{}?streamid={streamid}", ports.srt);

    refused(&server, &flv, "flv", &rtmp("r1"), "r1", "no publish key");
    refused(&server, &flv, "flv", &rtmp("r1?key=wrong-key-0000000000"), "r1", "wrong publish key");
    refused(&server, &flv, "flv", &rtmp(&format!("r1?key={KEY}x")), "r1", "wrong publish key");
    refused(&server, &ts, "mpegts", &srt("app/s1"), "s1", "no publish key");
    refused(&server, &ts, "mpegts", &srt("#!::r=app/s1?key=nope-0000000000000,m=publish"), "s1", "wrong publish key");

    // A percent-encoded query is no query (so no key either), and is not shown.
    let mut odd = ffmpeg_push(&flv, "flv", &rtmp(&format!("r5%3Fkey%3D{KEY}")));
    let status = odd.wait_timeout(Duration::from_secs(15));
    assert!(status.is_some_and(|s| !s.success()), "an encoded query was accepted: {status:?}");
    let line = server.wait_log("r5?<redacted>", Duration::from_secs(5));
    assert!(line.contains("publish rejected") && line.contains("no publish key"), "{line}");

    accepted(&server, &flv, "flv", &rtmp(&format!("r1?key={KEY}")), "r1");
    // The second key too (rotation: old and new keys side by side).
    accepted(&server, &flv, "flv", &rtmp(&format!("r2?key={OLD_KEY}")), "r2");
    accepted(&server, &ts, "mpegts", &srt(&format!("#!::r=app/s1?key={KEY},m=publish")), "s1");
    // OvenMediaEngine's srt:// form, percent-encoded.
    let ome = format!("srt%3A%2F%2F127.0.0.1%3A{}%2Fapp%2Fs2%3Fkey%3D{KEY}", ports.srt);
    accepted(&server, &ts, "mpegts", &srt(&ome), "s2");

    // A live stream in the API under its plain name; refusals in the metrics.
    let mut live = ffmpeg_push(&flv, "flv", &rtmp(&format!("live?key={KEY}")));
    wait_for("app/live's playlist", Duration::from_secs(20), || {
        (server.get("/app/live/llhls.m3u8").0 == 200).then_some(())
    });
    let basic = format!("Basic {}", base64(TOKEN));
    let (status, _, body) =
        http_request(api, "GET", "/v1/vhosts/default/apps/app/streams", &[("Authorization", basic.as_str())]);
    let streams = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 200, "{streams}");
    assert!(streams.contains("\"live\"") && !streams.contains("key"), "{streams}");
    let (status, _, body) =
        http_request(api, "GET", "/v1/vhosts/default/apps/app/streams/live", &[("Authorization", basic.as_str())]);
    let details = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 200, "{details}");
    assert!(!details.contains(KEY) && !details.contains("key="), "{details}");
    live.kill();
    let (_, _, body) = http_request(api, "GET", "/metrics", &[]);
    let metrics = String::from_utf8_lossy(&body).to_string();
    assert!(metrics.contains("lockstep_publish_rejections_total{reason=\"unauthorized\"} 6\n"), "{metrics}");
    assert!(!metrics.contains(KEY) && !metrics.contains("key="), "{metrics}");

    let log = server.log_text();
    assert!(log.contains("RTMP publisher started") && log.contains("SRT publisher connected"), "{log}");
    assert_log_has_no_secret(&server, &[KEY.into(), OLD_KEY.into(), "wrong-key".into(), "nope-0000".into()]);
}

#[test]
fn signed_policy_over_rtmp_and_srt() {
    let ports = Ports::free();
    let server = Server::start_xml("auth-signed", ports, &xml(ports, free_tcp_port(), &[], true));
    let flv = input("flv", 20);
    let ts = input("ts", 20);
    let rtmp_base = |stream: &str| format!("rtmp://127.0.0.1:{}/app/{stream}", ports.rtmp);
    let srt_base = |stream: &str| format!("srt://127.0.0.1:{}/app/{stream}", ports.srt);
    let mut secrets = vec![SECRET.to_string()];

    // RTMP.
    refused(&server, &flv, "flv", &rtmp_base("r1"), "r1", "no signed policy");
    let valid = sign(&server, &[&rtmp_base("r1")]);
    let expired = sign(&server, &[&rtmp_base("r1"), "--expire-in", "0"]);
    let early = sign(&server, &[&rtmp_base("r1"), "--activate-in", "3600"]);
    let tampered = valid.replace("/app/r1?", "/app/r9?");
    let forged = {
        let (head, sig) = valid.rsplit_once("signature=").expect("signature");
        let c = if sig.starts_with('A') { "B" } else { "A" };
        format!("{head}signature={c}{}", &sig[1..])
    };
    for u in [&valid, &expired, &early, &forged] {
        secrets.extend(signed_parts(u));
    }
    refused(&server, &flv, "flv", &expired, "r1", "the signed URL expired");
    refused(&server, &flv, "flv", &early, "r1", "the signed URL is valid from");
    refused(&server, &flv, "flv", &tampered, "r9", "the signature does not match the URL");
    refused(&server, &flv, "flv", &forged, "r1", "the signature does not match the URL");
    accepted(&server, &flv, "flv", &valid, "r1");

    // SRT: the signed URL travels in the stream id.
    refused(
        &server,
        &ts,
        "mpegts",
        &format!("srt://127.0.0.1:{}?streamid=app/s1", ports.srt),
        "s1",
        "no signed policy",
    );
    let valid = sign(&server, &[&srt_base("s1")]);
    assert!(valid.starts_with(&format!("srt://127.0.0.1:{}?streamid=srt%3A%2F%2F", ports.srt)), "{valid}");
    let expired = sign(&server, &[&srt_base("s1"), "--expire-in", "0"]);
    let tampered = valid.replace("%2Fs1%3F", "%2Fs9%3F");
    let elsewhere = sign(&server, &[&srt_base("s1"), "--allow-ip", "192.0.2.0/24"]);
    for u in [&valid, &expired, &elsewhere] {
        secrets.extend(signed_parts(u));
    }
    refused(&server, &ts, "mpegts", &expired, "s1", "the signed URL expired");
    refused(&server, &ts, "mpegts", &tampered, "s9", "the signature does not match the URL");
    refused(&server, &ts, "mpegts", &elsewhere, "s1", "outside the policy's allow_ip 192.0.2.0/24");
    accepted(&server, &ts, "mpegts", &valid, "s1");

    // stream_expire: accepted, then ended by the server.
    let short = sign(&server, &[&rtmp_base("r3"), "--stream-expire-in", "4"]);
    secrets.extend(signed_parts(&short));
    let mut push = ffmpeg_push(&flv, "flv", &short);
    wait_for("app/r3's playlist", Duration::from_secs(20), || {
        (server.get("/app/r3/llhls.m3u8").0 == 200).then_some(())
    });
    let line = server.wait_log("stream_expire has passed", Duration::from_secs(15));
    assert!(line.contains("app/r3"), "{line}");
    let status = push.wait_timeout(Duration::from_secs(15));
    assert!(status.is_some_and(|s| !s.success()), "the expired publisher was not disconnected: {status:?}");
    wait_for("app/r3 to end", Duration::from_secs(10), || (server.get("/app/r3/llhls.m3u8").0 == 404).then_some(()));

    assert_log_has_no_secret(&server, &secrets);
}
