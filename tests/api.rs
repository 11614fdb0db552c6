//! End-to-end tests of the REST API (`Bind/Managers/API/Port`) and the
//! Prometheus metrics: the real `lockstep` binary, ffmpeg publishing over
//! RTMP, and a small HTTP client and exposition-format parser written here.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// The AccessToken of the test server.
const TOKEN: &str = "admin:s3cret";
/// base64("admin:s3cret").
const GOOD: &str = "Basic YWRtaW46czNjcmV0";

/// A server with the API on its own port.
struct ApiServer {
    server: Server,
    api: u16,
}

fn start(tag: &str) -> ApiServer {
    let ports = Ports::free();
    let api = free_tcp_port();
    let xml = server_xml(ports, &[AppXml::default()])
        .replacen("<Bind>", &format!("<Bind>\n    <Managers><API><Port>{api}</Port></API></Managers>"), 1)
        .replacen(
            "<VirtualHosts>",
            &format!("<Managers><API><AccessToken>{TOKEN}</AccessToken></API></Managers>\n  <VirtualHosts>"),
            1,
        );
    let server = Server::start_xml(tag, ports, &xml);
    wait_for("the API port to accept connections", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", api)).ok()
    });
    ApiServer { server, api }
}

struct Reply {
    status: u16,
    /// Header names in lower case.
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on loopback; status 0 when the connection fails.
fn request(port: u16, method: &str, path: &str, auth: Option<&str>) -> Reply {
    let failed = Reply { status: 0, headers: BTreeMap::new(), body: Vec::new() };
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return failed };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return failed;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return failed };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Reply { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < i + 2 + n {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[(i + 4 + n).min(b.len())..];
    }
    out
}

impl ApiServer {
    fn get(&self, path: &str) -> Reply {
        request(self.api, "GET", path, Some(GOOD))
    }

    /// `response` of a 200 answer.
    fn ok(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        let v = r.json();
        assert_eq!(v["statusCode"], 200, "{v}");
        assert_eq!(v["message"], "OK", "{v}");
        v["response"].clone()
    }

    fn metrics(&self, port: u16) -> BTreeMap<String, f64> {
        let r = request(port, "GET", "/metrics", None);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.headers.get("content-type").is_some_and(|c| c.starts_with("text/plain")), "{:?}", r.headers);
        parse_exposition(&r.text())
    }
}

/// Check an error answer: status, JSON `{"statusCode", "message"}`.
fn assert_error(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/json"));
    let v = r.json();
    assert_eq!(v["statusCode"], status, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(v.get("response").is_none(), "{v}");
}

// ----------------------------------------------------- exposition parser ---

/// Parse the Prometheus text format strictly enough to catch mistakes:
/// every sample line is `name{labels} value`, every metric has `# HELP` and
/// `# TYPE` before its first sample, label values are quoted with escapes.
/// Returns value by series (`name{k="v",...}` as written).
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut samples = BTreeMap::new();
    let is_name = |s: &str| {
        let mut c = s.chars();
        c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    };
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            assert!(is_name(name), "bad HELP line {line:?}");
            assert!(helps.insert(name.to_owned()), "second HELP for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
            assert!(is_name(name), "bad TYPE line {line:?}");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "bad type in {line:?}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "second TYPE for {name}");
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        // name, optional {labels}, one space, value.
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        assert!(is_name(name), "bad metric name in {line:?}");
        let mut rest = &line[name_end..];
        if let Some(labels) = rest.strip_prefix('{') {
            rest = &labels[label_set_len(labels, line, &is_name)..];
        }
        let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no single space before the value in {line:?}"));
        let v = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| types.get(*b).is_some_and(|t| t == "histogram")))
            .unwrap_or(name);
        assert!(types.contains_key(base), "no TYPE before {line:?}");
        assert!(helps.contains(base), "no HELP before {line:?}");
        samples.insert(line[..line.len() - value.len() - 1].to_owned(), v);
    }
    assert!(!samples.is_empty(), "no samples");
    samples
}

/// Length of `k="v",...}` at the start of `labels` (after the `{`),
/// checking names, quoting and escapes.
fn label_set_len(labels: &str, line: &str, is_name: &dyn Fn(&str) -> bool) -> usize {
    let b = labels.as_bytes();
    if b.first() == Some(&b'}') {
        return 1;
    }
    let mut i = 0;
    loop {
        let eq = labels[i..].find('=').map(|j| i + j).unwrap_or_else(|| panic!("label without '=' in {line:?}"));
        assert!(is_name(&labels[i..eq]), "bad label name in {line:?}");
        assert_eq!(b.get(eq + 1), Some(&b'"'), "unquoted label value in {line:?}");
        let mut j = eq + 2;
        loop {
            match b.get(j) {
                None => panic!("unterminated label value in {line:?}"),
                Some(b'\\') => match b.get(j + 1) {
                    Some(b'\\' | b'"' | b'n') => j += 2,
                    _ => panic!("bad escape in {line:?}"),
                },
                Some(b'"') => break,
                Some(b'\n') => panic!("raw newline in {line:?}"),
                Some(_) => j += 1,
            }
        }
        match b.get(j + 1) {
            Some(b',') => i = j + 2,
            Some(b'}') => return j + 2,
            _ => panic!("expected ',' or '}}' after a label in {line:?}"),
        }
    }
}

fn metric(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| panic!("no series {series} in {m:#?}"))
}

// ----------------------------------------------------------------- tests ---

#[test]
fn exposition_parser_rejects_malformed_text() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"\\\\\"} 3\na_total 4\n";
    let m = parse_exposition(ok);
    assert_eq!(metric(&m, "a_total{x=\"1\",y=\"q\\\"\\\\\"}"), 3.0);
    assert_eq!(metric(&m, "a_total"), 4.0);
    for bad in [
        "a_total 1\n",
        "# TYPE a_total counter\na_total 1\n",
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",
        "# HELP a A.\n# TYPE a gauge\na{x=\"1\" 1\n",
        "# HELP a A.\n# TYPE a gauge\na  1\n",
        "# HELP a A.\n# TYPE a gauge\na one\n",
    ] {
        assert!(std::panic::catch_unwind(|| parse_exposition(bad)).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn authentication_listing_and_errors() {
    let s = start("api-auth");
    // Missing, wrong and malformed credentials.
    for auth in [None, Some("Basic YWRtaW46d3Jvbmc="), Some("Bearer YWRtaW46czNjcmV0"), Some("Basic %%%")] {
        let r = request(s.api, "GET", "/v1/vhosts", auth);
        assert_error(&r, 401);
        assert_eq!(r.headers.get("www-authenticate").map(String::as_str), Some("Basic realm=\"lockstep\""), "{auth:?}");
    }
    // Even unknown paths and methods ask for credentials first.
    assert_error(&request(s.api, "GET", "/v1/nothing", None), 401);
    assert_error(&request(s.api, "DELETE", "/v1/vhosts/default/apps/app/streams/x", None), 401);

    assert_eq!(s.ok("/v1/vhosts"), serde_json::json!(["default"]));
    assert_eq!(s.ok("/v1/vhosts/default/apps"), serde_json::json!(["app"]));
    assert_eq!(s.ok("/v1/vhosts/default/apps/app/streams"), serde_json::json!([]));
    assert_error(&s.get("/v1/vhosts/nope/apps"), 404);
    assert_error(&s.get("/v1/vhosts/default/apps/nope/streams"), 404);
    assert_error(&s.get("/v1/vhosts/default/apps/app/streams/nope"), 404);
    assert_error(&request(s.api, "DELETE", "/v1/vhosts/default/apps/app/streams/nope", Some(GOOD)), 404);
    assert_error(&s.get("/v1/nothing"), 404);
    assert_error(&request(s.api, "POST", "/v1/vhosts", Some(GOOD)), 405);
    assert_error(&request(s.api, "PUT", "/v1/vhosts/default/apps/app/streams/x", Some(GOOD)), 405);

    // Metrics need no credentials, on both ports.
    let m = s.metrics(s.api);
    assert_eq!(metric(&m, "lockstep_streams"), 0.0);
    let m = s.metrics(s.server.ports.http);
    assert_eq!(metric(&m, "lockstep_held_requests"), 0.0);
}

#[test]
fn live_stream_details_metrics_and_delete() {
    let s = start("api-live");
    let input = standard_input(&s.server.dir, "flv", 40);
    let mut push = ffmpeg_push(&input, "flv", &s.server.rtmp_url("app", "live1"));
    let streams = "/v1/vhosts/default/apps/app/streams";
    wait_for("live1 in the stream list", Duration::from_secs(20), || {
        assert!(push.running(), "ffmpeg exited early:\n{}", s.server.log_text());
        (s.ok(streams) == serde_json::json!(["live1"])).then_some(())
    });
    let detail_path = format!("{streams}/live1");
    let detail = wait_for("packaging and a published LL-HLS point", Duration::from_secs(20), || {
        let d = s.ok(&detail_path);
        (d["llhls"]["video1"]["msn"].is_u64() && d["llhls"]["audio2"]["msn"].is_u64()).then_some(d)
    });
    let http = s.server.ports.http;
    // A viewer, and a 404.
    assert_eq!(http_get(http, "/app/live1/llhls.m3u8").0, 200);
    assert_eq!(http_get(http, "/app/live1/video1.m3u8").0, 200);
    assert_eq!(http_get(http, "/app/missing/video1.m3u8").0, 404);

    assert_eq!(detail["name"], "live1");
    assert_eq!(detail["input"]["sourceType"], "Rtmp");
    assert!(detail["input"]["from"].as_str().is_some_and(|f| f.starts_with("tcp://127.0.0.1:")), "{detail}");
    assert!(detail["input"]["createdTime"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 24), "{detail}");
    assert_eq!(detail["provider"], "RTMP");
    assert_eq!(detail["timestampMode"], "ZeroBased");
    assert!(detail["peer"].as_str().is_some_and(|p| p.starts_with("127.0.0.1:")), "{detail}");
    assert!(detail["uptimeMs"].as_u64().is_some_and(|u| u > 0), "{detail}");
    assert!(detail["totalBytesIn"].as_u64().is_some_and(|b| b > 0), "{detail}");
    assert!(detail["viewers"].is_u64(), "{detail}");
    assert!(detail["llhls"]["audio2"]["part"].is_u64(), "{detail}");
    let tracks = detail["input"]["tracks"].as_array().cloned().unwrap_or_default();
    assert_eq!(tracks.len(), 2, "{detail}");
    let video = &tracks[0]["video"];
    assert_eq!(tracks[0]["type"], "Video");
    assert_eq!(tracks[0]["name"], "video1");
    assert_eq!(video["codec"], "H264");
    assert!(video["codecString"].as_str().is_some_and(|c| c.starts_with("avc1.")), "{video}");
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(320), Some(240)), "{video}");
    assert!(video["framerate"].as_f64().is_some_and(|f| (f - 30.0).abs() < 0.01), "{video}");
    let audio = &tracks[1]["audio"];
    assert_eq!(tracks[1]["type"], "Audio");
    assert_eq!(audio["codec"], "AAC");
    assert_eq!(audio["codecString"], "mp4a.40.2");
    assert_eq!(audio["samplerate"], 48000);
    assert_eq!(audio["channel"], 1);
    assert_eq!(detail["outputs"][0]["tracks"], detail["input"]["tracks"]);
    // The measured bitrate, once a few seconds have been sampled.
    wait_for("a measured video bitrate", Duration::from_secs(10), || {
        let d = s.ok(&detail_path);
        let rate: u64 = d["input"]["tracks"][0]["video"]["bitrate"].as_str()?.parse().ok()?;
        (rate > 10_000).then_some(())
    });

    // A second publisher of the same stream is refused and counted.
    let mut second = ffmpeg_push(&input, "flv", &s.server.rtmp_url("app", "live1"));
    wait_for("the already_live rejection to be counted", Duration::from_secs(15), || {
        let m = s.metrics(http);
        (metric(&m, "lockstep_publish_rejections_total{reason=\"already_live\"}") >= 1.0).then_some(())
    });
    second.wait_timeout(Duration::from_secs(10));

    let m = s.metrics(http);
    assert_eq!(metric(&m, "lockstep_streams"), 1.0);
    assert!(metric(&m, "lockstep_stream_bytes_in_total{stream=\"app/live1\"}") > 0.0);
    assert!(metric(&m, "lockstep_stream_bytes_out_total{stream=\"app/live1\"}") > 0.0);
    assert!(metric(&m, "lockstep_http_responses_total{code_class=\"4xx\"}") >= 1.0);
    assert!(metric(&m, "lockstep_http_responses_total{code_class=\"2xx\"}") >= 2.0);
    assert!(metric(&m, "lockstep_http_request_duration_seconds_count{kind=\"playlist\"}") >= 3.0);
    let inf = metric(&m, "lockstep_http_request_duration_seconds_bucket{kind=\"playlist\",le=\"+Inf\"}");
    assert_eq!(inf, metric(&m, "lockstep_http_request_duration_seconds_count{kind=\"playlist\"}"));
    assert_eq!(metric(&m, "lockstep_stream_ends_total{reason=\"deleted\"}"), 0.0);
    // The same exposition on the API port.
    assert_eq!(metric(&s.metrics(s.api), "lockstep_streams"), 1.0);

    // DELETE ends it: every URL of the stream is 404 within a second.
    let r = request(s.api, "DELETE", &detail_path, Some(GOOD));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({ "statusCode": 200, "message": "OK" }));
    let deleted = Instant::now();
    wait_for("the playlist to answer 404", Duration::from_secs(1), || {
        (http_get(http, "/app/live1/video1.m3u8").0 == 404).then_some(())
    });
    assert!(deleted.elapsed() < Duration::from_secs(1));
    assert_eq!(http_get(http, "/app/live1/llhls.m3u8").0, 404);
    assert_error(&s.get(&detail_path), 404);
    assert_error(&request(s.api, "DELETE", &detail_path, Some(GOOD)), 404);
    let m = s.metrics(http);
    assert_eq!(metric(&m, "lockstep_stream_ends_total{reason=\"deleted\"}"), 1.0);
    assert_eq!(metric(&m, "lockstep_streams"), 0.0);
    assert!(!m.keys().any(|k| k.contains("app/live1")), "the ended stream's series are gone");
    // The publisher was disconnected. (ffmpeg may reconnect-fail quietly;
    // it must not keep the stream.)
    push.wait_timeout(Duration::from_secs(10));
    s.server.wait_log("reason=ended by the server", Duration::from_secs(5));
}
