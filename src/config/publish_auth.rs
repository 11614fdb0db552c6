//! `VirtualHost/SignedPolicy` and `Application/Providers/PublishKeys`: the
//! publish authentication settings (checked by `ingest::auth`).

use serde::Deserialize;

use super::{child, invalid, warn, ConfigError, Warning};
use crate::config::{PublishKeys, SignedPolicy};

/// Shortest `SecretKey` and publish key: shorter ones can be guessed.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest publish key (it travels in the SRT stream id, at most 512 bytes).
const MAX_KEY_LEN: usize = 128;
const KEY_CHARS: &str = "16 to 128 characters from letters, digits, '-', '.', '_' and '~' (URL-safe)";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawSignedPolicy {
    #[serde(rename = "PolicyQueryKeyName")]
    policy_query_key_name: Option<String>,
    #[serde(rename = "SignatureQueryKeyName")]
    signature_query_key_name: Option<String>,
    #[serde(rename = "SecretKey")]
    secret_key: Option<String>,
    #[serde(rename = "Enables")]
    enables: Option<RawEnables>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawEnables {
    #[serde(rename = "Providers")]
    providers: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawPublishKeys {
    #[serde(rename = "Key")]
    key: Vec<String>,
}

/// A query parameter name: URL-safe, not empty.
fn query_name(path: &str, text: Option<&str>, default: &str) -> Result<String, ConfigError> {
    let name = text.unwrap_or(default);
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(invalid(path, name, "1 to 32 characters from letters, digits, '-', '.', '_' and '~'"))
    }
}

/// The value shown in an error about a secret: its length, never its text.
fn shown(secret: &str) -> String {
    format!("({} characters)", secret.chars().count())
}

pub(super) fn convert_signed_policy(
    raw: Option<&RawSignedPolicy>,
    path: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<SignedPolicy>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let policy_query_key =
        query_name(&child(path, "PolicyQueryKeyName"), raw.policy_query_key_name.as_deref(), "policy")?;
    let signature_query_key =
        query_name(&child(path, "SignatureQueryKeyName"), raw.signature_query_key_name.as_deref(), "signature")?;
    // `key` is the publish key's parameter.
    for (name, element) in [(&policy_query_key, "PolicyQueryKeyName"), (&signature_query_key, "SignatureQueryKeyName")]
    {
        if name == "key" {
            return Err(invalid(&child(path, element), name, "a name other than \"key\" (the publish key's)"));
        }
    }
    if policy_query_key == signature_query_key {
        let p = child(path, "SignatureQueryKeyName");
        return Err(invalid(&p, &signature_query_key, "a name other than PolicyQueryKeyName's"));
    }
    let secret_path = child(path, "SecretKey");
    let secret_key = raw.secret_key.clone().ok_or_else(|| ConfigError::Missing { path: secret_path.clone() })?;
    if secret_key.chars().count() < MIN_SECRET_LEN {
        return Err(invalid(&secret_path, &shown(&secret_key), "a secret of at least 16 characters"));
    }
    let providers_path = format!("{path}/Enables/Providers");
    let list = raw.enables.as_ref().and_then(|e| e.providers.as_deref()).unwrap_or_default();
    let (mut rtmp, mut srt) = (false, false);
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "rtmp" => rtmp = true,
            "srt" => srt = true,
            "mpegts" => warn(
                warnings,
                &providers_path,
                "mpegts: MPEG-TS over UDP carries no URL and cannot be signed; bind it to a private address",
            ),
            _ => warn(warnings, &providers_path, format!("{name}: Lockstep signs RTMP and SRT publish URLs only")),
        }
    }
    if !rtmp && !srt {
        warn(warnings, &providers_path, "lists neither rtmp nor srt: SignedPolicy checks no publisher");
    }
    Ok(Some(SignedPolicy { policy_query_key, signature_query_key, secret_key, rtmp, srt }))
}

pub(super) fn convert_publish_keys(
    raw: Option<&RawPublishKeys>,
    path: &str,
    has_mpegts: bool,
    warnings: &mut Vec<Warning>,
) -> Result<PublishKeys, ConfigError> {
    let Some(raw) = raw else { return Ok(PublishKeys::default()) };
    for (i, key) in raw.key.iter().enumerate() {
        let ok = (MIN_SECRET_LEN..=MAX_KEY_LEN).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !ok {
            return Err(invalid(&format!("{path}/Key[{i}]"), &shown(key), KEY_CHARS));
        }
    }
    if raw.key.is_empty() {
        warn(warnings, path, "no Key: publishing needs no key");
    } else if has_mpegts {
        warn(
            warnings,
            path,
            "MPEG-TS over UDP carries no key: its ports accept any sender; bind them to a private address",
        );
    }
    Ok(PublishKeys(raw.key.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::parse_str;
    use crate::config::{Config, PublishKeys, SignedPolicy};

    const VH: &str = "Server/VirtualHosts/VirtualHost[0]";
    const APP: &str = "Server/VirtualHosts/VirtualHost[0]/Applications/Application[0]";
    const SECRET: &str = "0123456789abcdef";

    /// One virtual host with `vhost` (SignedPolicy) and one application
    /// whose providers hold `providers`.
    fn server(vhost: &str, providers: &str) -> String {
        format!(
            "<Server><Bind><Providers><RTMP><Port>1935</Port></RTMP><SRT><Port>9999</Port></SRT>\
             <MPEGTS><Port>4000/udp</Port></MPEGTS></Providers>\
             <Publishers><LLHLS><Port>3333</Port></LLHLS></Publishers></Bind>\
             <VirtualHosts><VirtualHost><Name>default</Name>{vhost}<Applications><Application><Name>app</Name>\
             <Providers><RTMP/><SRT/>{providers}</Providers><Publishers><HLS/></Publishers>\
             </Application></Applications></VirtualHost>\
             </VirtualHosts></Server>"
        )
    }

    fn env(name: &str) -> Option<String> {
        (name == "PUBLISH_KEY").then(|| "from-the-environment-123".to_owned())
    }

    fn parse(xml: &str) -> Result<(Config, Vec<super::Warning>), super::ConfigError> {
        parse_str(xml, &env)
    }

    #[test]
    fn signed_policy_and_publish_keys() {
        let xml = server(
            &format!(
                "<SignedPolicy><PolicyQueryKeyName>p</PolicyQueryKeyName>\
                 <SignatureQueryKeyName>s</SignatureQueryKeyName><SecretKey>{SECRET}</SecretKey>\
                 <Enables><Providers>rtmp, SRT</Providers></Enables></SignedPolicy>"
            ),
            "<PublishKeys><Key>${env:PUBLISH_KEY}</Key><Key>second-key-0123456789</Key></PublishKeys>",
        );
        let (config, warnings) = parse(&xml).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(warnings, vec![]);
        let want = SignedPolicy {
            policy_query_key: "p".into(),
            signature_query_key: "s".into(),
            secret_key: SECRET.into(),
            rtmp: true,
            srt: true,
        };
        assert_eq!(config.vhosts[0].signed_policy, Some(want));
        let keys = PublishKeys(vec!["from-the-environment-123".into(), "second-key-0123456789".into()]);
        assert_eq!(config.vhosts[0].apps[0].publish_keys, keys);
        // Debug never shows a secret.
        let debug = format!("{config:?}");
        assert!(!debug.contains(SECRET) && !debug.contains("from-the-environment"), "{debug}");

        // Defaults: OME's query names; absent elements: nothing checked.
        let xml = server(&format!("<SignedPolicy><SecretKey>{SECRET}</SecretKey></SignedPolicy>"), "");
        let (config, warnings) = parse(&xml).unwrap_or_else(|e| panic!("{e}"));
        let sp = config.vhosts[0].signed_policy.clone().unwrap_or_else(|| panic!("no SignedPolicy"));
        assert_eq!((sp.policy_query_key.as_str(), sp.signature_query_key.as_str()), ("policy", "signature"));
        assert!(!sp.rtmp && !sp.srt);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].path, format!("{VH}/SignedPolicy/Enables/Providers"));
        let (config, _) = parse(&server("", "")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.vhosts[0].signed_policy, None);
        assert_eq!(config.vhosts[0].apps[0].publish_keys, PublishKeys::default());
    }

    #[test]
    fn warnings_name_what_is_not_protected() {
        let xml = server(
            &format!(
                "<SignedPolicy><SecretKey>{SECRET}</SecretKey><Enables><Providers>rtmp,mpegts,webrtc</Providers>\
                 <Publishers>llhls</Publishers></Enables></SignedPolicy>"
            ),
            "<MPEGTS/><PublishKeys><Key>0123456789abcdefgh</Key></PublishKeys>",
        );
        let (_, warnings) = parse(&xml).unwrap_or_else(|e| panic!("{e}"));
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        let rows = [
            (format!("{VH}/SignedPolicy/Enables/Providers"), "mpegts: MPEG-TS over UDP carries no URL"),
            (format!("{VH}/SignedPolicy/Enables/Providers"), "webrtc: Lockstep signs RTMP and SRT"),
            (format!("{VH}/SignedPolicy/Enables/Publishers"), "ignored by Lockstep"),
            (format!("{APP}/Providers/PublishKeys"), "MPEG-TS over UDP carries no key"),
        ];
        for (path, words) in rows {
            assert!(text.iter().any(|t| t.starts_with(&path) && t.contains(words)), "{path}: {words} in {text:#?}");
        }
    }

    #[test]
    fn invalid_settings_name_the_path_and_hide_the_secret() {
        let sp = |body: &str| server(&format!("<SignedPolicy>{body}</SignedPolicy>"), "");
        let keys = |body: &str| server("", &format!("<PublishKeys>{body}</PublishKeys>"));
        let secret = format!("<SecretKey>{SECRET}</SecretKey>");
        // (xml, path the message starts with, other text the message contains)
        let rows: Vec<(String, String, &str)> = vec![
            (sp(""), format!("{VH}/SignedPolicy/SecretKey"), "missing"),
            (sp("<SecretKey>short-secret</SecretKey>"), format!("{VH}/SignedPolicy/SecretKey"), "\"(12 characters)\""),
            (
                sp(&format!("{secret}<PolicyQueryKeyName>a b</PolicyQueryKeyName>")),
                format!("{VH}/SignedPolicy/PolicyQueryKeyName"),
                "1 to 32 characters",
            ),
            (
                sp(&format!(
                    "{secret}<PolicyQueryKeyName>sig</PolicyQueryKeyName>\
                     <SignatureQueryKeyName>sig</SignatureQueryKeyName>"
                )),
                format!("{VH}/SignedPolicy/SignatureQueryKeyName"),
                "other than PolicyQueryKeyName",
            ),
            (
                sp(&format!("{secret}<SignatureQueryKeyName>key</SignatureQueryKeyName>")),
                format!("{VH}/SignedPolicy/SignatureQueryKeyName"),
                "the publish key's",
            ),
            (keys("<Key>short</Key>"), format!("{APP}/Providers/PublishKeys/Key[0]"), "\"(5 characters)\""),
            (
                keys("<Key>0123456789abcdef</Key><Key>with&amp;ampersand-0123</Key>"),
                format!("{APP}/Providers/PublishKeys/Key[1]"),
                "URL-safe",
            ),
            (keys("<Key>0123456789abcdef,m=x</Key>"), format!("{APP}/Providers/PublishKeys/Key[0]"), "URL-safe"),
            (keys(&format!("<Key>{}</Key>", "k".repeat(129))), format!("{APP}/Providers/PublishKeys/Key[0]"), "128"),
        ];
        for (xml, path, words) in rows {
            let e = match parse(&xml) {
                Ok(_) => panic!("accepted: {xml}"),
                Err(e) => e.to_string(),
            };
            assert!(e.starts_with(&path), "{e}\n  should start with {path}");
            assert!(e.contains(words), "{e}\n  should contain {words}");
            for secret in ["short-secret", "with&ampersand", "0123456789abcdef,m=x"] {
                assert!(!e.contains(secret), "{e} shows the secret");
            }
        }
    }
}
