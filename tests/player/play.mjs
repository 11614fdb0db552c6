// Plays an HLS or LL-HLS URL with hls.js in headless Chromium for a while and
// prints a JSON report on stdout.
//
//   node play.mjs --url http://127.0.0.1:3333/app/stream/llhls.m3u8 --seconds 30
//        [--chromium /usr/bin/chromium] [--low-latency true|false]
//
// A tiny static HTTP server in this script serves hls.js (from node_modules)
// and a page that plays the URL; Chromium is started here (so its PID is
// known: the first line on stderr is `chromium-pid N`, for a caller that must
// kill it if this script is killed; N is also the id of Chromium's process
// group) and driven over CDP by playwright-core.
// No browser is downloaded: Debian's Chromium is used.
//
// Report: currentTime samples, hls.js ERROR events (with their fatal flag),
// stalls, hls.latency / hls.targetLatency, the latency of the playhead's
// PROGRAM-DATE-TIME behind the wall clock, and the playlists loaded.
// The last line on stderr sums it up as `summary key=value ...`.
// Exit status: 0 if played without a fatal error, 1 on a fatal hls.js or
// media error, 2 on a usage or setup error.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));

function parseArgs(argv) {
    const o = { url: null, seconds: 30, chromium: "/usr/bin/chromium", lowLatency: true };
    for (let i = 0; i < argv.length; i++) {
        const v = argv[i + 1];
        switch (argv[i]) {
            case "--url":
                o.url = v;
                i++;
                break;
            case "--seconds":
                o.seconds = Number(v);
                i++;
                break;
            case "--chromium":
                o.chromium = v;
                i++;
                break;
            case "--low-latency":
                o.lowLatency = v !== "false";
                i++;
                break;
            default:
                throw new Error(`unknown argument ${argv[i]}`);
        }
    }
    if (!o.url || !(o.seconds > 0)) throw new Error("usage: play.mjs --url URL [--seconds N] [--chromium PATH]");
    return o;
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>lockstep player test</title></head>
<body>
<video id="v" muted playsinline autoplay width="320" height="240"></video>
<script src="/hls.js"></script>
<script>
const S = (window.S = {
  start: performance.now(), errors: [], stalls: 0, waiting: 0, stalledErrors: 0, playing: false,
  firstPlayingMs: null, playlists: [], fragsLoaded: 0, partsLoaded: 0, mediaError: null, log: []
});
function play(url, lowLatencyMode) {
  const video = document.getElementById("v");
  S.mseH264 = !!(window.MediaSource && MediaSource.isTypeSupported('video/mp4; codecs="avc1.64000d,mp4a.40.2"'));
  if (!window.Hls || !Hls.isSupported()) { S.errors.push({ type: "setup", details: "hls.js not supported", fatal: true }); return; }
  // A low-latency client catches up with the target latency by playing a
  // little faster (hls.js's default, 1, never catches up after a late start).
  const hls = (window.hls = new Hls({ lowLatencyMode, maxLiveSyncPlaybackRate: lowLatencyMode ? 1.5 : 1, debug: false }));
  hls.on(Hls.Events.ERROR, (_e, d) => {
    S.errors.push({ t: (performance.now() - S.start) / 1000, type: d.type, details: d.details, fatal: !!d.fatal,
                    url: (d.frag && d.frag.url) || (d.context && d.context.url) || (d.url) || null,
                    code: d.response && d.response.code });
    if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR) S.stalledErrors++;
  });
  const loaded = (kind) => (_e, d) => {
    const det = d.details;
    S.playlists.push({
      t: (performance.now() - S.start) / 1000, kind, url: (d.networkDetails && d.networkDetails.responseURL) || d.url,
      live: det.live, type: det.type || null, version: det.version, lowLatency: !!(det.partList && det.partList.length),
      canBlockReload: !!det.canBlockReload, canSkipUntil: det.canSkipUntil || 0, skippedSegments: det.skippedSegments || 0,
      endSN: det.endSN, lastPart: det.partList && det.partList.length ? det.partList[det.partList.length - 1].index : null,
      ms: d.stats ? Math.round(d.stats.loading.end - d.stats.loading.start) : null
    });
  };
  hls.on(Hls.Events.LEVEL_LOADED, loaded("level"));
  hls.on(Hls.Events.AUDIO_TRACK_LOADED, loaded("audio"));
  hls.on(Hls.Events.MANIFEST_LOADED, (_e, d) => { S.manifest = { url: d.url, levels: d.levels.length, audioTracks: (d.audioTracks || []).length }; });
  hls.on(Hls.Events.FRAG_LOADED, (_e, d) => { if (d.part) S.partsLoaded++; else S.fragsLoaded++; });
  video.addEventListener("waiting", () => { S.waiting++; if (S.playing) S.stalls++; });
  video.addEventListener("playing", () => { if (S.firstPlayingMs === null) S.firstPlayingMs = performance.now() - S.start; S.playing = true; });
  video.addEventListener("error", () => { S.mediaError = video.error ? (video.error.code + " " + video.error.message) : "unknown"; });
  hls.attachMedia(video);
  hls.loadSource(url);
  video.play().catch((e) => S.log.push("play(): " + e));
}
function sample() {
  const video = document.getElementById("v");
  const hls = window.hls;
  const b = video.buffered;
  const pd = hls && hls.playingDate;
  return {
    t: (performance.now() - S.start) / 1000,
    currentTime: video.currentTime,
    bufferedEnd: b.length ? b.end(b.length - 1) : null,
    paused: video.paused,
    readyState: video.readyState,
    latency: hls ? hls.latency : null,
    targetLatency: hls ? hls.targetLatency : null,
    pdtLatency: pd ? (Date.now() - pd.getTime()) / 1000 : null,
    droppedFrames: video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().droppedVideoFrames : null,
  };
}
</script>
</body></html>
`;

// Serves the page and hls.js on 127.0.0.1 (an ephemeral port).
function startStatic() {
    const hlsjs = readFileSync(join(here, "node_modules", "hls.js", "dist", "hls.js"));
    const server = createServer((req, res) => {
        const path = new URL(req.url, "http://x").pathname;
        if (path === "/" || path === "/index.html") {
            res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
            res.end(PAGE);
        } else if (path === "/favicon.ico") {
            res.writeHead(204);
            res.end();
        } else if (path === "/hls.js") {
            res.writeHead(200, { "content-type": "text/javascript", "cache-control": "no-store" });
            res.end(hlsjs);
        } else {
            res.writeHead(404);
            res.end();
        }
    });
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve(server));
    });
}

// Starts Chromium with remote debugging on an ephemeral port; resolves with
// the child and its DevTools WebSocket URL.
function startChromium(path, profile) {
    const args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-background-timer-throttling",
        "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows",
        `--user-data-dir=${profile}`,
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ];
    // Its own process group (whose id is its PID), so that its renderer and
    // GPU processes can be killed with it.
    const child = spawn(path, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
    process.stderr.write(`chromium-pid ${child.pid}\n`);
    return new Promise((resolve, reject) => {
        let err = "";
        const timer = setTimeout(() => {
            killChromium(child);
            reject(new Error(`Chromium did not start in 30 s:\n${err}`));
        }, 30000);
        child.once("error", (e) => {
            clearTimeout(timer);
            reject(e);
        });
        child.once("exit", (code, sig) => {
            clearTimeout(timer);
            reject(new Error(`Chromium exited (${code ?? sig}) before listening:\n${err}`));
        });
        child.stderr.on("data", (d) => {
            err += d.toString();
            const m = err.match(/DevTools listening on (ws:\/\/\S+)/);
            if (m) {
                clearTimeout(timer);
                child.removeAllListeners("exit");
                resolve({ child, ws: m[1] });
            }
        });
    });
}

// Kills Chromium's process group (what is left of it).
function killChromium(child) {
    if (!child) return;
    try {
        process.kill(-child.pid, "SIGKILL");
    } catch {
        // No process of the group is left.
    }
}

// Closes Chromium (gracefully over CDP if possible), waits at most 5 s for it
// to exit, then kills whatever is left of its process group, so that nothing
// writes into its profile any more.
async function stopChromium(child, browser) {
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        try {
            const session = await browser.newBrowserCDPSession();
            await session.send("Browser.close");
        } catch {
            killChromium(child);
        }
        await Promise.race([exited, sleep(5000)]);
    }
    killChromium(child);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
    let opts;
    try {
        opts = parseArgs(process.argv.slice(2));
    } catch (e) {
        process.stderr.write(`${e.message}\n`);
        return 2;
    }
    const profile = mkdtempSync(join(tmpdir(), "lockstep-chromium-"));
    let server = null;
    let chrome = null;
    let browser = null;
    const removeProfile = () => {
        try {
            rmSync(profile, { recursive: true, force: true, maxRetries: 3, retryDelay: 100 });
        } catch {
            // Best effort.
        }
    };
    for (const sig of ["SIGTERM", "SIGINT"]) {
        process.on(sig, () => {
            killChromium(chrome && chrome.child);
            removeProfile();
            process.exit(3);
        });
    }
    try {
        server = await startStatic();
        const page_url = `http://127.0.0.1:${server.address().port}/index.html`;
        chrome = await startChromium(opts.chromium, profile);
        browser = await chromium.connectOverCDP(chrome.ws, { timeout: 30000 });
        const context = browser.contexts()[0] || (await browser.newContext());
        const page = await context.newPage();
        const consoleErrors = [];
        page.on("console", (m) => {
            if (m.type() === "error") consoleErrors.push(m.text());
        });
        page.on("pageerror", (e) => consoleErrors.push(String(e)));
        await page.goto(page_url, { timeout: 30000 });
        await page.evaluate(([u, ll]) => window.play(u, ll), [opts.url, opts.lowLatency]);
        const samples = [];
        const t0 = Date.now();
        while (Date.now() - t0 < opts.seconds * 1000) {
            await sleep(1000);
            samples.push(await page.evaluate(() => window.sample()));
        }
        const state = await page.evaluate(() => window.S);
        const report = summarize(opts, state, samples, consoleErrors);
        process.stdout.write(JSON.stringify(report, null, 1) + "\n");
        process.stderr.write(summaryLine(report) + "\n");
        return report.fatalErrors > 0 || report.mediaError ? 1 : 0;
    } catch (e) {
        process.stderr.write(`play.mjs: ${e.stack || e}\n`);
        return 2;
    } finally {
        await stopChromium(chrome && chrome.child, browser);
        if (browser) await browser.close().catch(() => {});
        removeProfile();
        if (server) server.close();
    }
}

// One line of key=value pairs (numbers, or null) for a caller that does not
// parse JSON.
function summaryLine(r) {
    const kinds = Object.values(r.playlists);
    const sum = (f) => kinds.reduce((a, k) => a + f(k), 0);
    const num = (x) => (typeof x === "number" && Number.isFinite(x) ? Number(x.toFixed(3)) : null);
    const pairs = {
        advanced: num(r.advancedS),
        fatal: r.fatalErrors,
        errors: r.errors.length,
        media_error: r.mediaError ? 1 : 0,
        stalls: r.stalls,
        latency: num(r.latencyMedianLastThird),
        target_latency: num(r.targetLatency),
        pdt_latency: num(r.pdtLatencyMedianLastThird),
        pdt_latency_max: num(r.pdtLatencyMax),
        first_playing: num(r.firstPlayingS),
        playlists: sum((k) => k.loaded),
        blocking: sum((k) => k.blocking),
        delta: sum((k) => k.delta),
        skipped: sum((k) => k.skipped),
        parts: r.partsLoaded,
        frags: r.fragsLoaded,
    };
    return "summary " + Object.entries(pairs).map(([k, v]) => `${k}=${v}`).join(" ");
}

function summarize(opts, s, samples, consoleErrors) {
    const playing = samples.filter((x) => x.currentTime > 0);
    const first = playing[0];
    const last = playing[playing.length - 1];
    const tail = samples.slice(-Math.max(1, Math.floor(samples.length / 3)));
    const median = (xs) => {
        const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
        return v.length ? v[Math.floor(v.length / 2)] : null;
    };
    const byKind = {};
    for (const p of s.playlists) {
        const k = (byKind[p.kind] ||= { loaded: 0, blocking: 0, delta: 0, skipped: 0, lowLatency: 0, types: [] });
        k.loaded++;
        if (/[?&]_HLS_msn=/.test(p.url || "")) k.blocking++;
        if (/[?&]_HLS_skip=/.test(p.url || "")) k.delta++;
        if (p.skippedSegments > 0) k.skipped++;
        if (p.lowLatency) k.lowLatency++;
        const type = p.type || (p.live ? "LIVE" : "VOD");
        if (!k.types.includes(type)) k.types.push(type);
    }
    return {
        url: opts.url,
        seconds: opts.seconds,
        lowLatencyMode: opts.lowLatency,
        mseH264Aac: s.mseH264 ?? null,
        manifest: s.manifest ?? null,
        firstPlayingS: s.firstPlayingMs === null ? null : s.firstPlayingMs / 1000,
        advancedS: first && last ? last.currentTime - first.currentTime : 0,
        finalCurrentTime: samples.length ? samples[samples.length - 1].currentTime : null,
        errors: s.errors,
        fatalErrors: s.errors.filter((e) => e.fatal).length,
        mediaError: s.mediaError,
        stalls: s.stalls,
        waitingEvents: s.waiting,
        bufferStalledErrors: s.stalledErrors,
        latency: last ? last.latency : null,
        targetLatency: last ? last.targetLatency : null,
        latencyMedianLastThird: median(tail.map((x) => x.latency)),
        pdtLatencyMedianLastThird: median(tail.map((x) => x.pdtLatency)),
        pdtLatencyMax: Math.max(...tail.map((x) => x.pdtLatency ?? -Infinity)),
        fragsLoaded: s.fragsLoaded,
        partsLoaded: s.partsLoaded,
        playlists: byKind,
        playlistSample: s.playlists.slice(-4),
        consoleErrors: consoleErrors.slice(0, 20),
        log: s.log,
        samples,
    };
}

process.exit(await main());
