//! Configuration: `Server.xml` with OvenMediaEngine's element names, parsed
//! once at startup into the validated types below (see `parse.rs`). Every
//! component receives only the part it needs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

mod parse;

pub use parse::load;
/// Parsing from a string, with the environment given (the fuzz targets).
pub use parse::{parse_str, ConfigError, Warning};

/// The whole validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `Server/Name`.
    pub name: String,
    /// `Server/IP`: the address every listener binds (`*` = all, 0.0.0.0).
    pub ip: IpAddr,
    pub bind: Bind,
    pub vhosts: Vec<VirtualHost>,
    /// The REST API and metrics listener (OME's `Managers/API`); `None`
    /// when `Bind/Managers/API/Port` is not set.
    pub api: Option<ApiSettings>,
    /// How the LLHLS port (and its TLS port) is served.
    pub http: HttpConfig,
    /// `Server/Pair` (Lockstep): this node's role in a redundant pair;
    /// `None` for a single node.
    pub pair: Option<PairSettings>,
}

/// Which node of the pair this is. When both start a stream together, the
/// main's timeline wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairRole {
    Main,
    Backup,
}

/// `Server/Pair`.
#[derive(Clone, PartialEq, Eq)]
pub struct PairSettings {
    /// `Role`: `main` or `backup`.
    pub role: PairRole,
    /// `PeerUrl`: the peer's LLHLS HTTP base, `http://HOST:PORT`.
    pub peer_url: String,
    /// `Secret`: authenticates the peer link (at least 16 characters).
    pub secret: String,
    /// `NtpServers/Server`: `HOST:PORT` to measure this node's clock offset.
    pub ntp_servers: Vec<String>,
    /// `MaxClockOffsetMs`: above this (NTP offset, or the offset to the peer)
    /// the health endpoint answers 503 (default 50).
    pub max_clock_offset_ms: u32,
}

impl std::fmt::Debug for PairSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairSettings")
            .field("role", &self.role)
            .field("peer_url", &self.peer_url)
            .field("secret", &REDACTED)
            .field("ntp_servers", &self.ntp_servers)
            .field("max_clock_offset_ms", &self.max_clock_offset_ms)
            .finish()
    }
}

/// What `Debug` prints in place of a secret.
const REDACTED: &str = "<redacted>";

/// `Server/Bind/Managers/API` and `Server/Managers/API`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// `Server/Bind/Managers/API/Port` (TCP).
    pub port: u16,
    /// `Server/Managers/API/AccessToken`: the HTTP Basic credentials before
    /// base64 (`user:password`, or any token), as in OME.
    pub access_token: String,
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings").field("port", &self.port).field("access_token", &REDACTED).finish()
    }
}

/// The HTTP server of LL-HLS and HLS: `Bind/Publishers/LLHLS/TLSPort`, the
/// certificates of `VirtualHost/Host/TLS`, and Lockstep's connection limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpConfig {
    /// `Bind/Publishers/LLHLS/TLSPort`: HTTPS for LL-HLS and HLS (same
    /// content as the plain port). Validated to come with a certificate.
    pub tls_port: Option<u16>,
    /// One entry per virtual host with `Host/TLS`, in file order. The first
    /// is used when the client's SNI matches no `Host/Names/Name`.
    pub certs: Vec<TlsCert>,
    /// Limits applied to every HTTP connection (plain and TLS).
    pub limits: HttpLimits,
}

/// `VirtualHost/Host`: names and certificate files (paths resolved against
/// the configuration file's directory by [`load`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsCert {
    /// XML path of the `Host/TLS` element, for messages.
    pub path: String,
    /// `Host/Names/Name`: the SNI names this certificate answers (`*`: any,
    /// `*.example.com`: any subdomain). Empty: any.
    pub names: Vec<String>,
    /// `Host/TLS/CertPath`: PEM, the server certificate (may hold the chain).
    pub cert_path: PathBuf,
    /// `Host/TLS/KeyPath`: PEM, the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// `Host/TLS/ChainCertPath`: PEM, intermediate certificates sent after
    /// the server certificate.
    pub chain_path: Option<PathBuf>,
}

/// Connection limits of the HTTP server (`Bind/Publishers/LLHLS/...`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// `MaxConnections`: open connections at most, plain and TLS counted
    /// separately (default 10 000). Beyond it a connection is accepted and
    /// closed at once.
    pub max_connections: usize,
    /// `HeaderReadTimeoutMs`: a request head must arrive within this time
    /// (default 10 s) of the connection being ready (after the TLS
    /// handshake) or, on HTTP/1.1, of its first byte; otherwise the
    /// connection is closed (slowloris).
    pub header_read_timeout: Duration,
    /// `MaxHeaderBytes`: the largest request head (HTTP/1.1 buffer, HTTP/2
    /// header list), default 16 KiB. Larger: 431 (HTTP/1.1) or a stream
    /// error (HTTP/2).
    pub max_header_bytes: usize,
    /// `IdleTimeoutMs`: a connection with no request for this long is
    /// closed (default 60 s).
    pub keep_alive_idle: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            keep_alive_idle: Duration::from_secs(60),
        }
    }
}

/// `Server/Bind`: the ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// `Bind/Providers/RTMP/Port`.
    pub rtmp: Option<u16>,
    /// `Bind/Providers/SRT/Port`.
    pub srt: Option<u16>,
    /// `Bind/Providers/MPEGTS/Port`: UDP ports (`4000-4003,4005/udp`).
    pub mpegts: Vec<u16>,
    /// `Bind/Publishers/LLHLS/Port`: HTTP for LL-HLS and HLS.
    pub llhls: Option<u16>,
}

/// `Server/VirtualHosts/VirtualHost`.
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualHost {
    pub name: String,
    pub apps: Vec<Application>,
    /// `SignedPolicy`: publish URLs of this host's applications must carry
    /// a valid signed policy (see `docs/security.md`).
    pub signed_policy: Option<SignedPolicy>,
}

/// `VirtualHost/SignedPolicy` (OvenMediaEngine's names): an HMAC-SHA1
/// signature over the publish URL and a policy with an expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedPolicy {
    /// `PolicyQueryKeyName` (default `policy`).
    pub policy_query_key: String,
    /// `SignatureQueryKeyName` (default `signature`).
    pub signature_query_key: String,
    /// `SecretKey`: the HMAC key (at least 16 characters).
    pub secret_key: String,
    /// `Enables/Providers` lists `rtmp`.
    pub rtmp: bool,
    /// `Enables/Providers` lists `srt`.
    pub srt: bool,
}

impl std::fmt::Debug for SignedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedPolicy")
            .field("policy_query_key", &self.policy_query_key)
            .field("signature_query_key", &self.signature_query_key)
            .field("secret_key", &REDACTED)
            .field("rtmp", &self.rtmp)
            .field("srt", &self.srt)
            .finish()
    }
}

/// `Application/Providers/PublishKeys/Key` (Lockstep): RTMP and SRT
/// publishers of the application must present one of these keys as the
/// `key` query parameter. Empty: no key is asked for.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PublishKeys(pub Vec<String>);

impl std::fmt::Debug for PublishKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublishKeys({} keys, {REDACTED})", self.0.len())
    }
}

/// `VirtualHost/Applications/Application`.
#[derive(Clone, Debug, PartialEq)]
pub struct Application {
    /// `Name`: the first path element of every URL of the app.
    pub name: String,
    /// `Providers/RTMP`; `None` when the element is absent (RTMP publishing
    /// to this app is refused).
    pub rtmp: Option<ProviderSettings>,
    pub srt: Option<SrtSettings>,
    pub mpegts: Option<MpegtsSettings>,
    /// `Publishers/LLHLS`.
    pub llhls: Option<LlHlsSettings>,
    /// `Publishers/HLS`.
    pub hls: Option<HlsSettings>,
    /// `Providers/PublishKeys`.
    pub publish_keys: PublishKeys,
}

/// How a provider turns encoder timestamps into the server timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimestampMode {
    /// Encoder timestamp minus the stream's first one.
    #[default]
    ZeroBased,
    /// The encoder's timestamps, unwrapped.
    Original,
    /// Encoder timestamp plus an offset mapping it onto UTC.
    SystemClock,
}

/// Settings every provider has (`Providers/{RTMP,SRT,MPEGTS}/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderSettings {
    /// `TimestampMode` (default ZeroBased).
    pub timestamp_mode: TimestampMode,
    /// `PacketSilenceTimeoutMs`: no packet for this long ends the stream.
    /// `None` (element absent or 0): never.
    pub packet_silence_timeout: Option<Duration>,
    /// `MaxTimestampJumpMs` (Lockstep): a forward jump of encoder timestamps
    /// larger than this is a discontinuity (default 10 s).
    pub max_timestamp_jump: Duration,
    /// `MaxBitrateKbps` (Lockstep): a publisher whose media arrives faster
    /// than this, averaged over [`BITRATE_BURST`], is dropped (default
    /// [`DEFAULT_MAX_BITRATE_KBPS`]). `None` (0): no limit.
    pub max_bitrate_kbps: Option<u64>,
}

/// The default of `MaxBitrateKbps`: 50 Mb/s, above any contribution encode
/// of one stream (a 4K H.264 feed is 20 to 40 Mb/s).
pub const DEFAULT_MAX_BITRATE_KBPS: u64 = 50_000;

/// How much media a publisher may send at once beyond `MaxBitrateKbps`:
/// this many seconds of it (a keyframe, or a backlog after a network stall).
pub const BITRATE_BURST: Duration = Duration::from_secs(4);

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            timestamp_mode: TimestampMode::ZeroBased,
            packet_silence_timeout: None,
            max_timestamp_jump: Duration::from_secs(10),
            max_bitrate_kbps: Some(DEFAULT_MAX_BITRATE_KBPS),
        }
    }
}

/// `Providers/SRT`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SrtSettings {
    pub common: ProviderSettings,
    /// `Passphrase`: SRT encryption passphrase (10 to 79 characters);
    /// `None` for unencrypted.
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for SrtSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtSettings")
            .field("common", &self.common)
            .field("passphrase", &self.passphrase.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// `Providers/MPEGTS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MpegtsSettings {
    pub common: ProviderSettings,
    /// `StreamMap/Stream`: which UDP port feeds which stream.
    pub streams: Vec<MpegtsStream>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MpegtsStream {
    /// `Name` (with `${Port}` replaced by the port).
    pub name: String,
    pub port: u16,
}

/// `Publishers/LLHLS`.
#[derive(Clone, PartialEq, Eq)]
pub struct LlHlsSettings {
    /// `OriginMode` (default true): URLs carry no per-session data.
    pub origin_mode: bool,
    /// `SessionKeySecret` (Lockstep): the HMAC secret for viewer session keys
    /// when OriginMode is false; both nodes of a pair must share it. `None`:
    /// a random secret per process.
    pub session_key_secret: Option<String>,
    /// `ServerTimeBasedSegmentNumbering` (default true). Lockstep always
    /// derives numbers from the timeline; `false` is accepted and warned.
    pub server_time_based_segment_numbering: bool,
    /// `ChunkDuration` in ms (default 500).
    pub chunk_duration_ms: u32,
    /// `PartHoldBack` in ms (default 3 x ChunkDuration).
    pub part_hold_back_ms: u32,
    /// `SegmentDuration` in ms (default 6000).
    pub segment_duration_ms: u32,
    /// `SegmentCount` (default 10).
    pub segment_count: u32,
    /// `CrossDomains/Url`.
    pub cross_domains: Vec<String>,
}

impl std::fmt::Debug for LlHlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlHlsSettings")
            .field("origin_mode", &self.origin_mode)
            .field("session_key_secret", &self.session_key_secret.as_ref().map(|_| REDACTED))
            .field("server_time_based_segment_numbering", &self.server_time_based_segment_numbering)
            .field("chunk_duration_ms", &self.chunk_duration_ms)
            .field("part_hold_back_ms", &self.part_hold_back_ms)
            .field("segment_duration_ms", &self.segment_duration_ms)
            .field("segment_count", &self.segment_count)
            .field("cross_domains", &self.cross_domains)
            .finish()
    }
}

/// `Publishers/HLS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsSettings {
    pub server_time_based_segment_numbering: bool,
    /// `SegmentDuration` in ms (default 6000).
    pub segment_duration_ms: u32,
    /// `SegmentCount` (default 10).
    pub segment_count: u32,
    pub cross_domains: Vec<String>,
}

impl Config {
    /// The application `name` (in any virtual host; names are unique across
    /// virtual hosts after validation).
    pub fn app(&self, name: &str) -> Option<&Application> {
        self.vhosts.iter().flat_map(|v| v.apps.iter()).find(|a| a.name == name)
    }

    /// The `SignedPolicy` of the virtual host holding the application `name`.
    pub fn signed_policy(&self, name: &str) -> Option<&SignedPolicy> {
        self.vhosts.iter().find(|v| v.apps.iter().any(|a| a.name == name)).and_then(|v| v.signed_policy.as_ref())
    }
}
