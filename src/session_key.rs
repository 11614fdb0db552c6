//! Viewer session keys for `OriginMode` false.
//!
//! The master playlist hands each viewer a key; every child URL (media
//! playlists, parts, segments, init) carries it as `?session=KEY`. A key is
//! `v1.{expiry}.{nonce}.{mac}`: `mac` is HMAC-SHA256 over
//! `app/stream|expiry|nonce` with the secret both nodes of a pair share, so
//! either node verifies a key the other issued, and a player (or CDN) that
//! switches nodes keeps working. Keys bind to one stream and expire.
//!
//! Only the HTTP layer uses this, and only when OriginMode is false: those
//! responses are per viewer by design and never cached.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The query parameter that carries a key.
pub const PARAM: &str = "session";

/// How long an issued key stays valid.
pub const LIFETIME_S: i64 = 24 * 3600;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no session key")]
    Missing,
    #[error("malformed session key")]
    Malformed,
    #[error("session key expired")]
    Expired,
    #[error("session key is not valid for this stream")]
    BadSignature,
}

fn mac(secret: &[u8], stream: &str, expiry: i64, nonce: &str) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    m.update(stream.as_bytes());
    m.update(b"|");
    m.update(expiry.to_string().as_bytes());
    m.update(b"|");
    m.update(nonce.as_bytes());
    Some(m)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// A new key for `stream` (`app/stream`), valid until `now_s + LIFETIME_S`.
/// `nonce` makes keys of different viewers differ (16 random bytes).
pub fn issue(secret: &[u8], stream: &str, now_s: i64, nonce: [u8; 16]) -> String {
    let expiry = now_s + LIFETIME_S;
    let nonce = hex(&nonce);
    let tag = mac(secret, stream, expiry, &nonce).map(|m| hex(&m.finalize().into_bytes())).unwrap_or_default();
    format!("v1.{expiry}.{nonce}.{tag}")
}

/// Check a key for `stream` at `now_s`. The MAC is compared in constant time.
pub fn verify(secret: &[u8], stream: &str, key: Option<&str>, now_s: i64) -> Result<(), KeyError> {
    let key = key.ok_or(KeyError::Missing)?;
    let mut it = key.split('.');
    let (Some("v1"), Some(expiry), Some(nonce), Some(tag), None) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return Err(KeyError::Malformed);
    };
    let expiry: i64 = expiry.parse().map_err(|_| KeyError::Malformed)?;
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError::Malformed);
    }
    let tag = unhex(tag).ok_or(KeyError::Malformed)?;
    let m = mac(secret, stream, expiry, nonce).ok_or(KeyError::Malformed)?;
    m.verify_slice(&tag).map_err(|_| KeyError::BadSignature)?;
    if now_s > expiry {
        return Err(KeyError::Expired);
    }
    Ok(())
}

/// The key carried in a query string, if any.
pub fn from_query(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|kv| kv.strip_prefix(PARAM)?.strip_prefix('='))
}

/// Append `?session=KEY` (or `&session=KEY`) to a URI.
fn with_key(uri: &str, key: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{PARAM}={key}")
}

/// Rewrite a playlist so that every URI in it carries `key`: URI lines and
/// `URI="..."` attributes.
pub fn rewrite_playlist(text: &str, key: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64 * key.len().min(64));
    for line in text.lines() {
        if line.is_empty() {
            out.push('\n');
            continue;
        }
        if !line.starts_with('#') {
            out.push_str(&with_key(line, key));
        } else if let Some(i) = line.find("URI=\"") {
            let start = i + 5;
            match line[start..].find('"') {
                Some(len) => {
                    out.push_str(&line[..start]);
                    out.push_str(&with_key(&line[start..start + len], key));
                    out.push_str(&line[start + len..]);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"shared by main and backup";

    #[test]
    fn issued_keys_verify_on_any_node_with_the_secret() {
        let k = issue(SECRET, "app/stream", 1_000, [7; 16]);
        assert_eq!(verify(SECRET, "app/stream", Some(&k), 1_000 + 60), Ok(()));
        assert_eq!(verify(SECRET, "app/other", Some(&k), 1_060), Err(KeyError::BadSignature));
        assert_eq!(verify(b"another secret", "app/stream", Some(&k), 1_060), Err(KeyError::BadSignature));
        assert_eq!(verify(SECRET, "app/stream", Some(&k), 1_000 + LIFETIME_S + 1), Err(KeyError::Expired));
        assert_eq!(verify(SECRET, "app/stream", None, 0), Err(KeyError::Missing));
        // Tampering with the expiry breaks the MAC.
        let forged = k.replacen(&(1_000 + LIFETIME_S).to_string(), &(9_000 + LIFETIME_S).to_string(), 1);
        assert_eq!(verify(SECRET, "app/stream", Some(&forged), 1_060), Err(KeyError::BadSignature));
        for bad in
            ["", "v1", "v2.1.2.3", "v1.x.00.00", "v1.1.zz.00", "v1.1.00000000000000000000000000000000.0", "v1.1.2.3.4"]
        {
            assert!(verify(SECRET, "app/stream", Some(bad), 0).is_err(), "{bad:?}");
        }
        // Different nonces give different keys.
        assert_ne!(k, issue(SECRET, "app/stream", 1_000, [8; 16]));
    }

    #[test]
    fn query_and_rewrite() {
        assert_eq!(from_query(Some("_HLS_msn=3&session=abc")), Some("abc"));
        assert_eq!(from_query(Some("sessionx=1")), None);
        assert_eq!(from_query(None), None);
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"v_init.mp4\"\n#EXT-X-PART:DURATION=0.5,URI=\"v_1.0.m4s\",INDEPENDENT=YES\n#EXTINF:2.0,\nv_1.m4s\n";
        let got = rewrite_playlist(text, "K");
        assert_eq!(
            got,
            "#EXTM3U\n#EXT-X-MAP:URI=\"v_init.mp4?session=K\"\n#EXT-X-PART:DURATION=0.5,URI=\"v_1.0.m4s?session=K\",INDEPENDENT=YES\n#EXTINF:2.0,\nv_1.m4s?session=K\n"
        );
    }
}
