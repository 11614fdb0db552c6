//! The `lockstep` command: parses arguments, loads the configuration, binds
//! and runs the server until SIGINT/SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use lockstep::{config, package, server, sign_url, timeline, verify};

const USAGE: &str = "usage:
  lockstep [--config PATH]          run the server (default config: conf/Server.xml)
  lockstep --check-config [--config PATH]
                                    validate the configuration and exit
  lockstep package INPUT OUT_DIR    package a recorded FLV or MPEG-TS stream into OUT_DIR
  lockstep verify --main URL --backup URL --stream APP/STREAM [--duration S] [--verbose]
                                    check that both nodes of a pair serve identical bytes
  lockstep sign-url URL [--config PATH | --secret-env NAME] [--expire-in S] [...]
                                    print a signed publish URL (SignedPolicy; sign-url --help)
  lockstep --version | --help

Logging: RUST_LOG (default info), e.g. RUST_LOG=lockstep=debug";

enum Command {
    Run { config: PathBuf, check_only: bool },
    Package { input: PathBuf, out: PathBuf },
    Verify(Vec<String>),
    SignUrl(Vec<String>),
    Version,
    Help,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut config = PathBuf::from("conf/Server.xml");
    let mut check_only = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--version" | "-V" => return Ok(Command::Version),
            "--help" | "-h" => return Ok(Command::Help),
            "--check-config" => check_only = true,
            "--config" | "-c" => {
                i += 1;
                config = PathBuf::from(args.get(i).ok_or("--config needs a path")?);
            }
            "verify" if i == 0 => return Ok(Command::Verify(args[1..].to_vec())),
            "sign-url" if i == 0 => return Ok(Command::SignUrl(args[1..].to_vec())),
            "package" if i == 0 => {
                return match &args[1..] {
                    [input, out] => Ok(Command::Package { input: input.into(), out: out.into() }),
                    _ => Err("package needs INPUT and OUT_DIR".into()),
                };
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
        i += 1;
    }
    Ok(Command::Run { config, check_only })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lockstep: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd {
        Command::Version => {
            println!("lockstep {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Package { input, out } => package::package(&input, &out),
        Command::Verify(args) => return verify::main(&args),
        Command::SignUrl(args) if args.iter().any(|a| a == "--help" || a == "-h") => {
            println!("{}", sign_url::USAGE);
            Ok(())
        }
        Command::SignUrl(args) => return sign_url::main(&args),
        Command::Run { config, check_only } => run(&config, check_only),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lockstep: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &Path, check_only: bool) -> Result<()> {
    tracing_subscriber::fmt().with_env_filter(log_filter()).init();
    let (config, warnings) = config::load(path).with_context(|| format!("configuration {}", path.display()))?;
    for w in &warnings {
        warn!(config = %path.display(), "{w}");
    }
    summary(path, &config);
    if check_only {
        println!("{}: OK ({} warnings)", path.display(), warnings.len());
        return Ok(());
    }
    raise_open_file_limit();
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("signal received");
            s.cancel();
        });
        server::run(config, Arc::new(timeline::WallClock), shutdown).await
    })
}

/// `RUST_LOG`, default `info`. srt-protocol logs whole handshake packets at
/// `warn` (a caller's repeated handshake, say), stream id included, and a
/// stream id may carry a publish key or a signed policy: its log lines are
/// kept to errors unless `RUST_LOG` names `srt_protocol`.
fn log_filter() -> tracing_subscriber::EnvFilter {
    let named = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("srt_protocol"));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match "srt_protocol=error".parse() {
        Ok(quiet) if !named => filter.add_directive(quiet),
        _ => filter,
    }
}

fn summary(path: &Path, c: &config::Config) {
    info!(version = env!("CARGO_PKG_VERSION"), config = %path.display(), name = %c.name, "lockstep");
    for v in &c.vhosts {
        for a in &v.apps {
            let providers: Vec<String> = [
                a.rtmp.as_ref().map(|p| format!("RTMP({:?})", p.timestamp_mode)),
                a.srt.as_ref().map(|p| format!("SRT({:?})", p.common.timestamp_mode)),
                a.mpegts.as_ref().map(|p| format!("MPEGTS({:?})", p.common.timestamp_mode)),
            ]
            .into_iter()
            .flatten()
            .collect();
            let llhls = a.llhls.as_ref().map(|l| {
                format!(
                    "LLHLS(segment {} ms, chunk {} ms, part hold back {} ms, {} segments)",
                    l.segment_duration_ms, l.chunk_duration_ms, l.part_hold_back_ms, l.segment_count
                )
            });
            let hls = a
                .hls
                .as_ref()
                .map(|h| format!("HLS(segment {} ms, {} segments)", h.segment_duration_ms, h.segment_count));
            // What is checked, never with what.
            let mut auth = Vec::new();
            if !a.publish_keys.0.is_empty() {
                auth.push(format!("{} publish keys", a.publish_keys.0.len()));
            }
            if let Some(sp) = &v.signed_policy {
                let on: Vec<&str> = [(sp.rtmp, "RTMP"), (sp.srt, "SRT")].iter().filter(|p| p.0).map(|p| p.1).collect();
                auth.push(format!("signed policy ({})", on.join(", ")));
            }
            info!(
                vhost = %v.name, app = %a.name, providers = ?providers, llhls = ?llhls, hls = ?hls, auth = ?auth,
                "application"
            );
        }
    }
}

/// Raise the soft limit of open files to the hard limit: every connection
/// is a file descriptor, and the usual soft limit (1024) is below the
/// connection limits (RTMP 1000, HTTP 10 000 by default).
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return warn!(error = %std::io::Error::last_os_error(), "reading the open file limit");
        }
        let before = lim.rlim_cur;
        if before < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
                return warn!(error = %std::io::Error::last_os_error(), soft = before, "raising the open file limit");
            }
        }
        info!(soft = lim.rlim_cur, was = before, "open file limit (RLIMIT_NOFILE)");
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
