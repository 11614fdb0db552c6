//! `lockstep package`: run the packager over a recorded stream and write
//! every object it publishes into a directory.

use std::path::Path;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use lockstep_packager::demux::DemuxEvent;
use lockstep_packager::flv::{read_flv_file, FlvDemuxer};
use lockstep_packager::ts_demux::TsDemuxer;
use lockstep_packager::{Config, Output, Packager, StreamDescription, Track};

/// Demux a whole file into a description and samples.
fn demux_file(input: &Path) -> Result<(StreamDescription, Vec<lockstep_packager::Sample>)> {
    let name = input.file_stem().map_or_else(|| "stream".to_string(), |s| s.to_string_lossy().into_owned());
    let bytes = Bytes::from(std::fs::read(input).with_context(|| format!("reading {}", input.display()))?);
    let mut events = Vec::new();
    match input.extension().and_then(|e| e.to_str()) {
        Some("flv") => {
            let mut d = FlvDemuxer::new(name.clone());
            for t in read_flv_file(&bytes, &name)? {
                events.extend(d.push(t.tag_type, t.timestamp_ms, &t.data)?);
            }
        }
        Some("ts") => {
            let mut d = TsDemuxer::new(name.clone());
            events.extend(d.push(&bytes)?);
            events.extend(d.finish()?);
        }
        _ => bail!("{}: expected a .flv or .ts file", input.display()),
    }
    let mut tracks: Vec<Track> = Vec::new();
    let mut samples = Vec::new();
    for e in events {
        match e {
            DemuxEvent::Track(t) => {
                if samples.is_empty() {
                    tracks.retain(|o| o.id != t.id);
                    tracks.push(t);
                } else if tracks.iter().all(|o| o != &t) {
                    bail!("{name}: codec configuration of track {} changes mid-stream", t.id);
                }
            }
            DemuxEvent::Sample(s) => samples.push(s),
        }
    }
    if tracks.is_empty() {
        bail!("{name}: no H.264 or AAC track found");
    }
    tracks.sort_by_key(|t| t.id);
    Ok((StreamDescription { name, tracks, program_date_time_base_ms: 0 }, samples))
}

pub fn package(input: &Path, out: &Path) -> Result<()> {
    let (desc, samples) = demux_file(input)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut p = Packager::new(desc, Config::default())?;
    let (mut objects, mut events) = (0usize, 0usize);
    let mut drain = |p: &mut Packager| -> Result<()> {
        while let Some(o) = p.poll_output() {
            match o {
                Output::Object(obj) => {
                    std::fs::write(out.join(&obj.name), &obj.bytes).with_context(|| format!("writing {}", obj.name))?;
                    objects += 1;
                }
                // Keep every object on disk: a file is played from its start.
                Output::Retire(_) => {}
                Output::Published { .. } => {}
                Output::Event(e) => {
                    eprintln!("event: {e:?}");
                    events += 1;
                }
            }
        }
        Ok(())
    };
    for s in samples {
        p.push(s)?;
        drain(&mut p)?;
    }
    p.finish();
    drain(&mut p)?;
    println!("{objects} objects written to {} ({events} events)", out.display());
    println!("play: ffplay {}/llhls.m3u8   or   ffplay {}/playlist.m3u8", out.display(), out.display());
    Ok(())
}
