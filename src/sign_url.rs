//! `lockstep sign-url`: make a signed publish URL (OvenMediaEngine's
//! SignedPolicy) for RTMP or SRT, with the secret of the configuration or
//! of an environment variable (never of the command line, which other users
//! of the machine can read).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config;
use crate::ingest::auth::{self, SignPolicy};

pub const USAGE: &str = "usage: lockstep sign-url URL [--config PATH | --secret-env NAME] [--expire-in SECONDS]
                         [--activate-in SECONDS] [--stream-expire-in SECONDS] [--allow-ip CIDR] [--streamid]
  URL: rtmp://HOST:PORT/APP/STREAM or srt://HOST:PORT/APP/STREAM, optionally with ?key=PUBLISH_KEY
  The secret is the SecretKey of the SignedPolicy of the virtual host holding APP in the configuration
  (default conf/Server.xml), or the value of the environment variable NAME (with --secret-env, also
  --policy-key and --signature-key when they differ from policy and signature).
  --expire-in: the URL's validity (url_expire), default 3600 s. For srt:// URLs the output is the
  ffmpeg URL srt://HOST:PORT?streamid=..., or with --streamid the signed stream id alone.";

struct Args {
    url: String,
    config: PathBuf,
    secret_env: Option<String>,
    policy_key: String,
    signature_key: String,
    expire_in: u64,
    activate_in: Option<u64>,
    stream_expire_in: Option<u64>,
    allow_ip: Option<String>,
    streamid: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        config: PathBuf::from("conf/Server.xml"),
        secret_env: None,
        policy_key: "policy".into(),
        signature_key: "signature".into(),
        expire_in: 3600,
        activate_in: None,
        stream_expire_in: None,
        allow_ip: None,
        streamid: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        let seconds =
            |name: &str, v: String| v.parse::<u64>().map_err(|_| format!("{name}: {v:?} is not whole seconds"));
        match arg.as_str() {
            "--config" | "-c" => a.config = PathBuf::from(value("--config")?),
            "--secret-env" => a.secret_env = Some(value("--secret-env")?),
            "--policy-key" => a.policy_key = value("--policy-key")?,
            "--signature-key" => a.signature_key = value("--signature-key")?,
            "--expire-in" => a.expire_in = seconds(arg, value(arg)?)?,
            "--activate-in" => a.activate_in = Some(seconds(arg, value(arg)?)?),
            "--stream-expire-in" => a.stream_expire_in = Some(seconds(arg, value(arg)?)?),
            "--allow-ip" => a.allow_ip = Some(value(arg)?),
            "--streamid" => a.streamid = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s if a.url.is_empty() => a.url = s.to_string(),
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    if a.url.is_empty() {
        return Err("no URL".into());
    }
    Ok(a)
}

/// The secret and query names: from the environment, or from the
/// SignedPolicy of the application named in `url`.
fn secret(a: &Args, url: &str) -> Result<(String, String, String), String> {
    if let Some(name) = &a.secret_env {
        let s = std::env::var(name).map_err(|_| format!("environment variable {name} is not set"))?;
        return Ok((s, a.policy_key.clone(), a.signature_key.clone()));
    }
    let (config, _) = config::load(&a.config).map_err(|e| format!("configuration {}: {e}", a.config.display()))?;
    let path = url.split_once("://").map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
    let path = path.split(['?', ',']).next().unwrap_or_default();
    let app = path
        .split('/')
        .find(|e| config.app(e).is_some())
        .ok_or_else(|| format!("no application of {} is named in {url:?}", a.config.display()))?;
    let sp = config
        .signed_policy(app)
        .ok_or_else(|| format!("the virtual host of application {app:?} has no SignedPolicy"))?;
    Ok((sp.secret_key.clone(), sp.policy_query_key.clone(), sp.signature_query_key.clone()))
}

/// Percent-encode all but unreserved characters (for `?streamid=`).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sign as the server checks: RTMP URLs with their port.
fn run(a: &Args) -> Result<String, String> {
    let lower = a.url.to_ascii_lowercase();
    let url = if lower.starts_with("rtmp://") {
        let (head, query) = a.url.split_once('?').map_or((a.url.as_str(), None), |(h, q)| (h, Some(q)));
        let (tc, name) = head.rsplit_once('/').ok_or("an RTMP URL is rtmp://HOST:PORT/APP/STREAM")?;
        let with_query = query.map_or(name.to_string(), |q| format!("{name}?{q}"));
        auth::rtmp_url(Some(tc), &with_query)
    } else {
        a.url.clone()
    };
    let (secret, policy_key, signature_key) = secret(a, &url)?;
    let now = auth::now_ms();
    let policy = SignPolicy {
        url_expire: now + a.expire_in * 1000,
        url_activate: a.activate_in.map(|s| now + s * 1000),
        stream_expire: a.stream_expire_in.map(|s| now + s * 1000),
        allow_ip: a.allow_ip.clone(),
    };
    let signed = auth::sign_url(&url, (&policy_key, &signature_key), &secret, &policy);
    if lower.starts_with("srt://") && !a.streamid {
        // srt://HOST:PORT/... → srt://HOST:PORT?streamid=...
        let rest = &url["srt://".len()..];
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        return Ok(format!("srt://{host}?streamid={}", percent_encode(&signed)));
    }
    Ok(signed)
}

/// `lockstep sign-url ARGS`: prints the signed URL.
pub fn main(args: &[String]) -> ExitCode {
    let result = parse(args).and_then(|a| run(&a));
    match result {
        Ok(url) => {
            println!("{url}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lockstep sign-url: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn arguments() {
        let a = parse(&args(&["rtmp://h/app/s", "--expire-in", "60", "--allow-ip", "10.0.0.0/8", "--streamid"]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (a.url.as_str(), a.expire_in, a.allow_ip.as_deref(), a.streamid),
            ("rtmp://h/app/s", 60, Some("10.0.0.0/8"), true)
        );
        for (bad, why) in [
            (&["--expire-in", "60"][..], "no URL"),
            (&["u", "--expire-in", "soon"][..], "is not whole seconds"),
            (&["u", "--expire-in"][..], "needs a value"),
            (&["u", "v"][..], "unexpected argument"),
            (&["u", "--secret", "x"][..], "unknown option"),
        ] {
            let e = parse(&args(bad)).err().unwrap_or_default();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn srt_urls_are_ffmpeg_urls_with_the_stream_id_encoded() {
        assert_eq!(percent_encode("srt://h:9/a/b?p=x&s=y-_.~"), "srt%3A%2F%2Fh%3A9%2Fa%2Fb%3Fp%3Dx%26s%3Dy-_.~");
    }

    #[test]
    fn the_secret_comes_from_the_configuration() {
        let dir = std::env::temp_dir().join(format!("lockstep-sign-url-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let conf = dir.join("Server.xml");
        let xml = "<Server><Bind><Providers><RTMP><Port>1935</Port></RTMP></Providers></Bind><VirtualHosts>\
                   <VirtualHost><Name>v</Name><SignedPolicy><SignatureQueryKeyName>sig</SignatureQueryKeyName>\
                   <SecretKey>0123456789abcdef</SecretKey><Enables><Providers>rtmp</Providers></Enables>\
                   </SignedPolicy><Applications><Application><Name>live</Name><Providers><RTMP/></Providers>\
                   </Application></Applications></VirtualHost></VirtualHosts></Server>";
        std::fs::write(&conf, xml).unwrap_or_else(|e| panic!("{e}"));
        let conf_arg = conf.to_string_lossy().to_string();
        let url =
            run(&parse(&args(&["rtmp://h/live/s?key=k", "--config", &conf_arg])).unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
        // The port is added, the key kept, the configured names used.
        assert!(url.starts_with("rtmp://h:1935/live/s?key=k&policy="), "{url}");
        let (unsigned, sig) = url.rsplit_once("&sig=").unwrap_or_else(|| panic!("{url}"));
        let policy = unsigned.rsplit_once("policy=").map(|(_, p)| p).unwrap_or_default();
        let expected = auth::sign_url(
            "rtmp://h:1935/live/s?key=k",
            ("policy", "sig"),
            "0123456789abcdef",
            &SignPolicy { url_expire: policy_expiry(policy), ..Default::default() },
        );
        assert!(expected.ends_with(&format!("&sig={sig}")), "{expected} vs {url}");
        let e = run(&parse(&args(&["rtmp://h/other/s", "--config", &conf_arg])).unwrap_or_else(|e| panic!("{e}")));
        assert!(e.is_err_and(|e| e.contains("no application")));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The url_expire of an encoded policy.
    fn policy_expiry(policy: &str) -> u64 {
        use base64::Engine;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(policy).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap_or_default();
        v["url_expire"].as_u64().unwrap_or_default()
    }
}
