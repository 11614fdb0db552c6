//! Publish authentication for RTMP and SRT (see `docs/security.md`).
//!
//! Two checks, each applied when configured, both when both are:
//!
//! - **Publish key** (`Application/Providers/PublishKeys/Key`): the query
//!   parameter `key` must equal one of the application's keys.
//! - **Signed policy** (`VirtualHost/SignedPolicy`, OvenMediaEngine's
//!   scheme): the query carries `policy`, base64url of a JSON object
//!   (`url_expire`, optional `url_activate`, `stream_expire`, `allow_ip`;
//!   times in milliseconds since the Unix epoch), and `signature`,
//!   base64url (no padding) of HMAC-SHA1(`SecretKey`, the URL without its
//!   signature parameter). The URL is what the publisher presented: for
//!   RTMP the connect's `tcUrl` (with `:1935` added when it names no port),
//!   `/` and the publish name with its query; for SRT the percent-decoded
//!   stream id (`srt://host:port/app/stream?policy=...`, or `app/stream?...`,
//!   or `#!::r=app/stream?...,m=publish`).
//!
//! The query never reaches the stream name, so both nodes of a pair name
//! the stream alike, and never a log line, metric or error message: every
//! message here says what failed, not with what.

use std::net::IpAddr;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use tracing::warn;

use super::{Provider, Publisher};
use crate::config::{Config, SignedPolicy};
use crate::store::StreamKey;

/// The query parameter of the publish key.
pub const KEY_PARAM: &str = "key";
/// The port OvenMediaEngine puts in an RTMP URL that names none.
const RTMP_DEFAULT_PORT: u16 = 1935;
/// Longest policy parameter decoded.
const MAX_POLICY: usize = 1024;

/// Why a publisher was refused. No variant holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no publish key: add ?key=... to the stream name")]
    KeyMissing,
    #[error("wrong publish key")]
    KeyWrong,
    #[error("query parameter {0:?} appears more than once")]
    Repeated(String),
    #[error("no signed policy: the URL needs the {policy:?} and {signature:?} query parameters")]
    PolicyMissing { policy: String, signature: String },
    #[error("the RTMP connect carried no tcUrl: the signed URL cannot be checked")]
    NoUrl,
    #[error("the signature is not base64url")]
    SignatureEncoding,
    #[error("the signature does not match the URL")]
    SignatureWrong,
    #[error("malformed policy: {0}")]
    Policy(String),
    #[error("the signed URL expired at {at} ms since the epoch ({ago_s} s ago)")]
    Expired { at: u64, ago_s: u64 },
    #[error("the signed URL is valid from {at} ms since the epoch ({in_s} s from now)")]
    NotYetActive { at: u64, in_s: u64 },
    #[error("the policy's stream_expire ({at} ms since the epoch) has passed")]
    StreamExpired { at: u64 },
    #[error("the publisher's address {ip} is outside the policy's allow_ip {allow}")]
    IpNotAllowed { ip: IpAddr, allow: String },
}

/// A publish request to check.
pub struct Request<'a> {
    pub provider: Provider,
    pub app: &'a str,
    /// The URL as presented, query included (see the module documentation).
    pub url: &'a str,
    pub peer: IpAddr,
}

/// What an accepted publisher is allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// The policy's `stream_expire`: the stream is ended then.
    pub stream_expire_ms: Option<u64>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Check `req` against the configuration at `now_ms`.
pub fn authorize(config: &Config, req: &Request<'_>, now_ms: u64) -> Result<Grant, AuthError> {
    if !matches!(req.provider, Provider::Rtmp | Provider::Srt) {
        return Ok(Grant::default());
    }
    let params = Params::parse(req.url);
    let mut grant = Grant::default();
    if let Some(app) = config.app(req.app) {
        if !app.publish_keys.0.is_empty() {
            let given = params.get(KEY_PARAM)?.ok_or(AuthError::KeyMissing)?;
            check_key(given, &app.publish_keys.0)?;
        }
    }
    if let Some(sp) = config.signed_policy(req.app) {
        let enabled = match req.provider {
            Provider::Rtmp => sp.rtmp,
            Provider::Srt => sp.srt,
            Provider::Mpegts => false,
        };
        if enabled {
            if req.provider == Provider::Rtmp && !req.url.contains("://") {
                return Err(AuthError::NoUrl);
            }
            grant = check_signed_policy(sp, &params, req.peer, now_ms)?;
        }
    }
    Ok(grant)
}

/// `given` equals one of `keys`, compared in constant time (digests, so
/// neither the content nor the length of a key leaks through timing).
fn check_key(given: &str, keys: &[String]) -> Result<(), AuthError> {
    let given = Sha256::digest(given.as_bytes());
    let mut found = Choice::from(0);
    for k in keys {
        found |= Sha256::digest(k.as_bytes()).ct_eq(&given);
    }
    if bool::from(found) {
        Ok(())
    } else {
        Err(AuthError::KeyWrong)
    }
}

/// The policy of a signed URL.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    url_expire: u64,
    url_activate: Option<u64>,
    stream_expire: Option<u64>,
    allow_ip: Option<String>,
}

fn check_signed_policy(sp: &SignedPolicy, params: &Params<'_>, peer: IpAddr, now: u64) -> Result<Grant, AuthError> {
    let missing =
        || AuthError::PolicyMissing { policy: sp.policy_query_key.clone(), signature: sp.signature_query_key.clone() };
    let policy = params.get(&sp.policy_query_key)?.ok_or_else(missing)?;
    let signature = params.get(&sp.signature_query_key)?.ok_or_else(missing)?;
    let signature = decode_b64(signature).ok_or(AuthError::SignatureEncoding)?;
    let message = params.without(&sp.signature_query_key);
    let mut mac = hmac_sha1(&sp.secret_key);
    mac.update(message.as_bytes());
    // Constant time (hmac's verify_slice).
    mac.verify_slice(&signature).map_err(|_| AuthError::SignatureWrong)?;

    // Signed: the policy is the server's own.
    if policy.len() > MAX_POLICY {
        return Err(AuthError::Policy(format!("longer than {MAX_POLICY} characters")));
    }
    let json = decode_b64(policy).ok_or_else(|| AuthError::Policy("not base64url".into()))?;
    let p: Policy = serde_json::from_slice(&json).map_err(|e| AuthError::Policy(e.to_string()))?;
    if now >= p.url_expire {
        return Err(AuthError::Expired { at: p.url_expire, ago_s: (now - p.url_expire) / 1000 });
    }
    if let Some(at) = p.url_activate.filter(|&at| now < at) {
        return Err(AuthError::NotYetActive { at, in_s: (at - now).div_ceil(1000) });
    }
    if let Some(at) = p.stream_expire.filter(|&at| now >= at) {
        return Err(AuthError::StreamExpired { at });
    }
    if let Some(allow) = &p.allow_ip {
        let cidr = Cidr::parse(allow).ok_or_else(|| AuthError::Policy(format!("allow_ip {allow:?} is not a CIDR")))?;
        if !cidr.contains(peer) {
            return Err(AuthError::IpNotAllowed { ip: peer.to_canonical(), allow: allow.clone() });
        }
    }
    Ok(Grant { stream_expire_ms: p.stream_expire })
}

fn hmac_sha1(secret: &str) -> Hmac<Sha1> {
    // HMAC takes keys of any length.
    <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

/// base64url, with or without padding.
fn decode_b64(s: &str) -> Option<Vec<u8>> {
    if s.ends_with('=') {
        URL_SAFE.decode(s).ok()
    } else {
        URL_SAFE_NO_PAD.decode(s).ok()
    }
}

/// An IPv4 or IPv6 network, `addr/len` or a bare address.
struct Cidr {
    addr: IpAddr,
    len: u32,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a.trim().parse::<IpAddr>().ok()?, Some(l.trim().parse::<u32>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        (len <= max).then_some(Cidr { addr, len })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.len).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.len).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Where the query of a presented URL is: after the first `?`, up to the
/// end, or in the SRT access control form (`#!::r=app/stream?...,m=...`)
/// up to the next `,`.
fn query_span(url: &str) -> Option<Range<usize>> {
    let start = url.find('?')? + 1;
    let end = if url.starts_with("#!::") { url[start..].find(',').map_or(url.len(), |i| start + i) } else { url.len() };
    Some(start..end)
}

/// The query parameters of a presented URL.
struct Params<'a> {
    url: &'a str,
    span: Option<Range<usize>>,
}

impl<'a> Params<'a> {
    fn parse(url: &'a str) -> Params<'a> {
        Params { url, span: query_span(url) }
    }

    fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        let q = self.span.clone().map_or("", |r| &self.url[r]);
        q.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, "")))
    }

    /// The value of `name`; an error when it appears twice.
    fn get(&self, name: &str) -> Result<Option<&'a str>, AuthError> {
        let mut found = None;
        for (k, v) in self.pairs() {
            if k == name && found.replace(v).is_some() {
                return Err(AuthError::Repeated(name.to_string()));
            }
        }
        Ok(found)
    }

    /// The URL without the parameter `name` (and without `?` when nothing
    /// is left of the query): what the signature covers.
    fn without(&self, name: &str) -> String {
        let Some(span) = self.span.clone() else { return self.url.to_string() };
        let kept: Vec<&str> = self.url[span.clone()]
            .split('&')
            .filter(|p| !p.is_empty() && p.split_once('=').map_or(*p, |(k, _)| k) != name)
            .collect();
        let head = &self.url[..span.start - 1];
        let tail = &self.url[span.end..];
        if kept.is_empty() {
            format!("{head}{tail}")
        } else {
            format!("{head}?{}{tail}", kept.join("&"))
        }
    }
}

/// A URL or stream id with its query (which may hold a key or a signature)
/// replaced by `?<redacted>`, for log lines. A percent-encoded `?` counts.
pub fn redact(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let cut = [s.find('?'), lower.find("%3f")].into_iter().flatten().min();
    match cut {
        Some(i) => format!("{}?<redacted>", &s[..i]),
        None => s.to_string(),
    }
}

/// The presented RTMP URL: `tcUrl` (with the default port added when it
/// names none) and the publish name with its query.
pub fn rtmp_url(tc_url: Option<&str>, publish_name: &str) -> String {
    match tc_url {
        Some(tc) => format!("{}/{publish_name}", with_rtmp_port(tc.trim_end_matches('/'))),
        // No tcUrl: a signature cannot match; a publish key still can.
        None => publish_name.to_string(),
    }
}

/// `rtmp://host/app` → `rtmp://host:1935/app`.
fn with_rtmp_port(url: &str) -> String {
    let scheme = "rtmp://";
    if !url.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme)) {
        return url.to_string();
    }
    let rest = &url[scheme.len()..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // `[v6]:port`, `host:port`.
    let host_end = authority.rfind(']').map_or(0, |i| i + 1);
    if authority[host_end..].contains(':') {
        return url.to_string();
    }
    format!("{}{authority}:{RTMP_DEFAULT_PORT}{}", &url[..scheme.len()], &rest[end..])
}

/// The `tcUrl` of an AMF0 `connect` command body, if any.
pub fn connect_tc_url(body: &[u8]) -> Option<String> {
    use rml_rtmp::rml_amf0::{deserialize, Amf0Value};
    let values = deserialize(&mut std::io::Cursor::new(body)).ok()?;
    match values.get(2)? {
        Amf0Value::Object(props) => match props.get("tcUrl")? {
            Amf0Value::Utf8String(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// SRT: the stream id split into what names the stream (query removed,
/// also what is logged) and the percent-decoded stream id with its query
/// (what is checked). A stream id that does not percent-decode is passed on
/// redacted, to be refused by the stream id parser.
pub fn split_srt_stream_id(raw: &str) -> (String, String) {
    let Ok(decoded) = super::srt::percent_decode(raw) else { return (redact(raw), String::new()) };
    match query_span(&decoded) {
        None => (raw.to_string(), decoded),
        Some(span) => {
            let clean = format!("{}{}", &decoded[..span.start - 1], &decoded[span.end..]);
            // The parser decodes again: keep a literal `%` literal.
            (clean.replace('%', "%25"), decoded)
        }
    }
}

/// End the stream at the policy's `stream_expire`, unless it ends first.
pub fn enforce(grant: &Grant, publisher: &Publisher, provider: Provider) {
    let Some(at) = grant.stream_expire_ms else { return };
    let wait = Duration::from_millis(at.saturating_sub(now_ms()));
    let ended = publisher.ended();
    let key: StreamKey = publisher.key().clone();
    tokio::spawn(async move {
        tokio::select! {
            () = ended.cancelled() => {}
            () = tokio::time::sleep(wait) => {
                warn!(provider = %provider, stream = %key, "the signed policy's stream_expire has passed: ending the stream");
                ended.cancel();
            }
        }
    });
}

/// A signed publish URL (OvenMediaEngine's SignedPolicy) for `url`:
/// `url?policy=...&signature=...` (appended with `&` when `url` has a
/// query). `url` must be the URL exactly as the publisher will present it;
/// for RTMP with the port.
pub fn sign_url(url: &str, sp_keys: (&str, &str), secret: &str, policy: &SignPolicy) -> String {
    let (policy_key, signature_key) = sp_keys;
    let mut json = serde_json::Map::new();
    if let Some(a) = policy.url_activate {
        json.insert("url_activate".into(), a.into());
    }
    json.insert("url_expire".into(), policy.url_expire.into());
    if let Some(s) = policy.stream_expire {
        json.insert("stream_expire".into(), s.into());
    }
    if let Some(ip) = &policy.allow_ip {
        json.insert("allow_ip".into(), ip.clone().into());
    }
    let encoded = URL_SAFE_NO_PAD.encode(serde_json::Value::Object(json).to_string());
    let with_policy = append_param(url, policy_key, &encoded);
    let mut mac = hmac_sha1(secret);
    mac.update(with_policy.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    append_param(&with_policy, signature_key, &signature)
}

/// `url` with `name=value` added to its query (inside the `r=` entry of an
/// SRT access control stream id).
fn append_param(url: &str, name: &str, value: &str) -> String {
    match query_span(url) {
        Some(span) => format!("{}&{name}={value}{}", &url[..span.end], &url[span.end..]),
        None if url.starts_with("#!::") => {
            // After the r= value.
            let r = url.find("r=").map(|i| i + 2).unwrap_or(url.len());
            let end = url[r..].find(',').map_or(url.len(), |i| r + i);
            format!("{}?{name}={value}{}", &url[..end], &url[end..])
        }
        None => format!("{url}?{name}={value}"),
    }
}

/// The policy of [`sign_url`]: times in ms since the Unix epoch.
#[derive(Clone, Debug, Default)]
pub struct SignPolicy {
    pub url_expire: u64,
    pub url_activate: Option<u64>,
    pub stream_expire: Option<u64>,
    pub allow_ip: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PublishKeys;
    use crate::ingest::mpegts::testing;

    const SECRET: &str = "0123456789abcdef-secret";
    const KEY: &str = "k3y-0123456789abcdef";
    const NOW: u64 = 1_700_000_000_000;

    fn sp() -> SignedPolicy {
        SignedPolicy {
            policy_query_key: "policy".into(),
            signature_query_key: "signature".into(),
            secret_key: SECRET.into(),
            rtmp: true,
            srt: true,
        }
    }

    fn config(keys: &[&str], signed: bool) -> Config {
        let (registry, _shutdown) = testing::registry(vec![testing::app("app", None, None, None)]);
        let mut c = registry.config().clone();
        c.vhosts[0].apps[0].publish_keys = PublishKeys(keys.iter().map(|k| k.to_string()).collect());
        c.vhosts[0].signed_policy = signed.then(sp);
        c
    }

    fn check(c: &Config, provider: Provider, url: &str, peer: &str) -> Result<Grant, AuthError> {
        let peer: IpAddr = peer.parse().unwrap_or_else(|e| panic!("{peer}: {e}"));
        authorize(c, &Request { provider, app: "app", url, peer }, NOW)
    }

    fn signed(url: &str, policy: SignPolicy) -> String {
        sign_url(url, ("policy", "signature"), SECRET, &policy)
    }

    fn expiring(ms: u64) -> SignPolicy {
        SignPolicy { url_expire: ms, ..Default::default() }
    }

    /// OvenMediaEngine's documented example: the policy is base64url of the
    /// JSON as written, the signature HMAC-SHA1 over the URL with it.
    #[test]
    fn signature_is_hmac_sha1_over_the_url_without_it() {
        let url = signed("rtmp://h:1935/app/s", expiring(NOW + 1000));
        let (unsigned, sig) = url.rsplit_once("&signature=").unwrap_or_else(|| panic!("{url}"));
        let mut mac = hmac_sha1(SECRET);
        mac.update(unsigned.as_bytes());
        assert_eq!(sig, URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        let policy = unsigned.split_once("?policy=").map(|(_, p)| p).unwrap_or_default();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(policy).ok(),
            Some(format!("{{\"url_expire\":{}}}", NOW + 1000).into_bytes())
        );
    }

    #[test]
    fn publish_keys() {
        let c = config(&[KEY, "second-key-0123456789"], false);
        let rows: Vec<(String, Result<(), AuthError>)> = vec![
            ("app/s".into(), Err(AuthError::KeyMissing)),
            ("app/s?key=".into(), Err(AuthError::KeyWrong)),
            ("app/s?key=wrong".into(), Err(AuthError::KeyWrong)),
            (format!("app/s?key={KEY}x"), Err(AuthError::KeyWrong)),
            (format!("app/s?key={KEY}"), Ok(())),
            ("app/s?key=second-key-0123456789".into(), Ok(())),
            (format!("app/s?a=b&key={KEY}&c"), Ok(())),
            (format!("app/s?key={KEY}&key={KEY}"), Err(AuthError::Repeated("key".into()))),
            (format!("#!::r=app/s?key={KEY},m=publish"), Ok(())),
            (format!("#!::r=app/s,m=publish?key={KEY}"), Ok(())),
            (format!("rtmp://h:1935/app/s?key={KEY}"), Ok(())),
        ];
        for (url, want) in rows {
            assert_eq!(check(&c, Provider::Srt, &url, "10.0.0.1").map(|_| ()), want, "{url}");
        }
        // MPEG-TS carries no URL: never checked.
        assert!(check(&c, Provider::Mpegts, "app/s", "10.0.0.1").is_ok());
        // No keys: anything goes.
        assert!(check(&config(&[], false), Provider::Rtmp, "app/s", "10.0.0.1").is_ok());
    }

    #[test]
    fn signed_policies() {
        let c = config(&[], true);
        let base = "srt://h:9999/app/s";
        let ok = signed(base, expiring(NOW + 60_000));
        let tampered_path = ok.replace("/app/s?", "/app/t?");
        let tampered_sig = {
            let (head, sig) = ok.rsplit_once('=').unwrap_or_default();
            let flipped = if sig.starts_with('A') { sig.replacen('A', "B", 1) } else { format!("A{}", &sig[1..]) };
            format!("{head}={flipped}")
        };
        let other_secret = sign_url(base, ("policy", "signature"), "another secret 0123456", &expiring(NOW + 60_000));
        let forged_policy = {
            // Someone else's policy with a later expiry, the old signature.
            let later = signed(base, expiring(NOW + 99_000_000));
            let policy = later.split("policy=").nth(1).and_then(|p| p.split('&').next()).unwrap_or_default();
            let sig = ok.split("signature=").nth(1).unwrap_or_default();
            format!("{base}?policy={policy}&signature={sig}")
        };
        let missing = || AuthError::PolicyMissing { policy: "policy".into(), signature: "signature".into() };
        let rows: Vec<(String, &str, Result<Grant, AuthError>)> = vec![
            (ok.clone(), "10.0.0.1", Ok(Grant::default())),
            (base.into(), "10.0.0.1", Err(missing())),
            (ok.split("&signature").next().unwrap_or_default().into(), "10.0.0.1", Err(missing())),
            (tampered_path, "10.0.0.1", Err(AuthError::SignatureWrong)),
            (tampered_sig, "10.0.0.1", Err(AuthError::SignatureWrong)),
            (other_secret, "10.0.0.1", Err(AuthError::SignatureWrong)),
            (forged_policy, "10.0.0.1", Err(AuthError::SignatureWrong)),
            (format!("{base}?policy=e30&signature=!!"), "10.0.0.1", Err(AuthError::SignatureEncoding)),
            (signed(base, expiring(NOW)), "10.0.0.1", Err(AuthError::Expired { at: NOW, ago_s: 0 })),
            (signed(base, expiring(NOW - 61_000)), "10.0.0.1", Err(AuthError::Expired { at: NOW - 61_000, ago_s: 61 })),
            (
                signed(base, SignPolicy { url_activate: Some(NOW + 1500), ..expiring(NOW + 60_000) }),
                "10.0.0.1",
                Err(AuthError::NotYetActive { at: NOW + 1500, in_s: 2 }),
            ),
            (
                signed(base, SignPolicy { stream_expire: Some(NOW + 5000), ..expiring(NOW + 60_000) }),
                "10.0.0.1",
                Ok(Grant { stream_expire_ms: Some(NOW + 5000) }),
            ),
            (
                signed(base, SignPolicy { stream_expire: Some(NOW), ..expiring(NOW + 60_000) }),
                "10.0.0.1",
                Err(AuthError::StreamExpired { at: NOW }),
            ),
            (
                signed(base, SignPolicy { allow_ip: Some("10.0.0.0/24".into()), ..expiring(NOW + 60_000) }),
                "10.0.0.99",
                Ok(Grant::default()),
            ),
            (
                signed(base, SignPolicy { allow_ip: Some("10.0.0.0/24".into()), ..expiring(NOW + 60_000) }),
                "::ffff:10.0.0.7",
                Ok(Grant::default()),
            ),
            (
                signed(base, SignPolicy { allow_ip: Some("10.0.0.0/24".into()), ..expiring(NOW + 60_000) }),
                "10.0.1.1",
                Err(AuthError::IpNotAllowed {
                    ip: "10.0.1.1".parse().unwrap_or(IpAddr::from([0; 4])),
                    allow: "10.0.0.0/24".into(),
                }),
            ),
            (
                signed(base, SignPolicy { allow_ip: Some("nope".into()), ..expiring(NOW + 60_000) }),
                "10.0.1.1",
                Err(AuthError::Policy("allow_ip \"nope\" is not a CIDR".into())),
            ),
            // The signed access control and plain forms.
            (signed("#!::r=app/s,m=publish", expiring(NOW + 1)), "10.0.0.1", Ok(Grant::default())),
            (signed("app/s", expiring(NOW + 1)), "10.0.0.1", Ok(Grant::default())),
        ];
        for (url, peer, want) in rows {
            assert_eq!(check(&c, Provider::Srt, &url, peer), want, "{url} from {peer}");
        }
        // Signed with unknown fields: refused as malformed.
        let json = URL_SAFE_NO_PAD.encode(format!("{{\"url_expire\":{},\"max_bitrate\":1}}", NOW + 1000));
        let unsigned = format!("{base}?policy={json}");
        let mut mac = hmac_sha1(SECRET);
        mac.update(unsigned.as_bytes());
        let url = format!("{unsigned}&signature={}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        assert!(matches!(check(&c, Provider::Srt, &url, "10.0.0.1"), Err(AuthError::Policy(_))));
        // Enables/Providers: SRT only, RTMP unchecked.
        let mut c = c;
        c.vhosts[0].signed_policy = Some(SignedPolicy { rtmp: false, ..sp() });
        assert!(check(&c, Provider::Rtmp, "rtmp://h:1935/app/s", "10.0.0.1").is_ok());
        assert_eq!(check(&c, Provider::Srt, base, "10.0.0.1"), Err(missing()));
    }

    #[test]
    fn key_and_policy_together() {
        let c = config(&[KEY], true);
        let url = signed(&format!("rtmp://h:1935/app/s?key={KEY}"), expiring(NOW + 1000));
        assert!(check(&c, Provider::Rtmp, &url, "10.0.0.1").is_ok());
        let no_key = signed("rtmp://h:1935/app/s", expiring(NOW + 1000));
        assert_eq!(check(&c, Provider::Rtmp, &no_key, "10.0.0.1"), Err(AuthError::KeyMissing));
        // The key is covered by the signature.
        let swapped = url.replace(KEY, "k3y-other-0123456789");
        let c2 = config(&[KEY, "k3y-other-0123456789"], true);
        assert_eq!(check(&c2, Provider::Rtmp, &swapped, "10.0.0.1"), Err(AuthError::SignatureWrong));
    }

    #[test]
    fn rtmp_urls() {
        assert_eq!(rtmp_url(Some("rtmp://h/app"), "s?k=v"), "rtmp://h:1935/app/s?k=v");
        assert_eq!(rtmp_url(Some("rtmp://h:19350/app/"), "s"), "rtmp://h:19350/app/s");
        assert_eq!(rtmp_url(Some("RTMP://[::1]/app"), "s"), "RTMP://[::1]:1935/app/s");
        assert_eq!(rtmp_url(Some("rtmp://[::1]:5/app"), "s"), "rtmp://[::1]:5/app/s");
        assert_eq!(rtmp_url(None, "s?k=v"), "s?k=v");
    }

    #[test]
    fn tc_url_of_a_connect_command() {
        use rml_rtmp::rml_amf0::{serialize, Amf0Value};
        let connect = |props: Vec<(&str, Amf0Value)>| {
            let props = props.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let values =
                vec![Amf0Value::Utf8String("connect".into()), Amf0Value::Number(1.0), Amf0Value::Object(props)];
            serialize(&values).unwrap_or_else(|e| panic!("{e}"))
        };
        let tc = Amf0Value::Utf8String("rtmp://h:1935/app".into());
        let app = Amf0Value::Utf8String("app".into());
        assert_eq!(
            connect_tc_url(&connect(vec![("app", app.clone()), ("tcUrl", tc)])),
            Some("rtmp://h:1935/app".into())
        );
        assert_eq!(connect_tc_url(&connect(vec![("app", app)])), None);
        assert_eq!(connect_tc_url(&connect(vec![("tcUrl", Amf0Value::Number(3.0))])), None);
        assert_eq!(connect_tc_url(b"\x02\x00"), None);
        assert_eq!(connect_tc_url(b""), None);
    }

    #[test]
    fn srt_stream_ids_lose_their_query() {
        let rows = [
            ("app/s", "app/s"),
            ("app/s?key=abc", "app/s"),
            ("srt%3A%2F%2Fh%3A9%2Fapp%2Fs%3Fpolicy%3Dx%26signature%3Dy", "srt://h:9/app/s"),
            ("#!::r=app/s?key=abc,m=publish", "#!::r=app/s,m=publish"),
            ("#!::r=app/s?key=abc", "#!::r=app/s"),
            ("app/s?x=%25", "app/s"),
            ("app/s%3Fkey=%zz", "app/s?<redacted>"),
        ];
        for (raw, clean) in rows {
            assert_eq!(split_srt_stream_id(raw).0, clean, "{raw}");
        }
        let (_, full) = split_srt_stream_id("srt%3A%2F%2Fh%3A9%2Fapp%2Fs%3Fkey%3Dabc");
        assert_eq!(full, "srt://h:9/app/s?key=abc");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("app/s?key=secret"), "app/s?<redacted>");
        assert_eq!(redact("app%2Fs%3Fkey%3Dsecret"), "app%2Fs?<redacted>");
        assert_eq!(redact("app/s"), "app/s");
        for e in [
            AuthError::KeyWrong,
            AuthError::SignatureWrong,
            AuthError::PolicyMissing { policy: "policy".into(), signature: "signature".into() },
        ] {
            assert!(!e.to_string().contains(KEY) && !e.to_string().contains(SECRET));
        }
    }

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{s}: {e}"));
        let rows = [
            ("192.168.0.0/16", "192.168.4.5", true),
            ("192.168.0.0/16", "192.169.0.1", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3/32", "10.1.2.4", false),
            ("2001:db8::/32", "2001:db8::1", true),
            ("2001:db8::/32", "10.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.9.9.9", true),
        ];
        for (net, addr, want) in rows {
            let c = Cidr::parse(net).unwrap_or_else(|| panic!("{net}"));
            assert_eq!(c.contains(ip(addr)), want, "{addr} in {net}");
        }
        for bad in ["10.0.0.0/33", "x/8", "10.0.0.0/", "::/129"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }
}
