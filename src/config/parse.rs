//! Reading `Server.xml` into the validated [`Config`].
//!
//! The file uses OvenMediaEngine's element names and nesting (case-sensitive,
//! as in OME), so the `Providers` and `Publishers` blocks of an OME
//! configuration work unchanged. Reading happens in three steps:
//!
//! 1. [`scan`] walks the element tree with quick-xml's event reader and
//!    compares every element against [`SERVER`], the tree of elements Lockstep
//!    reads. Unknown elements and OME elements Lockstep ignores give a
//!    [`Warning`] and are left out; a repeated single element is an error.
//!    `${env:NAME}` / `${env:NAME:default}` placeholders in the text of the
//!    elements Lockstep reads are substituted here. The result is a normalized
//!    document holding only known elements.
//! 2. serde (quick-xml's deserializer) reads that document into the `Raw*`
//!    structs, which mirror the XML with every value still text.
//! 3. [`convert`] turns the raw structs into the types of `mod.rs`: it parses
//!    every value, applies the defaults and checks the rules that involve
//!    several fields (ports in use, durations, unique names).
//!
//! Every error names the XML path of the offending element, such as
//! `Server/VirtualHosts/VirtualHost[0]/Applications/Application[1]/Publishers/LLHLS/ChunkDuration`,
//! and says what is allowed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Deserialize;

#[path = "publish_auth.rs"]
mod publish_auth;

use super::{
    ApiSettings, Application, Bind, Config, HlsSettings, HttpConfig, HttpLimits, LlHlsSettings, MpegtsSettings,
    MpegtsStream, PairRole, PairSettings, ProviderSettings, SrtSettings, TimestampMode, TlsCert, VirtualHost,
};

/// Something in the configuration that Lockstep accepts but that deserves
/// attention: an unknown or ignored element, a setting without effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// XML path of the element, such as `Server/Bind/Publishers/LLHLS/TLSPort`.
    pub path: String,
    /// What is wrong and what Lockstep does about it.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a configuration was refused. Every message names the XML path and
/// says what is allowed there.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Io {
        /// The configuration file.
        file: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The document is not well-formed XML.
    #[error("{path}: malformed XML at line {line}, column {column}: {message}; allowed: well-formed XML")]
    Xml {
        /// The innermost element open where the error was found.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in bytes.
        column: usize,
        /// The XML reader's description.
        message: String,
    },
    /// The root element is not `<Server>`.
    #[error("root element: found {found}; allowed: <Server>")]
    Root {
        /// What was found: `<Name>`, or "no element".
        found: String,
    },
    /// An element that may appear once appears again.
    #[error("{path}: <{name}> appears more than once; allowed: at most one <{name}> here")]
    Repeated {
        /// Path of the second occurrence.
        path: String,
        /// The element name.
        name: String,
    },
    /// A required element is absent.
    #[error("{path}: missing; allowed: this element is required")]
    Missing {
        /// Path of the missing element.
        path: String,
    },
    /// `${env:NAME}` names a variable that is not set, and has no default.
    #[error(
        "{path}: environment variable {name} is not set and ${{env:{name}}} has no default; allowed: set {name}, \
         or give a default as in ${{env:{name}:default}}"
    )]
    EnvUnset {
        /// Path of the element whose text holds the placeholder.
        path: String,
        /// The variable.
        name: String,
    },
    /// A `${env:...}` placeholder without a variable name.
    #[error("{path}: placeholder {placeholder} names no variable; allowed: ${{env:NAME}} or ${{env:NAME:default}}")]
    EnvSyntax {
        /// Path of the element whose text holds the placeholder.
        path: String,
        /// The placeholder as written.
        placeholder: String,
    },
    /// A value that does not parse or is out of range.
    #[error("{path}: invalid value \"{value}\"; allowed: {allowed}")]
    Invalid {
        /// Path of the element.
        path: String,
        /// The text found (after `${env:...}` substitution).
        value: String,
        /// What the element accepts.
        allowed: String,
    },
    /// Two listeners (or two MPEG-TS streams) on one port.
    #[error("{path}: port {port}/{protocol} is already used by {other}; allowed: one listener per port and protocol")]
    PortInUse {
        /// Path of the second user of the port.
        path: String,
        /// The port.
        port: u16,
        /// `tcp` or `udp`.
        protocol: &'static str,
        /// Path of the first user of the port.
        other: String,
    },
    /// A name that must be unique is used twice.
    #[error("{path}: \"{name}\" is already used by {other}; allowed: {what} unique")]
    NotUnique {
        /// Path of the second use.
        path: String,
        /// The name.
        name: String,
        /// Path of the first use.
        other: String,
        /// What must be unique, such as "application names across all virtual hosts".
        what: &'static str,
    },
    /// The normalized document did not fit the raw structs (a bug: the scan
    /// admits only elements the structs know).
    #[error("{path}: unexpected structure: {message}; allowed: the elements listed in docs/config.md")]
    Structure {
        /// Always `Server`.
        path: String,
        /// The deserializer's description.
        message: String,
    },
}

/// Reads and validates the configuration file at `path`; `${env:NAME}`
/// placeholders come from the process environment.
pub fn load(path: &Path) -> Result<(Config, Vec<Warning>), ConfigError> {
    let xml = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: path.to_path_buf(), source })?;
    let (mut config, warnings) = parse_str(&xml, &|name| std::env::var(name).ok())?;
    resolve_tls_files(&mut config, path.parent().unwrap_or(Path::new("")))?;
    Ok((config, warnings))
}

/// Makes the certificate paths of `Host/TLS` relative to `base` (the
/// configuration file's directory) and checks that each file can be opened.
/// Their content is read when the server starts.
fn resolve_tls_files(config: &mut Config, base: &Path) -> Result<(), ConfigError> {
    for cert in &mut config.http.certs {
        let files = [("CertPath", &mut cert.cert_path), ("KeyPath", &mut cert.key_path)]
            .into_iter()
            .chain(cert.chain_path.as_mut().map(|p| ("ChainCertPath", p)));
        for (element, file) in files {
            *file = base.join(&*file);
            if let Err(e) = std::fs::File::open(&*file) {
                let path = child(&cert.path, element);
                return Err(invalid(&path, &file.display().to_string(), format!("a readable PEM file ({e})")));
            }
        }
    }
    Ok(())
}

/// Parses and validates a `Server.xml` document; `env` resolves `${env:NAME}`
/// placeholders (`None`: not set).
pub fn parse_str(xml: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(Config, Vec<Warning>), ConfigError> {
    let mut warnings = Vec::new();
    let normalized = scan(xml, env, &mut warnings)?;
    let raw: RawServer = quick_xml::de::from_str(&normalized)
        .map_err(|e| ConfigError::Structure { path: "Server".to_owned(), message: e.to_string() })?;
    let config = convert(&raw, &mut warnings)?;
    Ok((config, warnings))
}

// ---------------------------------------------------------------------------
// Step 1: the element tree.

/// One element Lockstep reads.
struct Node {
    name: &'static str,
    /// May repeat; its path carries an index (`Application[1]`).
    list: bool,
    /// Holds text (a value) rather than elements.
    text: bool,
    children: &'static [Node],
    /// OvenMediaEngine elements Lockstep knows and ignores here, each with
    /// a note (may be empty) for the warning.
    ignored: &'static [(&'static str, &'static str)],
}

macro_rules! leaf {
    ($name:literal) => {
        Node { name: $name, list: false, text: true, children: &[], ignored: &[] }
    };
}

macro_rules! leaves {
    ($name:literal) => {
        Node { name: $name, list: true, text: true, children: &[], ignored: &[] }
    };
}

macro_rules! elem {
    ($name:literal, [$($child:expr),* $(,)?], ignored: [$($ign:expr),* $(,)?]) => {
        Node { name: $name, list: false, text: false, children: &[$($child),*], ignored: &[$($ign),*] }
    };
}

macro_rules! elems {
    ($name:literal, [$($child:expr),* $(,)?], ignored: [$($ign:expr),* $(,)?]) => {
        Node { name: $name, list: true, text: false, children: &[$($child),*], ignored: &[$($ign),*] }
    };
}

const PLAIN_API: &str = "Lockstep serves the API over plain HTTP; terminate TLS in front of it";
const INGEST_ONLY: &str = "Lockstep ingests RTMP, SRT and MPEG-TS only";
const PUBLISH_ONLY: &str = "Lockstep publishes LL-HLS and HLS only";
const WORKERS: &str = "Lockstep sizes its own workers";
const NOT_SUPPORTED: &str = "not supported by Lockstep";

const FIRST_KEEPS: &str = "the first publisher of a stream always keeps it";
const OWN_CACHE_CONTROL: &str = "Lockstep sets its own Cache-Control headers";

/// `Server/Bind/Managers`: the REST API port.
const BIND_MANAGERS: Node = elem!(
    "Managers",
    [elem!("API", [leaf!("Port")], ignored: [("TLSPort", PLAIN_API), ("WorkerCount", WORKERS)])],
    ignored: []
);

/// `Server/Managers`: the REST API credentials.
const MANAGERS: Node = elem!(
    "Managers",
    [elem!(
        "API",
        [leaf!("AccessToken")],
        ignored: [("CrossDomains", NOT_SUPPORTED), ("Storage", NOT_SUPPORTED)]
    )],
    ignored: [("Host", "the API answers on any host name; TLS is not served")]
);

/// `Server/Bind/Providers`.
const BIND_PROVIDERS: Node = elem!(
    "Providers",
    [
        elem!("RTMP", [leaf!("Port")], ignored: [("WorkerCount", WORKERS), ("ThreadPerSocket", WORKERS)]),
        elem!(
            "SRT",
            [
                leaf!("Port"),
                elem!("Options", [elems!("Option", [leaf!("Key"), leaf!("Value")], ignored: [])], ignored: []),
            ],
            ignored: [("WorkerCount", WORKERS), ("ThreadPerSocket", WORKERS)]
        ),
        elem!("MPEGTS", [leaf!("Port")], ignored: [("WorkerCount", WORKERS)]),
    ],
    ignored: [("WebRTC", INGEST_ONLY), ("OVT", INGEST_ONLY), ("RTSPC", INGEST_ONLY), ("RTSP", INGEST_ONLY)]
);

/// `Server/Bind/Publishers`.
const BIND_PUBLISHERS: Node = elem!(
    "Publishers",
    [elem!(
        "LLHLS",
        [
            leaf!("Port"),
            leaf!("TLSPort"),
            leaf!("MaxConnections"),
            leaf!("HeaderReadTimeoutMs"),
            leaf!("MaxHeaderBytes"),
            leaf!("IdleTimeoutMs"),
        ],
        ignored: [("WorkerCount", WORKERS)]
    )],
    ignored: [
        ("HLS", "Lockstep serves HLS on the LLHLS port"),
        ("OVT", PUBLISH_ONLY),
        ("WebRTC", PUBLISH_ONLY),
        ("Thumbnail", PUBLISH_ONLY),
        ("DASH", PUBLISH_ONLY),
        ("LLDASH", PUBLISH_ONLY),
        ("SRT", PUBLISH_ONLY),
    ]
);

/// `Application/Providers`.
const APP_PROVIDERS: Node = elem!(
    "Providers",
    [
        elem!(
            "RTMP",
            [
                leaf!("TimestampMode"),
                leaf!("UseIncomingTimestamp"),
                leaf!("PacketSilenceTimeoutMs"),
                leaf!("MaxTimestampJumpMs"),
                leaf!("MaxBitrateKbps"),
            ],
            ignored: [("BlockDuplicateStreamName", FIRST_KEEPS), ("MaxConnection", "")]
        ),
        elem!(
            "SRT",
            [
                leaf!("TimestampMode"),
                leaf!("UseIncomingTimestamp"),
                leaf!("PacketSilenceTimeoutMs"),
                leaf!("MaxTimestampJumpMs"),
                leaf!("MaxBitrateKbps"),
                leaf!("Passphrase"),
            ],
            ignored: [("BlockDuplicateStreamName", FIRST_KEEPS), ("MaxConnection", ""), ("AudioMap", "")]
        ),
        elem!(
            "MPEGTS",
            [
                leaf!("TimestampMode"),
                leaf!("UseIncomingTimestamp"),
                leaf!("PacketSilenceTimeoutMs"),
                leaf!("MaxTimestampJumpMs"),
                leaf!("MaxBitrateKbps"),
                elem!("StreamMap", [elems!("Stream", [leaf!("Name"), leaf!("Port")], ignored: [])], ignored: []),
            ],
            ignored: [("MaxConnection", "")]
        ),
        elem!("PublishKeys", [leaves!("Key")], ignored: []),
    ],
    ignored: [
        ("WebRTC", INGEST_ONLY),
        ("OVT", INGEST_ONLY),
        ("RTSPPull", INGEST_ONLY),
        ("RTSP", INGEST_ONLY),
        ("Schedule", INGEST_ONLY),
        ("Multiplex", INGEST_ONLY),
        ("File", INGEST_ONLY),
    ]
);

/// `Application/Publishers`.
const APP_PUBLISHERS: Node = elem!(
    "Publishers",
    [
        elem!(
            "LLHLS",
            [
                leaf!("OriginMode"),
                leaf!("SessionKeySecret"),
                leaf!("ServerTimeBasedSegmentNumbering"),
                leaf!("ChunkDuration"),
                leaf!("PartHoldBack"),
                leaf!("SegmentDuration"),
                leaf!("SegmentCount"),
                elem!("CrossDomains", [leaves!("Url")], ignored: []),
            ],
            ignored: [
                ("DVR", NOT_SUPPORTED),
                ("DRM", NOT_SUPPORTED),
                ("Dumps", NOT_SUPPORTED),
                ("CacheControl", OWN_CACHE_CONTROL),
                ("DefaultQueryString", NOT_SUPPORTED),
            ]
        ),
        elem!(
            "HLS",
            [
                leaf!("ServerTimeBasedSegmentNumbering"),
                leaf!("SegmentDuration"),
                leaf!("SegmentCount"),
                elem!("CrossDomains", [leaves!("Url")], ignored: []),
            ],
            ignored: [
                ("OriginMode", "Lockstep's HLS URLs never carry per-session data"),
                ("DVR", NOT_SUPPORTED),
                ("Dumps", NOT_SUPPORTED),
                ("CacheControl", OWN_CACHE_CONTROL),
                ("DefaultQueryString", NOT_SUPPORTED),
                ("CreateDefaultPlaylist", ""),
            ]
        ),
    ],
    ignored: [
        ("AppWorkerCount", WORKERS),
        ("StreamWorkerCount", WORKERS),
        ("OVT", PUBLISH_ONLY),
        ("WebRTC", PUBLISH_ONLY),
        ("Thumbnail", PUBLISH_ONLY),
        ("FILE", PUBLISH_ONLY),
        ("RTMPPush", PUBLISH_ONLY),
        ("MPEGTSPush", PUBLISH_ONLY),
        ("SRTPush", PUBLISH_ONLY),
        ("Push", PUBLISH_ONLY),
        ("DASH", PUBLISH_ONLY),
        ("LLDASH", PUBLISH_ONLY),
        ("SRT", PUBLISH_ONLY),
    ]
);

/// `Server/VirtualHosts/VirtualHost`.
const VIRTUAL_HOST: Node = elems!(
    "VirtualHost",
    [
        leaf!("Name"),
        elem!(
            "Host",
            [
                elem!("Names", [leaves!("Name")], ignored: []),
                elem!("TLS", [leaf!("CertPath"), leaf!("KeyPath"), leaf!("ChainCertPath")], ignored: []),
            ],
            ignored: []
        ),
        elem!(
            "SignedPolicy",
            [
                leaf!("PolicyQueryKeyName"),
                leaf!("SignatureQueryKeyName"),
                leaf!("SecretKey"),
                elem!(
                    "Enables",
                    [leaf!("Providers")],
                    ignored: [("Publishers", "playback is not signed: LL-HLS and HLS are served to anyone")]
                ),
            ],
            ignored: []
        ),
        elem!(
            "Applications",
            [elems!(
                "Application",
                [leaf!("Name"), APP_PROVIDERS, APP_PUBLISHERS],
                ignored: [
                    ("Type", "every Lockstep application is live"),
                    ("OutputProfiles", "Lockstep does not transcode; streams are published as received"),
                ]
            )],
            ignored: []
        ),
    ],
    ignored: [
        ("Distribution", ""),
        ("Origins", "Lockstep is an origin; it does not pull streams"),
        ("OriginMapStore", "Lockstep is an origin; it does not pull streams"),
        ("AdmissionWebhooks", NOT_SUPPORTED),
        ("CrossDomains", "set CrossDomains in each application's LLHLS and HLS publishers"),
    ]
);

/// Every element Lockstep reads, from the root.
static SERVER: Node = elem!(
    "Server",
    [
        leaf!("Name"),
        leaf!("IP"),
        elem!("Bind", [BIND_MANAGERS, BIND_PROVIDERS, BIND_PUBLISHERS], ignored: []),
        MANAGERS,
        elem!(
            "Pair",
            [
                leaf!("Role"),
                leaf!("PeerUrl"),
                leaf!("Secret"),
                leaf!("MaxClockOffsetMs"),
                elem!("NtpServers", [leaves!("Server")], ignored: []),
            ],
            ignored: []
        ),
        elem!("VirtualHosts", [VIRTUAL_HOST], ignored: []),
    ],
    ignored: [
        ("Type", "Lockstep is always an origin"),
        ("PrivacyProtection", ""),
        ("StunServer", "only WebRTC uses it"),
        ("Modules", ""),
        ("Analytics", ""),
    ]
);

/// An element being read.
struct Frame {
    node: &'static Node,
    path: String,
    /// How many children of each known name were seen so far.
    seen: BTreeMap<&'static str, usize>,
    /// Text content gathered so far.
    text: String,
}

/// The state of step 1.
struct Scanner<'a> {
    xml: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    warnings: &'a mut Vec<Warning>,
    stack: Vec<Frame>,
    /// The normalized document.
    out: String,
    root_seen: bool,
}

/// Step 1: checks the element tree, records warnings, substitutes
/// `${env:...}` and returns a document with only the known elements.
fn scan(xml: &str, env: &dyn Fn(&str) -> Option<String>, warnings: &mut Vec<Warning>) -> Result<String, ConfigError> {
    let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut reader = Reader::from_str(xml);
    let mut s =
        Scanner { xml, env, warnings, stack: Vec::new(), out: String::with_capacity(xml.len()), root_seen: false };
    // Depth inside an element that is skipped (unknown or ignored).
    let mut skip = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(s.xml_error(reader.error_position(), &e.to_string())),
        };
        match event {
            Event::Eof => break,
            Event::Start(_) if skip > 0 => skip += 1,
            Event::End(_) if skip > 0 => skip -= 1,
            _ if skip > 0 => {}
            Event::Start(e) => skip = usize::from(!s.open(&e, reader.buffer_position())?),
            Event::Empty(e) => {
                let known = s.open(&e, reader.buffer_position())?;
                if known {
                    s.close()?;
                }
            }
            Event::End(_) => s.close()?,
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| s.xml_error(reader.buffer_position(), &e.to_string()))?;
                s.push_text(&text);
            }
            Event::CData(c) => {
                let text = c.decode().map_err(|e| s.xml_error(reader.buffer_position(), &e.to_string()))?;
                s.push_text(&text);
            }
            _ => {}
        }
    }
    if let Some(frame) = s.stack.last() {
        let message = format!("end of document before </{}>", frame.node.name);
        return Err(s.xml_error(xml.len() as u64, &message));
    }
    if !s.root_seen {
        return Err(ConfigError::Root { found: "no element".to_owned() });
    }
    Ok(s.out)
}

impl Scanner<'_> {
    /// Enters an element; returns false if it is skipped (its content is
    /// not read).
    fn open(&mut self, e: &BytesStart<'_>, position: u64) -> Result<bool, ConfigError> {
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let Some(parent) = self.stack.last_mut() else {
            if self.root_seen {
                return Err(self.xml_error(position, &format!("a second root element <{name}>")));
            }
            if name != SERVER.name {
                return Err(ConfigError::Root { found: format!("<{name}>") });
            }
            self.root_seen = true;
            self.out.push_str("<Server>");
            self.stack.push(Frame {
                node: &SERVER,
                path: "Server".to_owned(),
                seen: BTreeMap::new(),
                text: String::new(),
            });
            return Ok(true);
        };
        let Some(node) = parent.node.children.iter().find(|c| c.name == name) else {
            let path = format!("{}/{name}", parent.path);
            let message = match parent.node.ignored.iter().find(|(n, _)| *n == name) {
                Some((_, "")) => "OvenMediaEngine element, ignored by Lockstep".to_owned(),
                Some((_, note)) => format!("OvenMediaEngine element, ignored by Lockstep: {note}"),
                None => "unknown element, ignored (docs/config.md lists the elements Lockstep reads)".to_owned(),
            };
            self.warn(path, message);
            return Ok(false);
        };
        let count = parent.seen.entry(node.name).or_insert(0);
        let index = *count;
        *count += 1;
        let path = if node.list {
            format!("{}/{}[{index}]", parent.path, node.name)
        } else {
            format!("{}/{}", parent.path, node.name)
        };
        if !node.list && index > 0 {
            return Err(ConfigError::Repeated { path, name: node.name.to_owned() });
        }
        self.out.push('<');
        self.out.push_str(node.name);
        if node.name == "VirtualHost" {
            for attr in e.attributes() {
                let attr = attr.map_err(|err| self.xml_error(position, &err.to_string()))?;
                if attr.key.as_ref() == b"include" {
                    let value = attr.unescape_value().map_err(|err| self.xml_error(position, &err.to_string()))?;
                    self.out.push_str(" include=\"");
                    self.out.push_str(&quick_xml::escape::escape(value.as_ref()));
                    self.out.push('"');
                }
            }
        }
        self.out.push('>');
        self.stack.push(Frame { node, path, seen: BTreeMap::new(), text: String::new() });
        Ok(true)
    }

    /// Leaves the innermost element.
    fn close(&mut self) -> Result<(), ConfigError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        if frame.node.text {
            let value = substitute_env(&frame.text, &frame.path, self.env)?;
            self.out.push_str(&quick_xml::escape::escape(value.trim()));
        } else if !frame.text.trim().is_empty() {
            let message = format!("text \"{}\" ignored: this element holds elements, not text", frame.text.trim());
            self.warn(frame.path.clone(), message);
        }
        self.out.push_str("</");
        self.out.push_str(frame.node.name);
        self.out.push('>');
        Ok(())
    }

    /// Adds text content to the innermost element (text outside the root
    /// element is dropped).
    fn push_text(&mut self, text: &str) {
        if let Some(frame) = self.stack.last_mut() {
            frame.text.push_str(text);
        }
    }

    fn warn(&mut self, path: String, message: String) {
        let w = Warning { path, message };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn xml_error(&self, position: u64, message: &str) -> ConfigError {
        let position = usize::try_from(position).unwrap_or(usize::MAX).min(self.xml.len());
        let before = &self.xml.as_bytes()[..position];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = position - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
        let path = self.stack.last().map_or_else(|| "Server".to_owned(), |f| f.path.clone());
        ConfigError::Xml { path, line, column, message: message.to_owned() }
    }
}

/// Replaces `${env:NAME}` and `${env:NAME:default}` in `text`, as
/// OvenMediaEngine does: the name ends at the first `:`, the default is the
/// rest. An unset variable without a default is an error (OME substitutes an
/// empty string); `${env:NAME:}` gives an explicitly empty default. An
/// unterminated placeholder is left as written. Substituted values are not
/// scanned again.
fn substitute_env(text: &str, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    const OPEN: &str = "${env:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(':') {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if name.is_empty() {
            return Err(ConfigError::EnvSyntax { path: path.to_owned(), placeholder: format!("${{env:{inner}}}") });
        }
        match env(name).or_else(|| default.map(str::to_owned)) {
            Some(value) => out.push_str(&value),
            None => return Err(ConfigError::EnvUnset { path: path.to_owned(), name: name.to_owned() }),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Step 2: raw structs, mirroring the XML. Every value is still text.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawServer {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "IP")]
    ip: Option<String>,
    #[serde(rename = "Bind")]
    bind: Option<RawBind>,
    #[serde(rename = "Managers")]
    managers: Option<RawManagers>,
    #[serde(rename = "VirtualHosts")]
    virtual_hosts: Option<RawVirtualHosts>,
    #[serde(rename = "Pair")]
    pair: Option<RawPair>,
}

/// `Server/Pair` (Lockstep): this node's place in a redundant pair.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawPair {
    #[serde(rename = "Role")]
    role: Option<String>,
    #[serde(rename = "PeerUrl")]
    peer_url: Option<String>,
    #[serde(rename = "Secret")]
    secret: Option<String>,
    #[serde(rename = "MaxClockOffsetMs")]
    max_clock_offset_ms: Option<String>,
    #[serde(rename = "NtpServers")]
    ntp_servers: Option<RawNtpServers>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawNtpServers {
    #[serde(rename = "Server")]
    server: Vec<String>,
}

/// `Server/Pair`.
fn convert_pair(raw: Option<&RawPair>) -> Result<Option<PairSettings>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    const P: &str = "Server/Pair";
    let role = match raw.role.as_deref().map(str::trim) {
        Some(r) if r.eq_ignore_ascii_case("main") => PairRole::Main,
        Some(r) if r.eq_ignore_ascii_case("backup") => PairRole::Backup,
        Some(r) => return Err(invalid(&child(P, "Role"), r, "main or backup")),
        None => return Err(invalid(&child(P, "Role"), "", "main or backup")),
    };
    let peer_url = match raw.peer_url.as_deref().map(str::trim) {
        Some(u) => {
            let rest = u.strip_prefix("http://").unwrap_or("");
            let hostport = rest.trim_end_matches('/');
            let ok = !hostport.is_empty()
                && !hostport.contains('/')
                && hostport
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                return Err(invalid(&child(P, "PeerUrl"), u, "http://HOST:PORT (the peer's LLHLS port)"));
            }
            format!("http://{hostport}")
        }
        None => return Err(invalid(&child(P, "PeerUrl"), "", "http://HOST:PORT (the peer's LLHLS port)")),
    };
    let secret = match raw.secret.as_deref().map(str::trim) {
        Some(s) if s.len() >= 16 => s.to_string(),
        Some(s) => {
            return Err(invalid(&child(P, "Secret"), &format!("({} characters)", s.len()), "at least 16 characters"))
        }
        None => return Err(invalid(&child(P, "Secret"), "", "a shared secret of at least 16 characters")),
    };
    let max_clock_offset_ms = match raw.max_clock_offset_ms.as_deref().map(str::trim) {
        Some(t) => t
            .parse::<u32>()
            .ok()
            .filter(|v| (1..=10_000).contains(v))
            .ok_or_else(|| invalid(&child(P, "MaxClockOffsetMs"), t, "1 to 10000"))?,
        None => 50,
    };
    let mut ntp_servers = Vec::new();
    for (i, server) in raw.ntp_servers.as_ref().map_or(&[][..], |n| &n.server[..]).iter().enumerate() {
        let s = server.trim();
        let with_port = if s.contains(':') { s.to_string() } else { format!("{s}:123") };
        let ok =
            with_port.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(invalid(&format!("{P}/NtpServers/Server[{i}]"), s, "HOST or HOST:PORT"));
        }
        ntp_servers.push(with_port);
    }
    Ok(Some(PairSettings { role, peer_url, secret, ntp_servers, max_clock_offset_ms }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawBind {
    #[serde(rename = "Managers")]
    managers: Option<RawBindManagers>,
    #[serde(rename = "Providers")]
    providers: Option<RawBindProviders>,
    #[serde(rename = "Publishers")]
    publishers: Option<RawBindPublishers>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawBindManagers {
    #[serde(rename = "API")]
    api: Option<RawListener>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawManagers {
    #[serde(rename = "API")]
    api: Option<RawApiManager>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawApiManager {
    #[serde(rename = "AccessToken")]
    access_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawBindProviders {
    #[serde(rename = "RTMP")]
    rtmp: Option<RawListener>,
    #[serde(rename = "SRT")]
    srt: Option<RawListener>,
    #[serde(rename = "MPEGTS")]
    mpegts: Option<RawListener>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawBindPublishers {
    #[serde(rename = "LLHLS")]
    llhls: Option<RawListener>,
}

/// `Bind/Providers/*` and `Bind/Publishers/LLHLS`. `Options` exists only
/// under `SRT` (the scan admits it nowhere else).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawListener {
    #[serde(rename = "Port")]
    port: Option<String>,
    #[serde(rename = "TLSPort")]
    tls_port: Option<String>,
    #[serde(rename = "MaxConnections")]
    max_connections: Option<String>,
    #[serde(rename = "HeaderReadTimeoutMs")]
    header_read_timeout_ms: Option<String>,
    #[serde(rename = "MaxHeaderBytes")]
    max_header_bytes: Option<String>,
    #[serde(rename = "IdleTimeoutMs")]
    idle_timeout_ms: Option<String>,
    #[serde(rename = "Options")]
    options: Option<RawSrtOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawSrtOptions {
    #[serde(rename = "Option")]
    option: Vec<RawSrtOption>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawSrtOption {
    #[serde(rename = "Key")]
    key: Option<String>,
    #[serde(rename = "Value")]
    value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawVirtualHosts {
    #[serde(rename = "VirtualHost")]
    virtual_host: Vec<RawVirtualHost>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawVirtualHost {
    #[serde(rename = "@include")]
    include: Option<String>,
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Host")]
    host: Option<RawHost>,
    #[serde(rename = "Applications")]
    applications: Option<RawApplications>,
    #[serde(rename = "SignedPolicy")]
    signed_policy: Option<publish_auth::RawSignedPolicy>,
}

/// `VirtualHost/Host`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawHost {
    #[serde(rename = "Names")]
    names: Option<RawHostNames>,
    #[serde(rename = "TLS")]
    tls: Option<RawTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawHostNames {
    #[serde(rename = "Name")]
    name: Vec<String>,
}

/// `VirtualHost/Host/TLS`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawTls {
    #[serde(rename = "CertPath")]
    cert_path: Option<String>,
    #[serde(rename = "KeyPath")]
    key_path: Option<String>,
    #[serde(rename = "ChainCertPath")]
    chain_cert_path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawApplications {
    #[serde(rename = "Application")]
    application: Vec<RawApplication>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawApplication {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Providers")]
    providers: Option<RawProviders>,
    #[serde(rename = "Publishers")]
    publishers: Option<RawPublishers>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawProviders {
    #[serde(rename = "RTMP")]
    rtmp: Option<RawProvider>,
    #[serde(rename = "SRT")]
    srt: Option<RawProvider>,
    #[serde(rename = "MPEGTS")]
    mpegts: Option<RawProvider>,
    #[serde(rename = "PublishKeys")]
    publish_keys: Option<publish_auth::RawPublishKeys>,
}

/// `Providers/{RTMP,SRT,MPEGTS}`. `Passphrase` exists only under `SRT` and
/// `StreamMap` only under `MPEGTS` (the scan admits them nowhere else).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawProvider {
    #[serde(rename = "TimestampMode")]
    timestamp_mode: Option<String>,
    #[serde(rename = "UseIncomingTimestamp")]
    use_incoming_timestamp: Option<String>,
    #[serde(rename = "PacketSilenceTimeoutMs")]
    packet_silence_timeout_ms: Option<String>,
    #[serde(rename = "MaxTimestampJumpMs")]
    max_timestamp_jump_ms: Option<String>,
    #[serde(rename = "MaxBitrateKbps")]
    max_bitrate_kbps: Option<String>,
    #[serde(rename = "Passphrase")]
    passphrase: Option<String>,
    #[serde(rename = "StreamMap")]
    stream_map: Option<RawStreamMap>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawStreamMap {
    #[serde(rename = "Stream")]
    stream: Vec<RawStream>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawStream {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Port")]
    port: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawPublishers {
    #[serde(rename = "LLHLS")]
    llhls: Option<RawHlsPublisher>,
    #[serde(rename = "HLS")]
    hls: Option<RawHlsPublisher>,
}

/// `Publishers/{LLHLS,HLS}`. `OriginMode`, `ChunkDuration` and
/// `PartHoldBack` exist only under `LLHLS` (the scan admits them nowhere
/// else).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawHlsPublisher {
    #[serde(rename = "OriginMode")]
    origin_mode: Option<String>,
    #[serde(rename = "SessionKeySecret")]
    session_key_secret: Option<String>,
    #[serde(rename = "ServerTimeBasedSegmentNumbering")]
    server_time_based_segment_numbering: Option<String>,
    #[serde(rename = "ChunkDuration")]
    chunk_duration: Option<String>,
    #[serde(rename = "PartHoldBack")]
    part_hold_back: Option<String>,
    #[serde(rename = "SegmentDuration")]
    segment_duration: Option<String>,
    #[serde(rename = "SegmentCount")]
    segment_count: Option<String>,
    #[serde(rename = "CrossDomains")]
    cross_domains: Option<RawCrossDomains>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawCrossDomains {
    #[serde(rename = "Url")]
    url: Vec<String>,
}

// ---------------------------------------------------------------------------
// Step 3: values, defaults and rules.

/// `Server/Name` when absent.
const DEFAULT_NAME: &str = "lockstep";
const NAME_CHARS: &str = "letters, digits, '.', '_' and '-' (not \".\" or \"..\")";

/// Transport protocol of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// What a `Port` element accepts.
struct PortSyntax {
    /// Accepted `/suffix`es (case-insensitive, as OME).
    suffixes: &'static [&'static str],
    /// Exactly one port (no list, no range).
    single: bool,
    allowed: &'static str,
}

const RTMP_PORT: PortSyntax =
    PortSyntax { suffixes: &["tcp"], single: true, allowed: "one port number 1-65535, optionally followed by /tcp" };
const SRT_PORT: PortSyntax = PortSyntax {
    suffixes: &["udp", "srt"],
    single: true,
    allowed: "one port number 1-65535, optionally followed by /udp or /srt",
};
const MPEGTS_PORT: PortSyntax = PortSyntax {
    suffixes: &["udp"],
    single: false,
    allowed: "port numbers 1-65535 as a list of ports and ranges such as 4000-4003,4005, optionally followed by /udp",
};
const API_PORT: PortSyntax =
    PortSyntax { suffixes: &["tcp"], single: true, allowed: "one port number 1-65535, optionally followed by /tcp" };
const LLHLS_PORT: PortSyntax =
    PortSyntax { suffixes: &["tcp"], single: true, allowed: "one port number 1-65535, optionally followed by /tcp" };

/// Ports taken so far, with the path that took each.
#[derive(Default)]
struct Listeners(BTreeMap<(Proto, u16), String>);

impl Listeners {
    fn claim(&mut self, proto: Proto, ports: &[u16], path: &str) -> Result<(), ConfigError> {
        for &port in ports {
            if let Some(other) = self.0.get(&(proto, port)) {
                return Err(ConfigError::PortInUse {
                    path: path.to_owned(),
                    port,
                    protocol: proto.as_str(),
                    other: other.clone(),
                });
            }
            self.0.insert((proto, port), path.to_owned());
        }
        Ok(())
    }
}

/// Names and ports that must be unique across applications.
#[derive(Default)]
struct Taken {
    vhosts: BTreeMap<String, String>,
    apps: BTreeMap<String, String>,
    /// MPEG-TS port -> path of the `StreamMap/Stream/Port` that maps it.
    stream_ports: BTreeMap<u16, String>,
}

fn child(path: &str, name: &str) -> String {
    format!("{path}/{name}")
}

fn invalid(path: &str, value: &str, allowed: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { path: path.to_owned(), value: value.to_owned(), allowed: allowed.into() }
}

fn warn(warnings: &mut Vec<Warning>, path: impl Into<String>, message: impl Into<String>) {
    warnings.push(Warning { path: path.into(), message: message.into() });
}

/// The text of a required element.
fn required<'a>(value: &'a Option<String>, path: &str) -> Result<&'a str, ConfigError> {
    value.as_deref().ok_or_else(|| ConfigError::Missing { path: path.to_owned() })
}

/// `true` or `false` (any case, as OME).
fn parse_bool(path: &str, text: &str) -> Result<bool, ConfigError> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid(path, text, "true or false"))
    }
}

/// A whole number.
fn parse_u64(path: &str, text: &str, allowed: &str) -> Result<u64, ConfigError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(path, text, allowed));
    }
    text.parse().map_err(|_| invalid(path, text, allowed))
}

/// Seconds written as a decimal (`6`, `0.5`, `2.002`) to whole milliseconds,
/// exactly: the digits are read, never a float.
fn parse_seconds_ms(path: &str, text: &str) -> Result<u32, ConfigError> {
    const ALLOWED: &str = "seconds as a decimal number such as 6, 0.5 or 2.002";
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(invalid(path, text, ALLOWED));
    }
    if fraction.len() > 3 {
        return Err(invalid(path, text, "at most 3 decimal places (whole milliseconds), such as 2.002"));
    }
    let too_large = || invalid(path, text, "at most 4294967.295 seconds");
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_large())? };
    let fraction_ms = fraction.bytes().zip([100u64, 10, 1]).map(|(b, scale)| u64::from(b - b'0') * scale).sum::<u64>();
    whole
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(fraction_ms))
        .and_then(|ms| u32::try_from(ms).ok())
        .ok_or_else(too_large)
}

/// Milliseconds as seconds for messages: 1500 -> "1.5".
fn seconds(ms: u32) -> String {
    let (whole, fraction) = (ms / 1000, ms % 1000);
    if fraction == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{fraction:03}").trim_end_matches('0').to_owned()
    }
}

/// One port number, 1 to 65535.
fn port_number(text: &str) -> Option<u16> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|&p| p != 0)
}

/// OME's port syntax: `1935`, `1935/tcp`, `4000-4003,4005/udp`.
fn parse_ports(path: &str, text: &str, syntax: &PortSyntax) -> Result<Vec<u16>, ConfigError> {
    let bad = || invalid(path, text, syntax.allowed);
    let (list, suffix) = match text.split_once('/') {
        Some((list, suffix)) => (list, Some(suffix.trim())),
        None => (text, None),
    };
    if let Some(suffix) = suffix {
        if !syntax.suffixes.iter().any(|s| s.eq_ignore_ascii_case(suffix)) {
            return Err(bad());
        }
    }
    let mut ports = Vec::new();
    for item in list.split(',') {
        match item.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (port_number(first).ok_or_else(bad)?, port_number(last).ok_or_else(bad)?);
                if first > last {
                    return Err(bad());
                }
                ports.extend(first..=last);
            }
            None => ports.push(port_number(item).ok_or_else(bad)?),
        }
    }
    if syntax.single && ports.len() != 1 {
        return Err(bad());
    }
    Ok(ports)
}

/// Ports as OME writes them: `4000-4003,4005`.
fn format_ports(ports: &[u16]) -> String {
    let mut sorted = ports.to_vec();
    sorted.sort_unstable();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let first = sorted[i];
        let mut last = first;
        while i + 1 < sorted.len() && u32::from(sorted[i + 1]) == u32::from(last) + 1 {
            i += 1;
            last = sorted[i];
        }
        parts.push(if first == last { first.to_string() } else { format!("{first}-{last}") });
        i += 1;
    }
    parts.join(",")
}

/// Application and stream names appear in URLs: `[A-Za-z0-9._-]+`, not
/// `.` or `..`.
fn check_url_safe(path: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(path, name, NAME_CHARS))
    }
}

/// SRT's passphrase rule: 10 to 79 bytes.
fn check_passphrase(path: &str, passphrase: &str) -> Result<(), ConfigError> {
    if (10..=79).contains(&passphrase.len()) {
        Ok(())
    } else {
        let shown = format!("({} bytes)", passphrase.len());
        Err(invalid(path, &shown, "a passphrase of 10 to 79 bytes"))
    }
}

/// Step 3: the validated configuration.
fn convert(raw: &RawServer, warnings: &mut Vec<Warning>) -> Result<Config, ConfigError> {
    let name = match raw.name.as_deref() {
        None => DEFAULT_NAME.to_owned(),
        Some("") => return Err(invalid("Server/Name", "", "a non-empty name")),
        Some(name) => name.to_owned(),
    };
    let ip = match raw.ip.as_deref() {
        None | Some("*") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(text) => {
            text.parse().map_err(|_| invalid("Server/IP", text, "* (all addresses) or an IPv4 or IPv6 address"))?
        }
    };
    let (bind, srt_passphrase, mut http) = convert_bind(raw.bind.as_ref(), warnings)?;
    let mut taken = Taken::default();
    let mut vhosts = Vec::new();
    let raw_vhosts = raw.virtual_hosts.as_ref().map_or(&[][..], |v| &v.virtual_host[..]);
    for (i, raw_vhost) in raw_vhosts.iter().enumerate() {
        let path = format!("Server/VirtualHosts/VirtualHost[{i}]");
        if let Some(include) = &raw_vhost.include {
            let message = format!(
                "include=\"{include}\" is not supported by Lockstep: the included files are not read; \
                 put the virtual host in this file"
            );
            warn(warnings, path, message);
            continue;
        }
        let vhost = convert_vhost(raw_vhost, &path, &bind, srt_passphrase.as_deref(), &mut taken, warnings)?;
        if let Some(cert) = convert_host(raw_vhost.host.as_ref(), &path, http.tls_port, warnings)? {
            http.certs.push(cert);
        }
        vhosts.push(vhost);
    }
    if vhosts.iter().all(|v| v.apps.is_empty()) {
        warn(warnings, "Server/VirtualHosts", "no application is configured: nothing can be published");
    }
    let tls_text = raw.bind.as_ref().and_then(|b| b.publishers.as_ref()?.llhls.as_ref()?.tls_port.as_deref());
    if let (Some(text), true) = (tls_text, http.certs.is_empty()) {
        return Err(invalid(
            "Server/Bind/Publishers/LLHLS/TLSPort",
            text,
            "a TLS port only with a certificate: set Host/TLS/CertPath and Host/TLS/KeyPath in a VirtualHost",
        ));
    }
    let api = convert_api(raw, &bind, &http, warnings)?;
    let pair = convert_pair(raw.pair.as_ref())?;
    Ok(Config { name, ip, bind, vhosts, http, api, pair })
}

/// `Server/Bind/Managers/API/Port` and `Server/Managers/API/AccessToken`.
/// The port needs a token (every API call is authenticated); a token
/// without a port is warned about.
fn convert_api(
    raw: &RawServer,
    bind: &Bind,
    http: &HttpConfig,
    warnings: &mut Vec<Warning>,
) -> Result<Option<ApiSettings>, ConfigError> {
    const PORT: &str = "Server/Bind/Managers/API/Port";
    const TOKEN: &str = "Server/Managers/API/AccessToken";
    let token = raw.managers.as_ref().and_then(|m| m.api.as_ref()).and_then(|a| a.access_token.as_deref());
    let Some(listener) = raw.bind.as_ref().and_then(|b| b.managers.as_ref()).and_then(|m| m.api.as_ref()) else {
        if token.is_some() {
            warn(warnings, TOKEN, format!("{PORT} is not set: the API is not served"));
        }
        return Ok(None);
    };
    let text = required(&listener.port, PORT)?;
    let port =
        parse_ports(PORT, text, &API_PORT)?.first().copied().ok_or_else(|| invalid(PORT, text, API_PORT.allowed))?;
    let tcp = [
        (bind.rtmp, "Server/Bind/Providers/RTMP/Port"),
        (bind.llhls, "Server/Bind/Publishers/LLHLS/Port"),
        (http.tls_port, "Server/Bind/Publishers/LLHLS/TLSPort"),
    ];
    if let Some((_, other)) = tcp.iter().find(|(p, _)| *p == Some(port)) {
        return Err(ConfigError::PortInUse {
            path: PORT.to_owned(),
            port,
            protocol: "tcp",
            other: (*other).to_owned(),
        });
    }
    let access_token = match token {
        None => return Err(ConfigError::Missing { path: TOKEN.to_owned() }),
        Some("") => return Err(invalid(TOKEN, "", "a non-empty token, such as user:password")),
        Some(t) => t.to_owned(),
    };
    Ok(Some(ApiSettings { port, access_token }))
}

/// `Server/Bind`, the passphrase of `Bind/Providers/SRT/Options` (OME's
/// `SRTO_PASSPHRASE`), if any, and the HTTP settings of
/// `Bind/Publishers/LLHLS` (certificates are added by the caller).
fn convert_bind(
    raw: Option<&RawBind>,
    warnings: &mut Vec<Warning>,
) -> Result<(Bind, Option<String>, HttpConfig), ConfigError> {
    let providers = raw.and_then(|b| b.providers.as_ref());
    let publishers = raw.and_then(|b| b.publishers.as_ref());
    let mut listeners = Listeners::default();
    let mut port = |listener: Option<&RawListener>,
                    path: &str,
                    syntax: &PortSyntax,
                    proto: Proto|
     -> Result<Vec<u16>, ConfigError> {
        let Some(listener) = listener else {
            return Ok(Vec::new());
        };
        let path = child(path, "Port");
        let ports = parse_ports(&path, required(&listener.port, &path)?, syntax)?;
        listeners.claim(proto, &ports, &path)?;
        Ok(ports)
    };
    let rtmp = port(providers.and_then(|p| p.rtmp.as_ref()), "Server/Bind/Providers/RTMP", &RTMP_PORT, Proto::Tcp)?;
    let llhls =
        port(publishers.and_then(|p| p.llhls.as_ref()), "Server/Bind/Publishers/LLHLS", &LLHLS_PORT, Proto::Tcp)?;
    let srt_listener = providers.and_then(|p| p.srt.as_ref());
    let srt = port(srt_listener, "Server/Bind/Providers/SRT", &SRT_PORT, Proto::Udp)?;
    let mpegts =
        port(providers.and_then(|p| p.mpegts.as_ref()), "Server/Bind/Providers/MPEGTS", &MPEGTS_PORT, Proto::Udp)?;

    let mut passphrase = None;
    let options = srt_listener.and_then(|l| l.options.as_ref()).map_or(&[][..], |o| &o.option[..]);
    for (i, option) in options.iter().enumerate() {
        let path = format!("Server/Bind/Providers/SRT/Options/Option[{i}]");
        let key = required(&option.key, &child(&path, "Key"))?;
        if key.eq_ignore_ascii_case("SRTO_PASSPHRASE") {
            let value_path = child(&path, "Value");
            let value = required(&option.value, &value_path)?;
            check_passphrase(&value_path, value)?;
            passphrase = Some(value.to_owned());
        } else {
            let message = format!(
                "SRT socket option {key} is ignored by Lockstep (only SRTO_PASSPHRASE is used: it is the \
                 passphrase of every application that sets no Providers/SRT/Passphrase)"
            );
            warn(warnings, path, message);
        }
    }

    let bind = Bind { rtmp: rtmp.first().copied(), srt: srt.first().copied(), mpegts, llhls: llhls.first().copied() };
    let llhls_listener = publishers.and_then(|p| p.llhls.as_ref());
    let mut http = HttpConfig { limits: convert_http_limits(llhls_listener)?, ..HttpConfig::default() };
    if let Some(text) = llhls_listener.and_then(|l| l.tls_port.as_deref()) {
        let path = "Server/Bind/Publishers/LLHLS/TLSPort";
        let ports = parse_ports(path, text, &LLHLS_PORT)?;
        listeners.claim(Proto::Tcp, &ports, path)?;
        // (`Port` is required whenever `LLHLS` is present.)
        http.tls_port = ports.first().copied();
    }
    Ok((bind, passphrase, http))
}

/// Lockstep's connection limits under `Bind/Publishers/LLHLS`.
fn convert_http_limits(raw: Option<&RawListener>) -> Result<HttpLimits, ConfigError> {
    let mut limits = HttpLimits::default();
    let Some(raw) = raw else { return Ok(limits) };
    // (value, element, minimum, maximum, what)
    let number = |text: Option<&str>, element: &str, min: u64, max: u64, what: &str| -> Result<_, ConfigError> {
        let Some(text) = text else { return Ok(None) };
        let path = child("Server/Bind/Publishers/LLHLS", element);
        let allowed = format!("a whole number of {what} from {min} to {max}");
        let n = parse_u64(&path, text, &allowed)?;
        if !(min..=max).contains(&n) {
            return Err(invalid(&path, text, allowed));
        }
        Ok(Some(n))
    };
    if let Some(n) = number(raw.max_connections.as_deref(), "MaxConnections", 1, 1_000_000, "connections")? {
        limits.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
    }
    let ms = "milliseconds";
    if let Some(n) = number(raw.header_read_timeout_ms.as_deref(), "HeaderReadTimeoutMs", 100, 600_000, ms)? {
        limits.header_read_timeout = Duration::from_millis(n);
    }
    // hyper's HTTP/1.1 read buffer cannot be smaller than 8 KiB.
    if let Some(n) = number(raw.max_header_bytes.as_deref(), "MaxHeaderBytes", 8192, 1_048_576, "bytes")? {
        limits.max_header_bytes = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = number(raw.idle_timeout_ms.as_deref(), "IdleTimeoutMs", 100, 3_600_000, ms)? {
        limits.keep_alive_idle = Duration::from_millis(n);
    }
    Ok(limits)
}

/// `VirtualHost/Host`: the certificate of the virtual host at `path`, if it
/// has `Host/TLS`.
fn convert_host(
    raw: Option<&RawHost>,
    path: &str,
    tls_port: Option<u16>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<TlsCert>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let host = child(path, "Host");
    let mut names = Vec::new();
    let raw_names = raw.names.as_ref().map_or(&[][..], |n| &n.name[..]);
    for (i, name) in raw_names.iter().enumerate() {
        let ok = !name.is_empty() && !name.contains(['/', ' ']);
        if !ok {
            let p = format!("{host}/Names/Name[{i}]");
            return Err(invalid(&p, name, "a host name, * (any) or a wildcard such as *.example.com"));
        }
        names.push(name.to_ascii_lowercase());
    }
    let Some(tls) = raw.tls.as_ref() else { return Ok(None) };
    let tls_path = child(&host, "TLS");
    let file = |value: &Option<String>, element: &str| -> Result<Option<PathBuf>, ConfigError> {
        match value.as_deref() {
            None => Ok(None),
            Some("") => Err(invalid(&child(&tls_path, element), "", "the path of a PEM file")),
            Some(text) => Ok(Some(PathBuf::from(text))),
        }
    };
    let missing = |element: &str| ConfigError::Missing { path: child(&tls_path, element) };
    let cert_path = file(&tls.cert_path, "CertPath")?.ok_or_else(|| missing("CertPath"))?;
    let key_path = file(&tls.key_path, "KeyPath")?.ok_or_else(|| missing("KeyPath"))?;
    let chain_path = file(&tls.chain_cert_path, "ChainCertPath")?;
    if tls_port.is_none() {
        warn(warnings, &tls_path, "Server/Bind/Publishers/LLHLS/TLSPort is not set: the certificate is not used");
    }
    Ok(Some(TlsCert { path: tls_path, names, cert_path, key_path, chain_path }))
}

fn convert_vhost(
    raw: &RawVirtualHost,
    path: &str,
    bind: &Bind,
    srt_passphrase: Option<&str>,
    taken: &mut Taken,
    warnings: &mut Vec<Warning>,
) -> Result<VirtualHost, ConfigError> {
    let name_path = child(path, "Name");
    let name = required(&raw.name, &name_path)?;
    if name.is_empty() || name.contains('/') {
        return Err(invalid(&name_path, name, "a non-empty name without '/'"));
    }
    if let Some(other) = taken.vhosts.get(name) {
        return Err(ConfigError::NotUnique {
            path: name_path,
            name: name.to_owned(),
            other: other.clone(),
            what: "virtual host names",
        });
    }
    taken.vhosts.insert(name.to_owned(), name_path);
    let mut apps = Vec::new();
    let raw_apps = raw.applications.as_ref().map_or(&[][..], |a| &a.application[..]);
    for (i, raw_app) in raw_apps.iter().enumerate() {
        let app_path = format!("{path}/Applications/Application[{i}]");
        apps.push(convert_app(raw_app, &app_path, bind, srt_passphrase, taken, warnings)?);
    }
    let signed_policy =
        publish_auth::convert_signed_policy(raw.signed_policy.as_ref(), &child(path, "SignedPolicy"), warnings)?;
    Ok(VirtualHost { name: name.to_owned(), apps, signed_policy })
}

fn convert_app(
    raw: &RawApplication,
    path: &str,
    bind: &Bind,
    srt_passphrase: Option<&str>,
    taken: &mut Taken,
    warnings: &mut Vec<Warning>,
) -> Result<Application, ConfigError> {
    let name_path = child(path, "Name");
    let name = required(&raw.name, &name_path)?;
    check_url_safe(&name_path, name)?;
    if let Some(other) = taken.apps.get(name) {
        return Err(ConfigError::NotUnique {
            path: name_path,
            name: name.to_owned(),
            other: other.clone(),
            what: "application names across all virtual hosts",
        });
    }
    taken.apps.insert(name.to_owned(), name_path);

    let providers = raw.providers.as_ref();
    let rtmp = match providers.and_then(|p| p.rtmp.as_ref()) {
        None => None,
        Some(raw) => {
            let p = format!("{path}/Providers/RTMP");
            if bind.rtmp.is_none() {
                warn(warnings, &p, "Server/Bind/Providers/RTMP/Port is not set: nothing can publish over RTMP");
            }
            Some(convert_provider(raw, &p, warnings)?)
        }
    };
    let srt = match providers.and_then(|p| p.srt.as_ref()) {
        None => None,
        Some(raw) => {
            let p = format!("{path}/Providers/SRT");
            if bind.srt.is_none() {
                warn(warnings, &p, "Server/Bind/Providers/SRT/Port is not set: nothing can publish over SRT");
            }
            let common = convert_provider(raw, &p, warnings)?;
            let passphrase = match raw.passphrase.as_deref() {
                Some(passphrase) => {
                    check_passphrase(&child(&p, "Passphrase"), passphrase)?;
                    Some(passphrase.to_owned())
                }
                None => srt_passphrase.map(str::to_owned),
            };
            Some(SrtSettings { common, passphrase })
        }
    };
    let mpegts = match providers.and_then(|p| p.mpegts.as_ref()) {
        None => None,
        Some(raw) => {
            let p = format!("{path}/Providers/MPEGTS");
            let common = convert_provider(raw, &p, warnings)?;
            let streams = convert_stream_map(raw.stream_map.as_ref(), &p, bind, taken)?;
            if streams.is_empty() {
                warn(warnings, &p, "no StreamMap/Stream: no UDP port feeds this application");
            }
            Some(MpegtsSettings { common, streams })
        }
    };
    if rtmp.is_none() && srt.is_none() && mpegts.is_none() {
        warn(warnings, path, "no RTMP, SRT or MPEGTS provider: nothing can publish to this application");
    }

    let publishers = raw.publishers.as_ref();
    let llhls = match publishers.and_then(|p| p.llhls.as_ref()) {
        None => None,
        Some(raw) => Some(convert_llhls(raw, &format!("{path}/Publishers/LLHLS"), bind, warnings)?),
    };
    let hls = match publishers.and_then(|p| p.hls.as_ref()) {
        None => None,
        Some(raw) => Some(convert_hls(raw, &format!("{path}/Publishers/HLS"), bind, warnings)?),
    };
    if llhls.is_none() && hls.is_none() {
        warn(warnings, path, "no LLHLS or HLS publisher: nothing is served for this application");
    }

    let publish_keys = publish_auth::convert_publish_keys(
        providers.and_then(|p| p.publish_keys.as_ref()),
        &format!("{path}/Providers/PublishKeys"),
        mpegts.is_some(),
        warnings,
    )?;
    Ok(Application { name: name.to_owned(), rtmp, srt, mpegts, llhls, hls, publish_keys })
}

/// The settings every provider has.
fn convert_provider(
    raw: &RawProvider,
    path: &str,
    warnings: &mut Vec<Warning>,
) -> Result<ProviderSettings, ConfigError> {
    let mut settings = ProviderSettings::default();
    if let Some(text) = raw.use_incoming_timestamp.as_deref() {
        let p = child(path, "UseIncomingTimestamp");
        let original = parse_bool(&p, text)?;
        let message = if raw.timestamp_mode.is_some() {
            "deprecated OvenMediaEngine element; TimestampMode is also set and takes precedence"
        } else {
            settings.timestamp_mode = if original { TimestampMode::Original } else { TimestampMode::ZeroBased };
            "deprecated OvenMediaEngine element, read as TimestampMode Original (true) or ZeroBased (false); \
             write TimestampMode instead"
        };
        warn(warnings, p, message);
    }
    if let Some(text) = raw.timestamp_mode.as_deref() {
        let p = child(path, "TimestampMode");
        settings.timestamp_mode = [
            ("ZeroBased", TimestampMode::ZeroBased),
            ("Original", TimestampMode::Original),
            ("SystemClock", TimestampMode::SystemClock),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, mode)| mode)
        .ok_or_else(|| invalid(&p, text, "ZeroBased, Original or SystemClock"))?;
    }
    if let Some(text) = raw.packet_silence_timeout_ms.as_deref() {
        let p = child(path, "PacketSilenceTimeoutMs");
        let ms = parse_u64(&p, text, "a whole number of milliseconds (0: never)")?;
        settings.packet_silence_timeout = (ms > 0).then(|| Duration::from_millis(ms));
    }
    if let Some(text) = raw.max_timestamp_jump_ms.as_deref() {
        let p = child(path, "MaxTimestampJumpMs");
        const ALLOWED: &str = "a whole number of milliseconds, at least 1";
        let ms = parse_u64(&p, text, ALLOWED)?;
        if ms == 0 {
            return Err(invalid(&p, text, ALLOWED));
        }
        settings.max_timestamp_jump = Duration::from_millis(ms);
    }
    if let Some(text) = raw.max_bitrate_kbps.as_deref() {
        let p = child(path, "MaxBitrateKbps");
        let kbps = parse_u64(&p, text, "a whole number of kilobits per second (0: no limit)")?;
        settings.max_bitrate_kbps = (kbps > 0).then_some(kbps);
    }
    Ok(settings)
}

/// `Providers/MPEGTS/StreamMap`: one [`MpegtsStream`] per mapped port.
fn convert_stream_map(
    raw: Option<&RawStreamMap>,
    path: &str,
    bind: &Bind,
    taken: &mut Taken,
) -> Result<Vec<MpegtsStream>, ConfigError> {
    let mut streams: Vec<MpegtsStream> = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let raw_streams = raw.map_or(&[][..], |m| &m.stream[..]);
    for (i, raw_stream) in raw_streams.iter().enumerate() {
        let stream_path = format!("{path}/StreamMap/Stream[{i}]");
        let name_path = child(&stream_path, "Name");
        let port_path = child(&stream_path, "Port");
        let template = required(&raw_stream.name, &name_path)?;
        let port_text = required(&raw_stream.port, &port_path)?;
        let syntax = PortSyntax {
            suffixes: &["udp"],
            single: false,
            allowed:
                "ports of Server/Bind/Providers/MPEGTS/Port as a list of ports and ranges such as 4000-4003,4005, \
                      optionally followed by /udp",
        };
        for port in parse_ports(&port_path, port_text, &syntax)? {
            if !bind.mpegts.contains(&port) {
                let bound = if bind.mpegts.is_empty() { "none".to_owned() } else { format_ports(&bind.mpegts) };
                let allowed = format!("ports bound in Server/Bind/Providers/MPEGTS/Port ({bound}); {port} is not");
                return Err(invalid(&port_path, port_text, allowed));
            }
            if let Some(other) = taken.stream_ports.get(&port) {
                return Err(ConfigError::PortInUse {
                    path: port_path,
                    port,
                    protocol: Proto::Udp.as_str(),
                    other: other.clone(),
                });
            }
            taken.stream_ports.insert(port, port_path.clone());
            let name = template.replace("${Port}", &port.to_string());
            check_url_safe(&name_path, &name)?;
            if let Some(other) = names.get(&name) {
                return Err(ConfigError::NotUnique {
                    path: name_path,
                    name,
                    other: other.clone(),
                    what: "stream names within an application's StreamMap (use ${Port} in Name to map several ports)",
                });
            }
            names.insert(name.clone(), name_path.clone());
            streams.push(MpegtsStream { name, port });
        }
    }
    Ok(streams)
}

/// Values shared by `LLHLS` and `HLS`.
struct HlsCommon {
    server_time_based_segment_numbering: bool,
    segment_duration_ms: u32,
    segment_count: u32,
    cross_domains: Vec<String>,
}

fn convert_hls_common(
    raw: &RawHlsPublisher,
    path: &str,
    bind: &Bind,
    warnings: &mut Vec<Warning>,
) -> Result<HlsCommon, ConfigError> {
    if bind.llhls.is_none() {
        warn(warnings, path, "Server/Bind/Publishers/LLHLS/Port is not set: nothing serves this publisher");
    }
    let mut numbering = true;
    if let Some(text) = raw.server_time_based_segment_numbering.as_deref() {
        let p = child(path, "ServerTimeBasedSegmentNumbering");
        numbering = parse_bool(&p, text)?;
        if !numbering {
            warn(
                warnings,
                p,
                "false is accepted but has no effect: Lockstep always derives segment numbers from the timeline",
            );
        }
    }
    let mut segment_duration_ms = 6000;
    if let Some(text) = raw.segment_duration.as_deref() {
        let p = child(path, "SegmentDuration");
        segment_duration_ms = parse_seconds_ms(&p, text)?;
        if !(500..=60_000).contains(&segment_duration_ms) {
            return Err(invalid(&p, text, "0.5 to 60 seconds"));
        }
    }
    let mut segment_count = 10;
    if let Some(text) = raw.segment_count.as_deref() {
        let p = child(path, "SegmentCount");
        const ALLOWED: &str = "a whole number, at least 3";
        segment_count = u32::try_from(parse_u64(&p, text, ALLOWED)?).map_err(|_| invalid(&p, text, ALLOWED))?;
        if segment_count < 3 {
            return Err(invalid(&p, text, ALLOWED));
        }
    }
    let mut cross_domains = Vec::new();
    let urls = raw.cross_domains.as_ref().map_or(&[][..], |c| &c.url[..]);
    for (i, url) in urls.iter().enumerate() {
        if url.is_empty() {
            let p = format!("{path}/CrossDomains/Url[{i}]");
            return Err(invalid(&p, url, "an origin pattern such as * or https://*.example.com"));
        }
        cross_domains.push(url.clone());
    }
    Ok(HlsCommon { server_time_based_segment_numbering: numbering, segment_duration_ms, segment_count, cross_domains })
}

fn convert_llhls(
    raw: &RawHlsPublisher,
    path: &str,
    bind: &Bind,
    warnings: &mut Vec<Warning>,
) -> Result<LlHlsSettings, ConfigError> {
    let common = convert_hls_common(raw, path, bind, warnings)?;
    let origin_mode = match raw.origin_mode.as_deref() {
        Some(text) => parse_bool(&child(path, "OriginMode"), text)?,
        None => true,
    };
    let mut chunk_duration_ms = 500;
    if let Some(text) = raw.chunk_duration.as_deref() {
        let p = child(path, "ChunkDuration");
        chunk_duration_ms = parse_seconds_ms(&p, text)?;
        if !(100..=common.segment_duration_ms).contains(&chunk_duration_ms) {
            let allowed = format!("0.1 seconds to SegmentDuration ({} seconds)", seconds(common.segment_duration_ms));
            return Err(invalid(&p, text, allowed));
        }
    }
    let minimum_hold_back = chunk_duration_ms * 3;
    let mut part_hold_back_ms = minimum_hold_back;
    if let Some(text) = raw.part_hold_back.as_deref() {
        let p = child(path, "PartHoldBack");
        part_hold_back_ms = parse_seconds_ms(&p, text)?;
        if part_hold_back_ms < minimum_hold_back {
            let allowed = format!("at least 3 x ChunkDuration ({} seconds)", seconds(minimum_hold_back));
            return Err(invalid(&p, text, allowed));
        }
    }
    let session_key_secret = match raw.session_key_secret.as_deref().map(str::trim) {
        Some(secret) if secret.len() < 16 => {
            return Err(invalid(
                &child(path, "SessionKeySecret"),
                &format!("({} characters)", secret.len()),
                "at least 16 characters",
            ))
        }
        Some(secret) => Some(secret.to_string()),
        None => None,
    };
    if !origin_mode && session_key_secret.is_none() {
        warnings.push(Warning {
            path: child(path, "SessionKeySecret"),
            message: "OriginMode is false and no SessionKeySecret is set: a random secret is used, so the \
                      other node of a pair cannot verify this node's session keys"
                .into(),
        });
    }
    Ok(LlHlsSettings {
        origin_mode,
        session_key_secret,
        server_time_based_segment_numbering: common.server_time_based_segment_numbering,
        chunk_duration_ms,
        part_hold_back_ms,
        segment_duration_ms: common.segment_duration_ms,
        segment_count: common.segment_count,
        cross_domains: common.cross_domains,
    })
}

fn convert_hls(
    raw: &RawHlsPublisher,
    path: &str,
    bind: &Bind,
    warnings: &mut Vec<Warning>,
) -> Result<HlsSettings, ConfigError> {
    let common = convert_hls_common(raw, path, bind, warnings)?;
    Ok(HlsSettings {
        server_time_based_segment_numbering: common.server_time_based_segment_numbering,
        segment_duration_ms: common.segment_duration_ms,
        segment_count: common.segment_count,
        cross_domains: common.cross_domains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(xml: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
        parse_str(xml, &no_env)
    }

    fn parse_ok(xml: &str) -> (Config, Vec<Warning>) {
        match parse(xml) {
            Ok(parsed) => parsed,
            Err(e) => panic!("unexpected error: {e}\n{xml}"),
        }
    }

    /// Path of the one application of [`with_app`].
    const APP: &str = "Server/VirtualHosts/VirtualHost[0]/Applications/Application[0]";

    const BIND: &str = "<Bind><Providers><RTMP><Port>1935</Port></RTMP><SRT><Port>9999</Port></SRT>\
        <MPEGTS><Port>4000-4001/udp</Port></MPEGTS></Providers>\
        <Publishers><LLHLS><Port>3333</Port></LLHLS></Publishers></Bind>";

    /// A server with [`BIND`] and one application `app` holding `body`.
    fn with_app(body: &str) -> String {
        format!(
            "<Server>{BIND}<VirtualHosts><VirtualHost><Name>default</Name><Applications>\
             <Application><Name>app</Name>{body}</Application></Applications></VirtualHost></VirtualHosts></Server>"
        )
    }

    /// A server with only `Bind` holding `body`.
    fn with_bind(body: &str) -> String {
        format!("<Server><Bind>{body}</Bind></Server>")
    }

    fn first_app(config: &Config) -> &Application {
        match config.vhosts.iter().flat_map(|v| v.apps.iter()).next() {
            Some(app) => app,
            None => panic!("no application in {config:#?}"),
        }
    }

    fn provider(mode: TimestampMode, silence_ms: Option<u64>) -> ProviderSettings {
        ProviderSettings {
            timestamp_mode: mode,
            packet_silence_timeout: silence_ms.map(Duration::from_millis),
            max_timestamp_jump: Duration::from_secs(10),
            max_bitrate_kbps: Some(crate::config::DEFAULT_MAX_BITRATE_KBPS),
        }
    }

    #[test]
    fn default_server_xml() {
        let (config, warnings) = parse_ok(include_str!("../../conf/Server.xml"));
        assert_eq!(warnings, vec![]);
        let common = provider(TimestampMode::ZeroBased, Some(3000));
        let expected = Config {
            name: "lockstep".into(),
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            bind: Bind { rtmp: Some(1935), srt: Some(9999), mpegts: vec![4000], llhls: Some(3333) },
            vhosts: vec![VirtualHost {
                name: "default".into(),
                apps: vec![Application {
                    name: "app".into(),
                    rtmp: Some(common.clone()),
                    srt: Some(SrtSettings { common: common.clone(), passphrase: None }),
                    mpegts: Some(MpegtsSettings {
                        common,
                        streams: vec![MpegtsStream { name: "stream".into(), port: 4000 }],
                    }),
                    llhls: Some(LlHlsSettings {
                        origin_mode: true,
                        session_key_secret: None,
                        server_time_based_segment_numbering: true,
                        chunk_duration_ms: 500,
                        part_hold_back_ms: 1500,
                        segment_duration_ms: 2000,
                        segment_count: 10,
                        cross_domains: vec!["*".into()],
                    }),
                    hls: Some(HlsSettings {
                        server_time_based_segment_numbering: true,
                        segment_duration_ms: 2000,
                        segment_count: 10,
                        cross_domains: vec![],
                    }),
                    publish_keys: Default::default(),
                }],
                signed_policy: None,
            }],
            api: None,
            pair: None,
            http: HttpConfig::default(),
        };
        assert_eq!(config, expected);
    }

    /// An OvenMediaEngine-style configuration with many elements Lockstep
    /// does not read: warnings, no error.
    const OME_STYLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>OvenMediaEngine</Name>
  <Type>origin</Type>
  <IP>*</IP>
  <PrivacyProtection>false</PrivacyProtection>
  <StunServer>stun.example.com:3478</StunServer>
  <Modules>
    <HTTP2><Enable>true</Enable></HTTP2>
    <LLHLS><Enable>true</Enable></LLHLS>
  </Modules>
  <Bind>
    <Managers><API><Port>8081</Port><WorkerCount>1</WorkerCount></API></Managers>
    <Providers>
      <RTSPC><WorkerCount>1</WorkerCount></RTSPC>
      <OVT><WorkerCount>1</WorkerCount></OVT>
      <RTMP><Port>${env:OME_RTMP_PROV_PORT:1935}</Port><WorkerCount>1</WorkerCount></RTMP>
      <SRT><Port>${env:OME_SRT_PROV_PORT:9999}</Port><WorkerCount>1</WorkerCount></SRT>
      <MPEGTS>
        <!-- Listen on 4000 to 4005 -->
        <Port>${env:OME_MPEGTS_PROV_PORT:4000-4004,4005/udp}</Port>
      </MPEGTS>
      <WebRTC>
        <Signalling><Port>3333</Port><TLSPort>3334</TLSPort></Signalling>
        <IceCandidates>
          <IceCandidate>${env:OME_HOST_IP_NOT_SET}:10000-10005/udp</IceCandidate>
          <TcpRelay>*:3478</TcpRelay>
        </IceCandidates>
      </WebRTC>
    </Providers>
    <Publishers>
      <OVT><Port>9000</Port><WorkerCount>1</WorkerCount></OVT>
      <LLHLS>
        <Port>${env:OME_LLHLS_STREAM_PORT:3333}</Port>
        <TLSPort>3334</TLSPort>
        <WorkerCount>1</WorkerCount>
      </LLHLS>
      <WebRTC><Signalling><Port>3333</Port></Signalling></WebRTC>
    </Publishers>
  </Bind>
  <Managers>
    <Host><Names><Name>*</Name></Names></Host>
    <API><AccessToken>secret</AccessToken></API>
  </Managers>
  <VirtualHosts>
    <VirtualHost include="VHost*.xml" />
    <VirtualHost>
      <Name>default</Name>
      <Distribution>example.com</Distribution>
      <Host>
        <Names><Name>*</Name></Names>
        <TLS><CertPath>cert.crt</CertPath><KeyPath>cert.key</KeyPath></TLS>
      </Host>
      <SignedPolicy>
        <PolicyQueryKeyName>policy</PolicyQueryKeyName>
        <SignatureQueryKeyName>signature</SignatureQueryKeyName>
        <SecretKey>aKq#1kj-0123456789</SecretKey>
        <Enables><Providers>rtmp,webrtc,srt</Providers><Publishers>webrtc,llhls</Publishers></Enables>
      </SignedPolicy>
      <Origins>
        <Origin>
          <Location>/app/x</Location>
          <Pass><Scheme>ovt</Scheme><Urls><Url>o:9000/app/x</Url></Urls></Pass>
        </Origin>
      </Origins>
      <Applications>
        <Application>
          <Name>app</Name>
          <Type>live</Type>
          <OutputProfiles>
            <HardwareAcceleration>false</HardwareAcceleration>
            <OutputProfile>
              <Name>bypass_stream</Name>
              <OutputStreamName>${OriginStreamName}</OutputStreamName>
              <Encodes><Audio><Bypass>true</Bypass></Audio><Video><Bypass>true</Bypass></Video></Encodes>
            </OutputProfile>
          </OutputProfiles>
          <Providers>
            <OVT />
            <WebRTC />
            <RTMP />
            <SRT>
              <AudioMap><Item><Name>English</Name><Language>en</Language></Item></AudioMap>
            </SRT>
            <MPEGTS>
              <StreamMap>
                <Stream>
                  <Name>stream_${Port}</Name>
                  <Port>4000,4001-4004</Port>
                </Stream>
                <Stream>
                  <Name>stream_for_4005</Name>
                  <Port>4005</Port>
                </Stream>
              </StreamMap>
            </MPEGTS>
            <RTSPPull />
            <WebRTC><Timeout>30000</Timeout></WebRTC>
          </Providers>
          <Publishers>
            <AppWorkerCount>1</AppWorkerCount>
            <StreamWorkerCount>8</StreamWorkerCount>
            <OVT />
            <WebRTC><Timeout>30000</Timeout><Rtx>false</Rtx></WebRTC>
            <LLHLS>
              <ChunkDuration>0.2</ChunkDuration>
              <SegmentDuration>6</SegmentDuration>
              <SegmentCount>10</SegmentCount>
              <DVR><Enable>false</Enable></DVR>
              <CrossDomains>
                <Url>*</Url>
              </CrossDomains>
            </LLHLS>
          </Publishers>
        </Application>
      </Applications>
    </VirtualHost>
  </VirtualHosts>
</Server>
"#;

    #[test]
    fn ome_style_server_xml_gives_warnings_not_errors() {
        let (config, warnings) = parse_ok(OME_STYLE);
        assert_eq!(config.name, "OvenMediaEngine");
        assert_eq!(config.api, Some(ApiSettings { port: 8081, access_token: "secret".into() }));
        assert_eq!(
            config.bind,
            Bind { rtmp: Some(1935), srt: Some(9999), mpegts: (4000..=4005).collect(), llhls: Some(3333) }
        );
        assert_eq!(config.vhosts.len(), 1);
        let app = first_app(&config);
        assert_eq!(app.name, "app");
        assert_eq!(app.rtmp, Some(ProviderSettings::default()));
        assert_eq!(app.srt, Some(SrtSettings::default()));
        let streams = app.mpegts.as_ref().map(|m| m.streams.clone()).unwrap_or_default();
        let mut expected: Vec<MpegtsStream> =
            (4000..=4004).map(|port| MpegtsStream { name: format!("stream_{port}"), port }).collect();
        expected.push(MpegtsStream { name: "stream_for_4005".into(), port: 4005 });
        assert_eq!(streams, expected);
        let llhls = app.llhls.clone();
        assert_eq!(
            llhls,
            Some(LlHlsSettings {
                origin_mode: true,
                session_key_secret: None,
                server_time_based_segment_numbering: true,
                chunk_duration_ms: 200,
                part_hold_back_ms: 600,
                segment_duration_ms: 6000,
                segment_count: 10,
                cross_domains: vec!["*".into()],
            })
        );
        assert_eq!(app.hls, None);

        let vh = "Server/VirtualHosts/VirtualHost[1]";
        let a = format!("{vh}/Applications/Application[0]");
        // TLSPort and the certificate of Host/TLS are read.
        assert_eq!(
            config.http,
            HttpConfig {
                tls_port: Some(3334),
                certs: vec![TlsCert {
                    path: format!("{vh}/Host/TLS"),
                    names: vec!["*".into()],
                    cert_path: "cert.crt".into(),
                    key_path: "cert.key".into(),
                    chain_path: None,
                }],
                limits: HttpLimits::default(),
            }
        );
        let expected_paths = [
            "Server/Type".to_owned(),
            "Server/PrivacyProtection".to_owned(),
            "Server/StunServer".to_owned(),
            "Server/Modules".to_owned(),
            "Server/Bind/Managers/API/WorkerCount".to_owned(),
            "Server/Bind/Providers/RTSPC".to_owned(),
            "Server/Bind/Providers/OVT".to_owned(),
            "Server/Bind/Providers/RTMP/WorkerCount".to_owned(),
            "Server/Bind/Providers/SRT/WorkerCount".to_owned(),
            "Server/Bind/Providers/WebRTC".to_owned(),
            "Server/Bind/Publishers/OVT".to_owned(),
            "Server/Bind/Publishers/LLHLS/WorkerCount".to_owned(),
            "Server/Bind/Publishers/WebRTC".to_owned(),
            "Server/Managers/Host".to_owned(),
            "Server/VirtualHosts/VirtualHost[0]".to_owned(),
            format!("{vh}/Distribution"),
            format!("{vh}/SignedPolicy/Enables/Providers"),
            format!("{vh}/SignedPolicy/Enables/Publishers"),
            format!("{vh}/Origins"),
            format!("{a}/Type"),
            format!("{a}/OutputProfiles"),
            format!("{a}/Providers/OVT"),
            format!("{a}/Providers/WebRTC"),
            format!("{a}/Providers/SRT/AudioMap"),
            format!("{a}/Providers/RTSPPull"),
            format!("{a}/Publishers/AppWorkerCount"),
            format!("{a}/Publishers/StreamWorkerCount"),
            format!("{a}/Publishers/OVT"),
            format!("{a}/Publishers/WebRTC"),
            format!("{a}/Publishers/LLHLS/DVR"),
        ];
        let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
        for p in &expected_paths {
            assert!(paths.contains(&p.as_str()), "no warning for {p} in {warnings:#?}");
        }
        assert_eq!(paths.len(), expected_paths.len(), "{warnings:#?}");
        let ignored = warnings.iter().filter(|w| w.message.contains("ignored by Lockstep")).count();
        // All but the include and SignedPolicy's webrtc are known OME elements.
        assert_eq!(ignored, expected_paths.len() - 2, "{warnings:#?}");
        let webrtc = warnings.iter().find(|w| w.path.ends_with("SignedPolicy/Enables/Providers"));
        assert!(webrtc.is_some_and(|w| w.message.starts_with("webrtc: ")), "{webrtc:?}");
        let include = warnings.iter().find(|w| w.path == "Server/VirtualHosts/VirtualHost[0]");
        assert!(include.is_some_and(|w| w.message.contains("VHost*.xml")), "{include:?}");
    }

    #[test]
    fn docs_example() {
        let doc = include_str!("../../docs/config.md");
        let xml = doc.split("```xml\n<?xml").nth(1).and_then(|rest| rest.split("```").next());
        let Some(xml) = xml.map(|x| format!("<?xml{x}")) else {
            panic!("no example in docs/config.md");
        };
        let env = |name: &str| (name == "NEWS_SRT_PASSPHRASE").then(|| "correct horse battery".to_owned());
        let (config, warnings) = match parse_str(&xml, &env) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(warnings, vec![]);
        assert_eq!(
            config.bind,
            Bind { rtmp: None, srt: Some(9999), mpegts: vec![4000, 4001, 4002, 4003], llhls: Some(8080) }
        );
        let news = config.app("news");
        let ll = news
            .and_then(|a| a.llhls.as_ref())
            .map(|l| (l.segment_duration_ms, l.chunk_duration_ms, l.part_hold_back_ms));
        assert_eq!(ll, Some((2002, 334, 1002)));
        let pass = news.and_then(|a| a.srt.as_ref()).and_then(|s| s.passphrase.as_deref());
        assert_eq!(pass, Some("correct horse battery"));
        let streams: Vec<(String, u16)> = ["news", "sport"]
            .iter()
            .filter_map(|name| config.app(name).and_then(|a| a.mpegts.as_ref()))
            .flat_map(|m| m.streams.iter().map(|s| (s.name.clone(), s.port)))
            .collect();
        let expected = [("cam_4000", 4000), ("cam_4001", 4001), ("main", 4002), ("backup", 4003)];
        assert_eq!(streams, expected.map(|(n, p)| (n.to_owned(), p)));
        let sport =
            config.app("sport").and_then(|a| a.llhls.as_ref()).map(|l| (l.segment_duration_ms, l.part_hold_back_ms));
        assert_eq!(sport, Some((6000, 1500)));
        assert_eq!(config.app("sport").and_then(|a| a.hls.as_ref()).map(|h| h.segment_duration_ms), Some(4000));
    }

    #[test]
    fn minimal_and_empty_blocks_take_the_defaults() {
        let (config, warnings) = parse_ok("<Server/>");
        assert_eq!(config.name, "lockstep");
        assert_eq!(config.ip, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(config.bind, Bind { rtmp: None, srt: None, mpegts: vec![], llhls: None });
        assert_eq!(config.vhosts, vec![]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");

        let (config, warnings) = parse_ok(&with_app(
            "<Providers><RTMP/><SRT></SRT><MPEGTS/></Providers><Publishers><LLHLS/><HLS></HLS></Publishers>",
        ));
        let app = first_app(&config);
        assert_eq!(app.rtmp, Some(ProviderSettings::default()));
        assert_eq!(app.srt, Some(SrtSettings::default()));
        assert_eq!(app.mpegts, Some(MpegtsSettings::default()));
        assert_eq!(
            app.llhls,
            Some(LlHlsSettings {
                origin_mode: true,
                session_key_secret: None,
                server_time_based_segment_numbering: true,
                chunk_duration_ms: 500,
                part_hold_back_ms: 1500,
                segment_duration_ms: 6000,
                segment_count: 10,
                cross_domains: vec![],
            })
        );
        assert_eq!(
            app.hls,
            Some(HlsSettings {
                server_time_based_segment_numbering: true,
                segment_duration_ms: 6000,
                segment_count: 10,
                cross_domains: vec![]
            })
        );
        // The MPEGTS provider without a StreamMap is warned about.
        assert_eq!(
            warnings,
            vec![Warning {
                path: format!("{APP}/Providers/MPEGTS"),
                message: "no StreamMap/Stream: no UDP port feeds this application".into()
            }]
        );

        let (config, _) = parse_ok(&with_app(""));
        assert_eq!(first_app(&config).rtmp, None);
        assert_eq!(first_app(&config).llhls, None);
    }

    #[test]
    fn decimal_seconds_are_exact_milliseconds() {
        for (text, ms) in [
            ("2.002", 2002),
            ("0.5", 500),
            ("6", 6000),
            ("1.5", 1500),
            ("1.50", 1500),
            ("0.1", 100),
            (".5", 500),
            ("6.", 6000),
            ("59.999", 59_999),
            ("0.001", 1),
            ("4294967.295", u32::MAX),
        ] {
            assert_eq!(parse_seconds_ms("p", text).ok(), Some(ms), "{text}");
        }
        for text in ["", ".", "-1", "1e3", "0x10", "1.2.3", " 1", "2.0005", "4294967.296", "99999999999999999999"] {
            assert!(parse_seconds_ms("p", text).is_err(), "{text}");
        }
        let (config, _) = parse_ok(&with_app(
            "<Publishers><LLHLS><SegmentDuration>2.002</SegmentDuration><ChunkDuration>0.334</ChunkDuration>\
             </LLHLS><HLS><SegmentDuration>4.004</SegmentDuration></HLS></Publishers>",
        ));
        let llhls = first_app(&config).llhls.clone();
        assert_eq!(
            llhls.as_ref().map(|l| (l.segment_duration_ms, l.chunk_duration_ms, l.part_hold_back_ms)),
            Some((2002, 334, 1002))
        );
        assert_eq!(first_app(&config).hls.as_ref().map(|h| h.segment_duration_ms), Some(4004));
    }

    #[test]
    fn env_placeholders() {
        let env = |name: &str| match name {
            "RTMP_PORT" => Some("2935".to_owned()),
            "EMPTY" => Some(String::new()),
            "NAME" => Some("a<b & c".to_owned()),
            _ => None,
        };
        let xml = "<Server><Name>${env:NAME}</Name><IP>${env:IP:127.0.0.1}</IP><Bind><Providers>\
                   <RTMP><Port>${env:RTMP_PORT:1935}</Port></RTMP><SRT><Port>${env:SRT_PORT:9999}</Port></SRT>\
                   <MPEGTS><Port>40${env:EMPTY:99}00-${env:LAST:4002}/udp</Port></MPEGTS></Providers></Bind></Server>";
        let (config, _) = match parse_str(xml, &env) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(config.name, "a<b & c");
        assert_eq!(config.ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(config.bind.rtmp, Some(2935));
        assert_eq!(config.bind.srt, Some(9999));
        assert_eq!(config.bind.mpegts, vec![4000, 4001, 4002]);

        // An explicitly empty default, and an unterminated placeholder left as written.
        assert_eq!(substitute_env("a${env:UNSET:}b", "p", &no_env).ok(), Some("ab".to_owned()));
        assert_eq!(substitute_env("x${env:UNSET", "p", &no_env).ok(), Some("x${env:UNSET".to_owned()));
        assert_eq!(substitute_env("${env:A:b:c}", "p", &no_env).ok(), Some("b:c".to_owned()));
        // Not re-scanned.
        let env = |_: &str| Some("${env:OTHER}".to_owned());
        assert_eq!(substitute_env("${env:A}", "p", &env).ok(), Some("${env:OTHER}".to_owned()));

        // Placeholders in ignored elements are not evaluated.
        let (_, warnings) = parse_ok("<Server><StunServer>${env:UNSET}</StunServer></Server>");
        assert_eq!(warnings[0].path, "Server/StunServer");
    }

    #[test]
    fn stream_map_ranges_and_port_placeholder() {
        let xml = "<Server><Bind><Providers><MPEGTS><Port>4000-4003,4005/udp</Port></MPEGTS></Providers></Bind>\
            <VirtualHosts><VirtualHost><Name>v</Name><Applications>\
            <Application><Name>a</Name><Providers><MPEGTS><StreamMap>\
            <Stream><Name>cam_${Port}</Name><Port>4001-4002,4000/udp</Port></Stream>\
            <Stream><Name>main</Name><Port>4005</Port></Stream>\
            </StreamMap></MPEGTS></Providers></Application>\
            <Application><Name>b</Name><Providers><MPEGTS><StreamMap>\
            <Stream><Name>other</Name><Port>4003</Port></Stream>\
            </StreamMap></MPEGTS></Providers></Application>\
            </Applications></VirtualHost></VirtualHosts></Server>";
        let (config, _) = parse_ok(xml);
        let streams = |name: &str| config.app(name).and_then(|a| a.mpegts.as_ref()).map(|m| m.streams.clone());
        let s = |name: &str, port: u16| MpegtsStream { name: name.into(), port };
        assert_eq!(
            streams("a"),
            Some(vec![s("cam_4001", 4001), s("cam_4002", 4002), s("cam_4000", 4000), s("main", 4005)])
        );
        assert_eq!(streams("b"), Some(vec![s("other", 4003)]));
        assert_eq!(format_ports(&[4005, 4000, 4001, 4002, 4003, 9]), "9,4000-4003,4005");
    }

    #[test]
    fn provider_settings_and_ome_compatibility() {
        let (config, warnings) = parse_ok(&with_app(
            "<Providers>\
             <RTMP><TimestampMode>original</TimestampMode><PacketSilenceTimeoutMs>0</PacketSilenceTimeoutMs>\
             <MaxTimestampJumpMs>2500</MaxTimestampJumpMs><MaxBitrateKbps>0</MaxBitrateKbps></RTMP>\
             <SRT><UseIncomingTimestamp>true</UseIncomingTimestamp><Passphrase>0123456789</Passphrase>\
             <MaxBitrateKbps>8000</MaxBitrateKbps></SRT>\
             <MPEGTS><TimestampMode>SystemClock</TimestampMode><PacketSilenceTimeoutMs>1500</PacketSilenceTimeoutMs>\
             <StreamMap><Stream><Name>s</Name><Port>4000</Port></Stream></StreamMap></MPEGTS>\
             </Providers><Publishers><LLHLS><ServerTimeBasedSegmentNumbering>FALSE</ServerTimeBasedSegmentNumbering>\
             <OriginMode>false</OriginMode></LLHLS></Publishers>",
        ));
        let app = first_app(&config);
        assert_eq!(
            app.rtmp,
            Some(ProviderSettings {
                timestamp_mode: TimestampMode::Original,
                packet_silence_timeout: None,
                max_timestamp_jump: Duration::from_millis(2500),
                max_bitrate_kbps: None,
            })
        );
        assert_eq!(
            app.srt,
            Some(SrtSettings {
                common: ProviderSettings { max_bitrate_kbps: Some(8000), ..provider(TimestampMode::Original, None) },
                passphrase: Some("0123456789".into())
            })
        );
        assert_eq!(
            app.mpegts.as_ref().map(|m| m.common.clone()),
            Some(provider(TimestampMode::SystemClock, Some(1500)))
        );
        let llhls = app.llhls.as_ref().map(|l| (l.origin_mode, l.server_time_based_segment_numbering));
        assert_eq!(llhls, Some((false, false)));
        let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                format!("{APP}/Providers/SRT/UseIncomingTimestamp"),
                format!("{APP}/Publishers/LLHLS/ServerTimeBasedSegmentNumbering"),
                format!("{APP}/Publishers/LLHLS/SessionKeySecret"),
            ]
        );
        assert!(warnings[1].message.contains("timeline"), "{}", warnings[1]);
    }

    #[test]
    fn srt_passphrase_from_bind_options() {
        let xml = "<Server><Bind><Providers><SRT><Port>9999</Port><Options>\
            <Option><Key>SRTO_PBKEYLEN</Key><Value>16</Value></Option>\
            <Option><Key>SRTO_PASSPHRASE</Key><Value>thisismypassphrase</Value></Option>\
            </Options></SRT></Providers></Bind><VirtualHosts><VirtualHost><Name>v</Name><Applications>\
            <Application><Name>a</Name><Providers><SRT/></Providers></Application>\
            <Application><Name>b</Name><Providers><SRT><Passphrase>another-passphrase</Passphrase></SRT></Providers>\
            </Application></Applications></VirtualHost></VirtualHosts></Server>";
        let (config, warnings) = parse_ok(xml);
        let pass = |name: &str| config.app(name).and_then(|a| a.srt.as_ref()).and_then(|s| s.passphrase.clone());
        assert_eq!(pass("a").as_deref(), Some("thisismypassphrase"));
        assert_eq!(pass("b").as_deref(), Some("another-passphrase"));
        assert_eq!(warnings[0].path, "Server/Bind/Providers/SRT/Options/Option[0]");
    }

    #[test]
    fn xml_details() {
        // Element names are case-sensitive: a lowercase element is unknown.
        let (config, warnings) =
            parse_ok(&with_app("<Providers><RTMP><timestampmode>Original</timestampmode></RTMP></Providers>"));
        assert_eq!(first_app(&config).rtmp, Some(ProviderSettings::default()));
        assert_eq!(warnings[0].path, format!("{APP}/Providers/RTMP/timestampmode"));
        assert!(warnings[0].message.starts_with("unknown element"), "{}", warnings[0]);
        // CDATA, entities, comments and surrounding whitespace.
        let (config, _) = parse_ok(&with_app(
            "<Publishers><LLHLS><CrossDomains><Url>\n  https://a.example/?x=1&amp;y=2 </Url>\
             <Url><![CDATA[http://*.b.example]]></Url><Url>h<!-- c -->ttp://c.example</Url>\
             </CrossDomains></LLHLS></Publishers>",
        ));
        let urls = first_app(&config).llhls.as_ref().map(|l| l.cross_domains.clone());
        assert_eq!(
            urls,
            Some(vec!["https://a.example/?x=1&y=2".into(), "http://*.b.example".into(), "http://c.example".into()])
        );
        // Protocol suffixes in any case, IPv6.
        let (config, _) = parse_ok(
            "<Server><IP>::</IP><Bind><Providers><RTMP><Port> 1935/TCP </Port></RTMP>\
             <SRT><Port>1935/srt</Port></SRT></Providers></Bind></Server>",
        );
        assert_eq!(config.ip, "::".parse::<IpAddr>().ok().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!((config.bind.rtmp, config.bind.srt), (Some(1935), Some(1935)));
        // A byte-order mark.
        assert!(parse("\u{feff}<Server/>").is_ok());
        assert_eq!(Warning { path: "Server/X".into(), message: "m".into() }.to_string(), "Server/X: m");
    }

    #[test]
    fn http_limits_tls_port_and_certificates() {
        // Defaults.
        let (config, _) = parse_ok(&with_bind("<Publishers><LLHLS><Port>3333</Port></LLHLS></Publishers>"));
        assert_eq!(config.http, HttpConfig::default());
        assert_eq!(
            HttpLimits::default(),
            HttpLimits {
                max_connections: 10_000,
                header_read_timeout: Duration::from_secs(10),
                max_header_bytes: 16384,
                keep_alive_idle: Duration::from_secs(60),
            }
        );
        // Every element, two virtual hosts with certificates.
        let xml = "<Server><Bind><Publishers><LLHLS><Port>80</Port><TLSPort>443/tcp</TLSPort>\
            <MaxConnections>50</MaxConnections><HeaderReadTimeoutMs>1000</HeaderReadTimeoutMs>\
            <MaxHeaderBytes>8192</MaxHeaderBytes><IdleTimeoutMs>30000</IdleTimeoutMs></LLHLS></Publishers></Bind>\
            <VirtualHosts><VirtualHost><Name>a</Name><Host><Names><Name>A.example.com</Name>\
            <Name>*.b.example.com</Name></Names><TLS><CertPath>/etc/tls/a.crt</CertPath><KeyPath>tls/a.key</KeyPath>\
            <ChainCertPath>tls/chain.pem</ChainCertPath></TLS></Host></VirtualHost>\
            <VirtualHost><Name>b</Name><Host><Names><Name>*</Name></Names></Host></VirtualHost>\
            <VirtualHost><Name>c</Name><Host><TLS><CertPath>c.crt</CertPath><KeyPath>c.key</KeyPath></TLS></Host>\
            </VirtualHost></VirtualHosts></Server>";
        let (config, _) = parse_ok(xml);
        let vh = |i: usize| format!("Server/VirtualHosts/VirtualHost[{i}]/Host/TLS");
        assert_eq!(
            config.http,
            HttpConfig {
                tls_port: Some(443),
                certs: vec![
                    TlsCert {
                        path: vh(0),
                        names: vec!["a.example.com".into(), "*.b.example.com".into()],
                        cert_path: "/etc/tls/a.crt".into(),
                        key_path: "tls/a.key".into(),
                        chain_path: Some("tls/chain.pem".into()),
                    },
                    TlsCert {
                        path: vh(2),
                        names: vec![],
                        cert_path: "c.crt".into(),
                        key_path: "c.key".into(),
                        chain_path: None,
                    },
                ],
                limits: HttpLimits {
                    max_connections: 50,
                    header_read_timeout: Duration::from_secs(1),
                    max_header_bytes: 8192,
                    keep_alive_idle: Duration::from_secs(30),
                },
            }
        );
        // A certificate without TLSPort is warned about.
        let (config, warnings) = parse_ok(&vhosts(
            "<VirtualHost><Name>v</Name><Host><TLS><CertPath>a.crt</CertPath><KeyPath>a.key</KeyPath></TLS></Host>\
             </VirtualHost>",
        ));
        assert_eq!(config.http.certs.len(), 1);
        let w = warnings.iter().find(|w| w.path == "Server/VirtualHosts/VirtualHost[0]/Host/TLS");
        assert!(w.is_some_and(|w| w.message.contains("TLSPort is not set")), "{warnings:?}");
    }

    #[test]
    fn load_resolves_tls_files_against_the_config_directory() {
        let dir = std::env::temp_dir().join(format!("lockstep-config-tls-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(dir.join("tls"));
        let file = dir.join("Server.xml");
        let xml = |key: &str| {
            format!(
                "<Server><Bind><Publishers><LLHLS><Port>80</Port><TLSPort>443</TLSPort></LLHLS></Publishers></Bind>\
                 <VirtualHosts><VirtualHost><Name>v</Name><Host><TLS><CertPath>tls/a.crt</CertPath>\
                 <KeyPath>{key}</KeyPath></TLS></Host></VirtualHost></VirtualHosts></Server>"
            )
        };
        assert!(std::fs::write(dir.join("tls/a.crt"), "cert").is_ok());
        let key = dir.join("a.key");
        assert!(std::fs::write(&key, "key").is_ok());
        assert!(std::fs::write(&file, xml(&key.display().to_string())).is_ok());
        let certs = load(&file).map(|(c, _)| c.http.certs);
        let paths = certs.as_ref().ok().and_then(|c| c.first()).map(|c| (c.cert_path.clone(), c.key_path.clone()));
        assert_eq!(paths, Some((dir.join("tls/a.crt"), key)), "{certs:?}");
        // A missing file: the error names the element and the file.
        assert!(std::fs::write(&file, xml("missing.key")).is_ok());
        let err = load(&file).err().map(|e| e.to_string()).unwrap_or_default();
        let path = "Server/VirtualHosts/VirtualHost[0]/Host/TLS/KeyPath";
        assert!(err.starts_with(path) && err.contains("missing.key") && err.contains("allowed"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn load_reads_a_file() {
        let dir = std::env::temp_dir().join(format!("lockstep-config-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("Server.xml");
        assert!(std::fs::write(&file, "<Server><Name>from-file</Name></Server>").is_ok());
        assert_eq!(load(&file).ok().map(|(c, _)| c.name), Some("from-file".to_owned()));
        let missing = dir.join("missing.xml");
        let err = load(&missing).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("missing.xml"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A server with [`BIND`] and one application whose `Providers` hold `body`.
    fn providers(body: &str) -> String {
        with_app(&format!("<Providers>{body}</Providers>"))
    }

    /// A server with [`BIND`] and one application whose `Publishers` hold `body`.
    fn publishers(body: &str) -> String {
        with_app(&format!("<Publishers>{body}</Publishers>"))
    }

    /// A server whose `VirtualHosts` hold `body`.
    fn vhosts(body: &str) -> String {
        format!("<Server><VirtualHosts>{body}</VirtualHosts></Server>")
    }

    /// A server with one virtual host `v` whose one `Application` holds `body`.
    fn one_app(body: &str) -> String {
        vhosts(&format!(
            "<VirtualHost><Name>v</Name><Applications><Application>{body}</Application></Applications></VirtualHost>"
        ))
    }

    #[test]
    fn api_settings() {
        let xml = "<Server><Bind><Managers><API><Port>8081/tcp</Port><TLSPort>8082</TLSPort></API></Managers>\
                   </Bind><Managers><Host><Names><Name>*</Name></Names></Host><API>\
                   <AccessToken>${env:TOKEN:user:pass}</AccessToken><CrossDomains><Url>*</Url></CrossDomains>\
                   </API></Managers></Server>";
        let (config, warnings) = parse_ok(xml);
        assert_eq!(config.api, Some(ApiSettings { port: 8081, access_token: "user:pass".into() }));
        assert!(!format!("{config:?}").contains("user:pass"), "the token is not in Debug output");
        let mut paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            [
                "Server/Bind/Managers/API/TLSPort",
                "Server/Managers/API/CrossDomains",
                "Server/Managers/Host",
                "Server/VirtualHosts"
            ]
        );
        // A token without a port: no API, and a warning.
        let (config, warnings) =
            parse_ok("<Server><Managers><API><AccessToken>t</AccessToken></API></Managers></Server>");
        assert_eq!(config.api, None);
        assert!(warnings.iter().any(|w| w.path == "Server/Managers/API/AccessToken"), "{warnings:?}");
        // No Managers at all: no API.
        assert_eq!(parse_ok("<Server/>").0.api, None);
    }

    #[test]
    fn invalid_configurations_name_the_path() {
        let a = APP;
        let rtmp_port = "Server/Bind/Providers/RTMP/Port";
        let mpegts_port = "Server/Bind/Providers/MPEGTS/Port";
        let llhls = format!("{a}/Publishers/LLHLS");
        let hls = format!("{a}/Publishers/HLS");
        let stream0 = format!("{a}/Providers/MPEGTS/StreamMap/Stream[0]");
        let app0 = "Server/VirtualHosts/VirtualHost[0]/Applications/Application[0]";
        let long = "x".repeat(80);
        let map = |streams: &str| providers(&format!("<MPEGTS><StreamMap>{streams}</StreamMap></MPEGTS>"));
        // (xml, path the message starts with, other text the message contains)
        let rows: Vec<(String, String, String)> = vec![
            (
                providers("<RTMP><TimestampMode>Zero</TimestampMode></RTMP>"),
                format!("{a}/Providers/RTMP/TimestampMode"),
                "\"Zero\"; allowed: ZeroBased, Original or SystemClock".into(),
            ),
            (
                with_bind("<Providers><RTMP><Port>0</Port></RTMP></Providers>"),
                rtmp_port.into(),
                "\"0\"; allowed: one port number 1-65535".into(),
            ),
            (with_bind("<Providers><RTMP><Port>70000</Port></RTMP></Providers>"), rtmp_port.into(), "\"70000\"".into()),
            (with_bind("<Providers><RTMP><Port>abc</Port></RTMP></Providers>"), rtmp_port.into(), "\"abc\"".into()),
            (
                with_bind("<Providers><RTMP><Port>1935/udp</Port></RTMP></Providers>"),
                rtmp_port.into(),
                "optionally followed by /tcp".into(),
            ),
            (with_bind("<Providers><RTMP></RTMP></Providers>"), rtmp_port.into(), "missing".into()),
            (
                with_bind("<Providers><SRT><Port>9999,10000</Port></SRT></Providers>"),
                "Server/Bind/Providers/SRT/Port".into(),
                "one port number".into(),
            ),
            (
                with_bind(
                    "<Providers><RTMP><Port>8080</Port></RTMP></Providers>\
                     <Publishers><LLHLS><Port>8080/tcp</Port></LLHLS></Publishers>",
                ),
                "Server/Bind/Publishers/LLHLS/Port".into(),
                format!("port 8080/tcp is already used by {rtmp_port}"),
            ),
            (
                with_bind(
                    "<Providers><SRT><Port>4001</Port></SRT>\
                     <MPEGTS><Port>4000-4003/udp</Port></MPEGTS></Providers>",
                ),
                mpegts_port.into(),
                "port 4001/udp is already used by Server/Bind/Providers/SRT/Port".into(),
            ),
            (
                with_bind("<Providers><MPEGTS><Port>4000-4002,4001</Port></MPEGTS></Providers>"),
                mpegts_port.into(),
                "port 4001/udp".into(),
            ),
            (
                with_bind("<Providers><MPEGTS><Port>4003-4000</Port></MPEGTS></Providers>"),
                mpegts_port.into(),
                "\"4003-4000\"".into(),
            ),
            (
                with_bind("<Providers><MPEGTS><Port>4000/tcp</Port></MPEGTS></Providers>"),
                mpegts_port.into(),
                "optionally followed by /udp".into(),
            ),
            (
                with_bind(
                    "<Providers><SRT><Port>9999</Port><Options><Option><Key>SRTO_PASSPHRASE</Key>\
                     <Value>short</Value></Option></Options></SRT></Providers>",
                ),
                "Server/Bind/Providers/SRT/Options/Option[0]/Value".into(),
                "10 to 79 bytes".into(),
            ),
            (
                "<Server><IP>localhost</IP></Server>".into(),
                "Server/IP".into(),
                "\"localhost\"; allowed: * (all addresses)".into(),
            ),
            ("<Server><Name></Name></Server>".into(), "Server/Name".into(), "a non-empty name".into()),
            (
                publishers("<LLHLS><ChunkDuration>0.05</ChunkDuration></LLHLS>"),
                format!("{llhls}/ChunkDuration"),
                "\"0.05\"; allowed: 0.1 seconds to SegmentDuration (6 seconds)".into(),
            ),
            (
                publishers("<LLHLS><SegmentDuration>2</SegmentDuration><ChunkDuration>2.5</ChunkDuration></LLHLS>"),
                format!("{llhls}/ChunkDuration"),
                "SegmentDuration (2 seconds)".into(),
            ),
            (
                publishers("<LLHLS><ChunkDuration>0.5</ChunkDuration><PartHoldBack>1.499</PartHoldBack></LLHLS>"),
                format!("{llhls}/PartHoldBack"),
                "\"1.499\"; allowed: at least 3 x ChunkDuration (1.5 seconds)".into(),
            ),
            (
                publishers("<LLHLS><PartHoldBack>1</PartHoldBack></LLHLS>"),
                format!("{llhls}/PartHoldBack"),
                "at least 3 x ChunkDuration (1.5 seconds)".into(),
            ),
            (
                publishers("<LLHLS><SegmentDuration>0.4</SegmentDuration></LLHLS>"),
                format!("{llhls}/SegmentDuration"),
                "0.5 to 60 seconds".into(),
            ),
            (
                publishers("<HLS><SegmentDuration>60.001</SegmentDuration></HLS>"),
                format!("{hls}/SegmentDuration"),
                "0.5 to 60 seconds".into(),
            ),
            (
                publishers("<HLS><SegmentDuration>2.0005</SegmentDuration></HLS>"),
                format!("{hls}/SegmentDuration"),
                "\"2.0005\"; allowed: at most 3 decimal places".into(),
            ),
            (
                publishers("<LLHLS><SegmentDuration>6s</SegmentDuration></LLHLS>"),
                format!("{llhls}/SegmentDuration"),
                "\"6s\"; allowed: seconds as a decimal number".into(),
            ),
            (
                publishers("<LLHLS><SegmentCount>2</SegmentCount></LLHLS>"),
                format!("{llhls}/SegmentCount"),
                "at least 3".into(),
            ),
            (
                publishers("<HLS><SegmentCount>ten</SegmentCount></HLS>"),
                format!("{hls}/SegmentCount"),
                "\"ten\"".into(),
            ),
            (
                publishers("<LLHLS><OriginMode>yes</OriginMode></LLHLS>"),
                format!("{llhls}/OriginMode"),
                "\"yes\"; allowed: true or false".into(),
            ),
            (
                publishers("<HLS><ServerTimeBasedSegmentNumbering>1</ServerTimeBasedSegmentNumbering></HLS>"),
                format!("{hls}/ServerTimeBasedSegmentNumbering"),
                "true or false".into(),
            ),
            (
                publishers("<LLHLS><CrossDomains><Url>*</Url><Url/></CrossDomains></LLHLS>"),
                format!("{llhls}/CrossDomains/Url[1]"),
                "an origin pattern".into(),
            ),
            (
                providers("<SRT><Passphrase>short</Passphrase></SRT>"),
                format!("{a}/Providers/SRT/Passphrase"),
                "(5 bytes)\"; allowed: a passphrase of 10 to 79 bytes".into(),
            ),
            (
                providers(&format!("<SRT><Passphrase>{long}</Passphrase></SRT>")),
                format!("{a}/Providers/SRT/Passphrase"),
                "(80 bytes)".into(),
            ),
            (
                providers("<RTMP><PacketSilenceTimeoutMs>-1</PacketSilenceTimeoutMs></RTMP>"),
                format!("{a}/Providers/RTMP/PacketSilenceTimeoutMs"),
                "\"-1\"; allowed: a whole number of milliseconds".into(),
            ),
            (
                providers("<MPEGTS><MaxTimestampJumpMs>0</MaxTimestampJumpMs></MPEGTS>"),
                format!("{a}/Providers/MPEGTS/MaxTimestampJumpMs"),
                "at least 1".into(),
            ),
            (
                providers("<RTMP><MaxBitrateKbps>fast</MaxBitrateKbps></RTMP>"),
                format!("{a}/Providers/RTMP/MaxBitrateKbps"),
                "kilobits per second".into(),
            ),
            (
                providers("<SRT><UseIncomingTimestamp>maybe</UseIncomingTimestamp></SRT>"),
                format!("{a}/Providers/SRT/UseIncomingTimestamp"),
                "true or false".into(),
            ),
            (
                map("<Stream><Name>st/${Port}</Name><Port>4000</Port></Stream>"),
                format!("{stream0}/Name"),
                "\"st/4000\"; allowed: letters, digits".into(),
            ),
            (
                map("<Stream><Name>s</Name><Port>5000</Port></Stream>"),
                format!("{stream0}/Port"),
                "ports bound in Server/Bind/Providers/MPEGTS/Port (4000-4001); 5000 is not".into(),
            ),
            (
                map("<Stream><Name>s</Name><Port>4000</Port></Stream>\
                     <Stream><Name>t</Name><Port>4001,4000</Port></Stream>"),
                format!("{a}/Providers/MPEGTS/StreamMap/Stream[1]/Port"),
                format!("port 4000/udp is already used by {stream0}/Port"),
            ),
            (
                map("<Stream><Name>s</Name><Port>4000-4001</Port></Stream>"),
                format!("{stream0}/Name"),
                "\"s\" is already used by".into(),
            ),
            (map("<Stream><Port>4000</Port></Stream>"), format!("{stream0}/Name"), "missing".into()),
            (map("<Stream><Name>s</Name></Stream>"), format!("{stream0}/Port"), "missing".into()),
            (
                providers("<SRT><Passphrase>${env:SRT_PASSPHRASE}</Passphrase></SRT>"),
                format!("{a}/Providers/SRT/Passphrase"),
                "environment variable SRT_PASSPHRASE is not set".into(),
            ),
            (
                "<Server><Name>${env::x}</Name></Server>".into(),
                "Server/Name".into(),
                "placeholder ${env::x} names no variable".into(),
            ),
            (with_app("<Name>again</Name>"), format!("{a}/Name"), "<Name> appears more than once".into()),
            (publishers("<LLHLS/><LLHLS/>"), llhls.clone(), "appears more than once".into()),
            (one_app("<Providers/>"), format!("{app0}/Name"), "missing".into()),
            (
                vhosts("<VirtualHost><Applications/></VirtualHost>"),
                "Server/VirtualHosts/VirtualHost[0]/Name".into(),
                "missing".into(),
            ),
            (
                vhosts("<VirtualHost><Name>v</Name></VirtualHost><VirtualHost><Name>v</Name></VirtualHost>"),
                "Server/VirtualHosts/VirtualHost[1]/Name".into(),
                "\"v\" is already used by Server/VirtualHosts/VirtualHost[0]/Name".into(),
            ),
            (
                vhosts(
                    "<VirtualHost><Name>v</Name><Applications><Application><Name>app</Name></Application>\
                     </Applications></VirtualHost><VirtualHost><Name>w</Name><Applications>\
                     <Application><Name>x</Name></Application><Application><Name>app</Name></Application>\
                     </Applications></VirtualHost>",
                ),
                "Server/VirtualHosts/VirtualHost[1]/Applications/Application[1]/Name".into(),
                format!("\"app\" is already used by {app0}/Name"),
            ),
            (
                one_app("<Name>my app</Name>"),
                format!("{app0}/Name"),
                "\"my app\"; allowed: letters, digits, '.', '_' and '-'".into(),
            ),
            (one_app("<Name>..</Name>"), format!("{app0}/Name"), "\"..\"".into()),
            (
                "<OvenMediaEngine><Name>x</Name></OvenMediaEngine>".into(),
                "root element".into(),
                "found <OvenMediaEngine>; allowed: <Server>".into(),
            ),
            ("<!-- nothing -->".into(), "root element".into(), "found no element".into()),
            ("<Server><Name>x</Server>".into(), "Server/Name".into(), "malformed XML at line 1".into()),
            ("<Server>\n  <Bind>\n".into(), "Server/Bind".into(), "end of document before </Bind>".into()),
            ("<Server/><Server/>".into(), "Server".into(), "a second root element".into()),
            ("<Server><Name>a &unknown; b</Name></Server>".into(), "Server/Name".into(), "malformed XML".into()),
            (
                with_bind("<Managers><API><Port>0</Port></API></Managers>"),
                "Server/Bind/Managers/API/Port".into(),
                "\"0\"; allowed: one port number 1-65535".into(),
            ),
            (with_bind("<Managers><API></API></Managers>"), "Server/Bind/Managers/API/Port".into(), "missing".into()),
            (
                with_bind("<Managers><API><Port>8081</Port></API></Managers>"),
                "Server/Managers/API/AccessToken".into(),
                "missing".into(),
            ),
            (
                "<Server><Bind><Managers><API><Port>8081</Port></API></Managers></Bind>\
                 <Managers><API><AccessToken> </AccessToken></API></Managers></Server>"
                    .into(),
                "Server/Managers/API/AccessToken".into(),
                "a non-empty token".into(),
            ),
            (
                "<Server><Bind><Managers><API><Port>3333</Port></API></Managers>\
                 <Publishers><LLHLS><Port>3333</Port></LLHLS></Publishers></Bind>\
                 <Managers><API><AccessToken>t</AccessToken></API></Managers></Server>"
                    .into(),
                "Server/Bind/Managers/API/Port".into(),
                "port 3333/tcp is already used by Server/Bind/Publishers/LLHLS/Port".into(),
            ),
            // HTTP server: TLSPort, limits, certificates.
            (
                with_bind("<Publishers><LLHLS><Port>3333</Port><TLSPort>3334</TLSPort></LLHLS></Publishers>"),
                "Server/Bind/Publishers/LLHLS/TLSPort".into(),
                "\"3334\"; allowed: a TLS port only with a certificate: set Host/TLS/CertPath".into(),
            ),
            (
                with_bind("<Publishers><LLHLS><Port>3333</Port><TLSPort>3333</TLSPort></LLHLS></Publishers>"),
                "Server/Bind/Publishers/LLHLS/TLSPort".into(),
                "port 3333/tcp is already used by Server/Bind/Publishers/LLHLS/Port".into(),
            ),
            (
                with_bind(
                    "<Providers><RTMP><Port>1935</Port></RTMP></Providers>\
                     <Publishers><LLHLS><Port>3333</Port><TLSPort>1935</TLSPort></LLHLS></Publishers>",
                ),
                "Server/Bind/Publishers/LLHLS/TLSPort".into(),
                format!("port 1935/tcp is already used by {rtmp_port}"),
            ),
            (
                with_bind("<Publishers><LLHLS><Port>3333</Port><TLSPort>443/udp</TLSPort></LLHLS></Publishers>"),
                "Server/Bind/Publishers/LLHLS/TLSPort".into(),
                "one port number 1-65535, optionally followed by /tcp".into(),
            ),
            (
                with_bind("<Publishers><LLHLS><Port>1</Port><MaxConnections>0</MaxConnections></LLHLS></Publishers>"),
                "Server/Bind/Publishers/LLHLS/MaxConnections".into(),
                "\"0\"; allowed: a whole number of connections from 1 to 1000000".into(),
            ),
            (
                with_bind(
                    "<Publishers><LLHLS><Port>1</Port><HeaderReadTimeoutMs>1s</HeaderReadTimeoutMs></LLHLS></Publishers>",
                ),
                "Server/Bind/Publishers/LLHLS/HeaderReadTimeoutMs".into(),
                "\"1s\"; allowed: a whole number of milliseconds from 100 to 600000".into(),
            ),
            (
                with_bind("<Publishers><LLHLS><Port>1</Port><MaxHeaderBytes>4096</MaxHeaderBytes></LLHLS></Publishers>"),
                "Server/Bind/Publishers/LLHLS/MaxHeaderBytes".into(),
                "a whole number of bytes from 8192 to 1048576".into(),
            ),
            (
                with_bind("<Publishers><LLHLS><Port>1</Port><IdleTimeoutMs>99</IdleTimeoutMs></LLHLS></Publishers>"),
                "Server/Bind/Publishers/LLHLS/IdleTimeoutMs".into(),
                "from 100 to 3600000".into(),
            ),
            (
                vhosts("<VirtualHost><Name>v</Name><Host><TLS><CertPath>a.crt</CertPath></TLS></Host></VirtualHost>"),
                "Server/VirtualHosts/VirtualHost[0]/Host/TLS/KeyPath".into(),
                "missing".into(),
            ),
            (
                vhosts(
                    "<VirtualHost><Name>v</Name><Host><TLS><CertPath></CertPath><KeyPath>k</KeyPath></TLS></Host>\
                     </VirtualHost>",
                ),
                "Server/VirtualHosts/VirtualHost[0]/Host/TLS/CertPath".into(),
                "the path of a PEM file".into(),
            ),
            (
                vhosts("<VirtualHost><Name>v</Name><Host><Names><Name>*</Name><Name/></Names></Host></VirtualHost>"),
                "Server/VirtualHosts/VirtualHost[0]/Host/Names/Name[1]".into(),
                "a host name, * (any) or a wildcard".into(),
            ),
        ];
        assert!(rows.len() >= 20);
        for (xml, path, detail) in rows {
            let err = match parse(&xml) {
                Ok((config, _)) => panic!("accepted:\n{xml}\n{config:#?}"),
                Err(e) => e.to_string(),
            };
            assert!(err.starts_with(&format!("{path}:")), "expected path {path} in: {err}\n{xml}");
            assert!(err.contains(&detail), "expected {detail:?} in: {err}\n{xml}");
            assert!(err.contains("allowed"), "no allowed values in: {err}");
        }
    }
}
