// Streams made by real packagers (fixtures/pkg, built by fixtures/packagers.sh)
// played by hls.js in headless Chromium, from a pseudolive serving a temporary
// copy of them:
//   - ff_demux (ffmpeg, two video variants and a demuxed AAC rendition) for
//     30 s across loop points: an audio track selected, the audio
//     SourceBuffer's buffered range growing, audio fragments loaded from the
//     rendition, no fatal error;
//   - ff_webvtt (ffmpeg, WebVTT in an sgroup): a text track with cues;
//   - a negative control: the same harness with the server killed mid-play
//     must fail.
// One ok/FAIL line per check; the exit status is 1 when any check failed.
//
// Env: PSEUDOLIVE_BIN (default ../../target/release/pseudolive), CHROMIUM.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.PSEUDOLIVE_BIN || path.join(here, '../../target/release/pseudolive');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const HLSJS = readFileSync(path.join(here, 'node_modules/hls.js/dist/hls.min.js'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The player page: hls.js, and every SourceBuffer the page creates recorded
// with its MIME type, so the audio buffer can be read on its own.
const PAGE = `<!doctype html>
<html><body>
<video id="video" muted autoplay playsinline width="384" height="216"></video>
<script>
  window.sourceBuffers = [];
  const addSourceBuffer = MediaSource.prototype.addSourceBuffer;
  MediaSource.prototype.addSourceBuffer = function (mime) {
    const sb = addSourceBuffer.call(this, mime);
    window.sourceBuffers.push({ mime, sb });
    return sb;
  };
</script>
<script src="hls.min.js"></script>
<script>
  window.log = { fatal: [], errors: [], frags: [], ccs: [] };
  window.play = (src, subtitles) => {
    const video = document.getElementById('video');
    const hls = new Hls({ enableWebVTT: true, subtitleDisplay: true, renderTextTracksNatively: true });
    window.hls = hls;
    hls.on(Hls.Events.ERROR, (e, d) => (d.fatal ? log.fatal : log.errors).push(d.type + '/' + d.details));
    hls.on(Hls.Events.FRAG_LOADED, (e, d) => log.frags.push({ type: d.frag.type, url: d.frag.url }));
    hls.on(Hls.Events.FRAG_CHANGED, (e, d) => log.ccs.push(d.frag.cc));
    hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch((e) => log.errors.push('play(): ' + e.message)));
    // The first subtitle track, once hls.js has them and the media attached.
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, () => {
      if (subtitles && hls.subtitleTrack < 0 && hls.subtitleTracks.length) {
        hls.subtitleDisplay = true;
        hls.subtitleTrack = 0;
      }
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  };
  window.state = () => {
    const video = document.getElementById('video');
    const end = (kind) => {
      const b = window.sourceBuffers.find((s) => s.mime.startsWith(kind + '/'));
      if (!b) return null;
      try {
        return b.sb.buffered.length ? b.sb.buffered.end(b.sb.buffered.length - 1) : 0;
      } catch (e) {
        return null;
      }
    };
    return {
      time: video.currentTime,
      audioEnd: end('audio'),
      videoEnd: end('video'),
      mimes: window.sourceBuffers.map((s) => s.mime),
      audioTrack: hls.audioTrack,
      audioTracks: hls.audioTracks.map((t) => t.name),
      audioFrags: log.frags.filter((f) => f.type === 'audio').length,
      audioUrls: [...new Set(log.frags.filter((f) => f.type === 'audio').map((f) => f.url.replace(/^.*\\/\\/[^/]*/, '').replace(/\\/[^/]*$/, '/')))],
      subtitleFrags: log.frags.filter((f) => f.type === 'subtitle').length,
      subtitleTrack: hls.subtitleTrack,
      ccs: [...new Set(log.ccs)],
      fatal: log.fatal.slice(),
      errors: log.errors.slice(),
      textTracks: [...video.textTracks].map((t) => ({
        kind: t.kind,
        label: t.label,
        mode: t.mode,
        cues: t.cues ? [...t.cues].map((c) => c.text) : null,
        active: t.activeCues ? [...t.activeCues].map((c) => c.text) : [],
      })),
    };
  };
</script>
</body></html>`;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** pseudolive on 127.0.0.1 over a temporary copy of fixtures/pkg, once every stream is ready. */
async function startServer(library) {
  const port = await freePort();
  const proc = spawn(BIN, ['127.0.0.1', String(port), '--static', library, '--log-level', 'error'],
    { stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 400; i++) {
    try {
      const streams = await (await fetch(`${base}/streams.json`)).json();
      if (streams.length && streams.every((s) => s.state === 'ready')) return { proc, base };
      const failed = streams.filter((s) => s.state === 'failed');
      if (failed.length) throw new Error(`failed to load: ${failed.map((s) => `${s.name}: ${s.error}`).join('; ')}`);
    } catch (e) {
      if (e.message.startsWith('failed to load')) {
        proc.kill('SIGKILL');
        throw e;
      }
    }
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error('pseudolive did not become ready');
}

/** A page playing `stream` with hls.js, answered at the server's origin. */
async function openPlayer(browser, base, stream, subtitles) {
  const page = await browser.newPage();
  await page.route(`${base}/__player/**`, (route) => {
    const url = route.request().url();
    if (url.endsWith('/hls.min.js')) return route.fulfill({ contentType: 'text/javascript', body: HLSJS });
    return route.fulfill({ contentType: 'text/html', body: PAGE });
  });
  await page.goto(`${base}/__player/index.html`);
  await page.evaluate(([src, subs]) => window.play(src, subs), [`${base}/${stream}.m3u8`, subtitles]);
  return page;
}

/** Plays ff_demux for `seconds`; throws naming every problem. */
async function demuxedAudio(browser, base, seconds, onStart = () => {}) {
  const page = await openPlayer(browser, base, 'ff_demux', false);
  try {
    onStart();
    await sleep(4000);
    const first = await page.evaluate(() => window.state());
    await sleep(seconds * 1000);
    const last = await page.evaluate(() => window.state());
    const problems = [];
    if (last.fatal.length) problems.push(`fatal error: ${last.fatal.join(', ')}`);
    const played = last.time - first.time;
    if (!(played >= seconds * 0.9)) problems.push(`video advanced ${played.toFixed(1)} s in ${seconds} s`);
    if (last.ccs.length < 2) problems.push(`no loop point crossed (discontinuities played: ${last.ccs})`);
    if (!(last.audioTracks.length >= 1 && last.audioTrack >= 0)) {
      problems.push(`no audio track selected (${last.audioTrack} of ${JSON.stringify(last.audioTracks)})`);
    }
    if (!last.mimes.some((m) => m.startsWith('audio/'))) problems.push(`no audio SourceBuffer (${last.mimes})`);
    const grew = (last.audioEnd ?? 0) - (first.audioEnd ?? 0);
    if (!(grew >= seconds * 0.8)) problems.push(`audio buffered end ${first.audioEnd} → ${last.audioEnd}: grew ${grew.toFixed(1)} s`);
    if (!(last.audioFrags > first.audioFrags)) problems.push(`no audio fragments loaded (${first.audioFrags} → ${last.audioFrags})`);
    // The audio rendition's own files (under g=<n>/ with continuous timestamps).
    if (!last.audioUrls.every((u) => /^(\/g=\d+)?\/ff_demux\/aac\/$/.test(u))) problems.push(`audio fragments from ${last.audioUrls}`);
    if (problems.length) throw new Error(problems.join('; '));
    return { first, last, played, grew };
  } finally {
    await page.close();
  }
}

/** Plays ff_webvtt (under the URL options `options`) until a cue is shown (at most `seconds`); throws if none. */
async function subtitleCues(browser, base, seconds, options = '') {
  const page = await openPlayer(browser, base, `${options}ff_webvtt`, true);
  try {
    // Until a cue has been shown at the playhead (cues placed elsewhere on
    // the media timeline are never active).
    let st;
    const shown = new Set();
    for (let i = 0; i < seconds * 4; i++) {
      await sleep(250);
      st = await page.evaluate(() => window.state());
      st.textTracks.forEach((t) => t.active.forEach((c) => shown.add(c)));
      if (shown.size && st.time > 2) break;
    }
    const problems = [];
    if (st.fatal.length) problems.push(`fatal error: ${st.fatal.join(', ')}`);
    const withCues = st.textTracks.filter((t) => t.cues && t.cues.length);
    if (!withCues.length) {
      problems.push(`no text track with cues: ${JSON.stringify(st.textTracks)}, subtitle track ${st.subtitleTrack}, ` +
        `${st.subtitleFrags} subtitle fragments, errors ${st.errors}`);
    }
    if (!shown.size) problems.push(`no cue shown at the playhead in ${seconds} s (video at ${st.time.toFixed(1)} s)`);
    if (!(st.time > 2)) problems.push(`video at ${st.time} s`);
    if (problems.length) throw new Error(problems.join('; '));
    return withCues;
  } finally {
    await page.close();
  }
}

const library = mkdtempSync(path.join(os.tmpdir(), 'pseudolive-pkg-'));
cpSync(path.join(here, '../../fixtures/pkg'), library, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
let failed = false;
const server = await startServer(library);
try {
  const { first, last, played, grew } = await demuxedAudio(browser, server.base, 30);
  console.log(`ok   ff_demux: played ${played.toFixed(1)} s (${first.time.toFixed(1)} → ${last.time.toFixed(1)}), ` +
    `discontinuities ${last.ccs.join(',')}, audio track ${last.audioTrack} of ${JSON.stringify(last.audioTracks)}, ` +
    `audio buffered to ${last.audioEnd.toFixed(1)} s (+${grew.toFixed(1)}), ${last.audioFrags} audio fragments from ${last.audioUrls}`);
} catch (e) {
  failed = true;
  console.log(`FAIL ff_demux: ${e.message}`);
}
// WebVTT timed against the media: with continuous timestamps (the
// default) its X-TIMESTAMP-MAP moves with them; with source timestamps it is
// served as it is.
for (const options of ['', 'ts=source/']) {
  const name = `ff_webvtt${options ? `, ${options.slice(0, -1)}` : ''}`;
  try {
    const tracks = await subtitleCues(browser, server.base, 30, options);
    console.log(`ok   ${name}: ${tracks.map((t) => `text track "${t.label}" (${t.kind}, ${t.mode}) with ${t.cues.length} cues: ${t.cues.join(' / ')}`).join('; ')}`);
  } catch (e) {
    failed = true;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
server.proc.kill('SIGKILL');
// Negative control: the server dies 2 s into playback.
const doomed = await startServer(library);
try {
  await demuxedAudio(browser, doomed.base, 15, () => setTimeout(() => doomed.proc.kill('SIGKILL'), 2000));
  failed = true;
  console.log('FAIL negative control: the harness passed with the server killed');
} catch (e) {
  console.log(`ok   negative control: a killed server fails the harness (${e.message.slice(0, 160)})`);
} finally {
  doomed.proc.kill('SIGKILL');
}
await browser.close();
rmSync(library, { recursive: true, force: true });
process.exit(failed ? 1 : 0);
