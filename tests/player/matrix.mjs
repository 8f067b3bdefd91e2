// HLS clients outside the browser, each read through its own signals: VLC
// (its rc interface and log), mpv (its JSON IPC and log) and Streamlink
// (its log, then ffprobe on what it recorded). Every harness takes the
// stream (a directory of tests/player/static), the timestamp mode (`ts`:
// `source` or `continuous`, a URL option) and `killAt` (seconds: the server
// is killed then, for the negative controls).
import { spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as L from './lib.mjs';
import { PLAY_SECONDS, sleep } from './lib.mjs';

const VLC = process.env.VLC || 'vlc';
const MPV = process.env.MPV || 'mpv';
export const STREAMLINK = process.env.STREAMLINK || path.join(L.here, '../../target/player-venv/bin/streamlink');
const SAMPLE_MS = 250;

/** A freeze longer than this (ms, between two samples that show no progress) is a rebuffer. */
export const MAX_STILL_MS = 500;

/**
 * What every client outside the browser must show on a stream: `live`
 * detected, no error, a playhead (`samples`: { t ms, pos s }) moving with
 * wall time (≥ 0.9×) for ≥ 40 s after it first moved, no freeze over
 * MAX_STILL_MS (samples every 250 ms: a stop of 0.25 s or more shows as two
 * samples without progress), no jump unless `jumps` are allowed (source
 * timestamps restarting at a discontinuity), and the segments fetched
 * (`segs`: { t, url }) crossing ≥ 2 loop points of the master's variants
 * (and of each rendition). `excuse` ({ from, to } ms): a forced switch
 * that restarts the client's demuxer; the samples between are left out.
 */
export function judgeClient({ stream, live, errors, samples, segs, jumps = false, excuse = null, maxStillMs = MAX_STILL_MS }) {
  const fails = [];
  if (!live) fails.push('not detected as live');
  for (const e of errors.slice(0, 3)) fails.push(`error: ${e}`);
  if (errors.length > 3) fails.push(`… ${errors.length} errors in all`);
  const startAt = samples.findIndex((s, i) => i > 0 && s.pos !== null && samples[i - 1].pos !== null && s.pos !== samples[i - 1].pos);
  let summary = '';
  if (startAt < 0) fails.push('the playhead never moved');
  else {
    // From the first sample after the playhead first moved (a start-up burst is no measure).
    const after = samples.slice(startAt).filter((s) => s.pos !== null);
    let played = 0;
    let still = { ms: 0, at: null };
    let runStart = null;
    let jumped = 0;
    let firstJump = null;
    let wall = 0;
    const excused = (x) => excuse && x.t >= excuse.from && x.t <= excuse.to;
    for (let i = 1; i < after.length; i++) {
      if (excused(after[i]) || excused(after[i - 1])) {
        runStart = null;
        continue;
      }
      wall += (after[i].t - after[i - 1].t) / 1000;
      const dp = after[i].pos - after[i - 1].pos;
      const dw = (after[i].t - after[i - 1].t) / 1000;
      if (dp < -0.05 || dp > dw + 1) {
        jumped++;
        if (!firstJump) firstJump = `playhead jumped by ${dp.toFixed(2)} s in ${dw.toFixed(2)} s at ${after[i].t} ms`;
      } else played += Math.max(dp, 0);
      if (Math.abs(dp) < 0.005) {
        if (runStart === null) runStart = after[i - 1].t;
        if (after[i].t - runStart > still.ms) still = { ms: after[i].t - runStart, at: runStart };
      } else runStart = null;
    }
    const span = (after[after.length - 1].t - after[0].t) / 1000;
    if (span < 40) fails.push(`the playhead moved over ${span.toFixed(1)} s of wall time (want ≥ 40)`);
    if (played < 0.9 * wall) fails.push(`the playhead advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s of wall time`);
    if (firstJump && !jumps) fails.push(firstJump);
    if (still.ms > maxStillMs) fails.push(`the playhead stood still ${still.ms} ms from ${still.at} ms (allowed ${maxStillMs})`);
    summary = `played ${played.toFixed(1)} s in ${wall.toFixed(1)} s, longest still ${still.ms} ms, ${jumped} jumps`;
  }
  const wraps = L.wrapsOf(stream, segs.map((s) => s.url));
  if (wraps < 2) fails.push(`the segments fetched crossed ${wraps} loop points (want ≥ 2)`);
  for (const r of stream.renditions) {
    const w = L.wrapsOf(stream, segs.map((s) => s.url), [r]);
    if (w < 2) fails.push(`the segments of rendition ${r} fetched crossed ${w} loop points (want ≥ 2)`);
  }
  const order = segs.map((s) => stream.variantOf(s.url)).filter((v) => v && !stream.renditions.includes(v)).filter((v, i, all) => i === 0 || v !== all[i - 1]);
  summary += `, ${wraps} loop points crossed in the segments fetched, variants fetched ${order.join(' → ')}`;
  return { fails, summary };
}

/** Lines of a child's stream, each passed to `onLine` with the time (ms since `t0`) it arrived. */
function lines(readable, t0, onLine) {
  let buf = '';
  readable.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i), Date.now() - t0);
      buf = buf.slice(i + 1);
    }
  });
}

function connectRetry(target, tries = 300) {
  return new Promise((resolve, reject) => {
    const attempt = (n) => {
      const s = net.connect(target);
      s.once('connect', () => resolve(s));
      s.once('error', () => (n > 0 ? setTimeout(() => attempt(n - 1), 100) : reject(new Error(`cannot connect to ${JSON.stringify(target)}`))));
    };
    attempt(tries);
  });
}

const asRoot = () => process.getuid && process.getuid() === 0;

/** Ends a process group started with `detached: true`. */
function killGroup(proc) {
  try {
    process.kill(-proc.pid, 'SIGKILL');
  } catch {}
}

/**
 * VLC 3 (as `nobody` when run as root: VLC refuses root) with its old rc
 * interface on a TCP port, dummy video and audio outputs, `-vv` log. Every
 * 250 ms it is asked `get_time` and `stats`; the playhead is its played
 * audio buffers (every test stream has AAC at 48 kHz: 1024 samples a
 * buffer; its count of displayed frames runs about 10 % short of 25 fps
 * with the dummy output even while `get_time` keeps time). Live: it reloads the media playlist (it only does
 * for playlists without EXT-X-ENDLIST). Segments fetched: its own
 * "Retrieving" lines. Errors: its error lines, except those of start-up
 * (D-Bus, interfaces) and the decoder's timestamp warnings at a
 * discontinuity, which are counted. VLC has no command to force a variant:
 * its own ABR switches are reported.
 */
export async function vlc({ stream = 'loop', ts = 'source', killAt = null } = {}) {
  const info = L.streamInfo(stream);
  const server = await L.startPseudolive();
  const home = mkdtempSync(path.join(os.tmpdir(), 'pl-vlc-'));
  const port = await L.freePort();
  const url = `${server.base}${L.srcOf(stream, ts)}`;
  const args = ['-I', 'oldrc', '--rc-fake-tty', '--rc-host', `127.0.0.1:${port}`, '--vout=vdummy', '--aout=adummy',
    '--no-video-title-show', '-vv', url];
  const t0 = Date.now();
  if (asRoot()) chownSync(home, 65534, 65534);
  const cmd = asRoot() ? ['runuser', ['-u', 'nobody', '--', 'env', `HOME=${home}`, VLC, ...args]] : [VLC, args];
  const proc = L.track(spawn(cmd[0], cmd[1], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home } }));
  const log = [];
  const segs = [];
  let reloads = 0;
  const errors = [];
  let tsWarnings = 0;
  lines(proc.stderr, t0, (line, t) => {
    log.push(line);
    const r = /adaptive demux debug: Retrieving (\S+)/.exec(line);
    if (r) {
      if (/\.m3u8(\?|$)/.test(r[1])) reloads++;
      else segs.push({ t, url: r[1] });
    }
    if (/ error[:\]]/.test(line) || / error$/.test(line)) {
      if (/dbus|interface|globalhotkeys/.test(line)) return;
      if (/decoder error: (Timestamp conversion failed|Could not convert timestamp)|decode_slice_header error/.test(line)) tsWarnings++;
      else errors.push(line.replace(/^\[[0-9a-f]+\] /, '').slice(0, 200));
    }
  });
  lines(proc.stdout, t0, () => {});
  const samples = [];
  let lost = { frames: 0, buffers: 0 };
  try {
    const exited = new Promise((_, reject) => proc.on('exit', (c) => reject(new Error(`vlc exited ${c}: ${log.slice(-5).join(' | ')}`))));
    exited.catch(() => {});
    const rc = await Promise.race([connectRetry({ port, host: '127.0.0.1' }), exited]);
    let block = {};
    lines(rc, t0, (line, t) => {
      if (/^\d+$/.test(line.trim())) block.time = Number(line.trim());
      const m = /\|\s*(frames displayed|buffers played|frames lost|buffers lost)\s*:\s*(\d+)/.exec(line);
      if (m) block[m[1]] = Number(m[2]);
      if (/end of statistical info/.test(line)) {
        samples.push({ t, pos: ((block['buffers played'] ?? 0) * 1024) / 48000, media: block.time ?? null, frames: block['frames displayed'] ?? 0 });
        lost = { frames: block['frames lost'] || 0, buffers: block['buffers lost'] || 0 };
        block = {};
      }
    });
    rc.on('error', () => {});
    const started = Date.now();
    while ((Date.now() - started) / 1000 < PLAY_SECONDS) {
      await sleep(SAMPLE_MS);
      if (killAt !== null && (Date.now() - started) / 1000 >= killAt && server.proc.exitCode === null) server.proc.kill('SIGKILL');
      if (!rc.destroyed) rc.write('get_time\nstats\n');
    }
    if (!rc.destroyed) rc.write('quit\n');
    await sleep(300);
    rc.destroy();
  } finally {
    killGroup(proc);
    server.proc.kill();
    rmSync(home, { recursive: true, force: true });
  }
  // Its counters move in steps of about 0.36 s: two samples 250 ms apart
  // may show no progress while it plays; three may not.
  const { fails, summary } = judgeClient({ stream: info, live: reloads >= 10, errors, samples, segs, maxStillMs: 750 });
  // Its media clock (`get_time`, whole seconds): with continuous
  // timestamps it must never go back; with the source's it restarts at each
  // discontinuity (counted). A 0 is what VLC answers while it restarts its
  // demuxer.
  const media = samples.filter((x) => x.media);
  // Whole seconds: a step back of 1 is under a second of real time (VLC
  // re-bases its clock when it restarts its demuxer at a discontinuity).
  const backs = media.filter((x, i) => i > 0 && x.media <= media[i - 1].media - 2);
  if (ts === 'continuous' && backs.length) fails.push(`get_time went back ${backs.length} times (first at ${backs[0].t} ms: ${backs[0].media} s)`);
  const played = samples.length ? samples[samples.length - 1].pos : 0;
  if (played > 0 && (lost.frames + lost.buffers) / (played * 46.875) >= 0.1) fails.push(`lost ${lost.frames} frames and ${lost.buffers} audio buffers`);
  const events = [{ kind: 'vlc', log: log.filter((l) => !/decoder debug|Buffering|Skip/.test(l)).slice(-300) }];
  return {
    name: `VLC, ${stream}, ts=${ts}`,
    fails,
    events,
    net: segs,
    summary: `${summary}, get_time went back ${backs.length} times, ${reloads} playlist loads, ${tsWarnings} decoder timestamp warnings, lost ${lost.frames} frames/${lost.buffers} audio buffers`,
  };
}

/**
 * mpv (libavformat's HLS demuxer) with null outputs, driven over its JSON
 * IPC socket: `playback-time` polled every 250 ms, `paused-for-cache`
 * observed (each pause is a rebuffer), and at 45 % a forced switch to the
 * lowest variant (its video track, or audio for audio-only streams: the
 * demuxer exposes every variant as tracks of one program each). Live: mpv
 * reports the stream as not seekable. Segments fetched: its demuxer's
 * "HLS request for url" lines.
 */
export async function mpv({ stream = 'loop', ts = 'source', killAt = null } = {}) {
  const info = L.streamInfo(stream);
  const server = await L.startPseudolive();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pl-mpv-'));
  const sock = path.join(dir, 'ipc.sock');
  const url = `${server.base}${L.srcOf(stream, ts)}`;
  const t0 = Date.now();
  const proc = L.track(spawn(MPV, ['--no-config', '--vo=null', '--ao=null', '--idle=no', `--input-ipc-server=${sock}`,
    '--msg-level=all=info,ffmpeg/demuxer=debug', url], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const log = [];
  const segs = [];
  const errors = [];
  const onLog = (line, t) => {
    if (/hls: (Skip|Opening)|EXTINF|^\s*$/.test(line)) return;
    log.push(`${t} ${line}`);
    const m = /HLS request for url '(\S+)'/.exec(line);
    if (m && !/\.m3u8(\?|$)/.test(m[1])) segs.push({ t, url: m[1] });
    if (/\[(ffmpeg|lavf|cplayer|demux)\S*\].*(error|Failed)/i.test(line) && !/Non-monotonic|non monotonically|timestamp discontinuity/i.test(line)) errors.push(line.slice(0, 200));
  };
  lines(proc.stdout, t0, onLog);
  lines(proc.stderr, t0, onLog);
  const samples = [];
  const pauses = [];
  const replies = new Map();
  let trackList = null;
  let forced = null;
  let selected = null;
  let seekable = null;
  let ended = null;
  let id = 0;
  try {
    const exited = new Promise((_, reject) => proc.on('exit', (c) => reject(new Error(`mpv exited ${c}: ${log.slice(-5).join(' | ')}`))));
    exited.catch(() => {});
    const ipc = await Promise.race([connectRetry(sock), exited]);
    ipc.on('error', () => {});
    const send = (command) => {
      const rid = ++id;
      ipc.write(JSON.stringify({ command, request_id: rid }) + '\n');
      return new Promise((resolve) => replies.set(rid, resolve));
    };
    lines(ipc, t0, (line, t) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.request_id && replies.has(msg.request_id)) {
        replies.get(msg.request_id)({ ...msg, t });
        replies.delete(msg.request_id);
      }
      if (msg.event === 'property-change' && msg.name === 'paused-for-cache') {
        if (msg.data === true) pauses.push({ from: t, to: null });
        else if (msg.data === false && pauses.length && pauses[pauses.length - 1].to === null) pauses[pauses.length - 1].to = t;
      }
      if (msg.event === 'end-file') ended = { t, reason: msg.reason, error: msg.file_error };
    });
    await send(['observe_property', 1, 'paused-for-cache']);
    const started = Date.now();
    const kind = info.video ? 'video' : 'audio';
    while ((Date.now() - started) / 1000 < PLAY_SECONDS && !ipc.destroyed) {
      await sleep(SAMPLE_MS);
      const elapsed = (Date.now() - started) / 1000;
      if (killAt !== null && elapsed >= killAt && server.proc.exitCode === null) server.proc.kill('SIGKILL');
      const r = await Promise.race([send(['get_property', 'playback-time']), sleep(2000).then(() => null)]);
      if (r) samples.push({ t: r.t, pos: typeof r.data === 'number' ? r.data : null });
      if (seekable === null && samples.some((s) => s.pos !== null)) {
        const sk = await send(['get_property', 'seekable']);
        seekable = sk.error === 'success' ? sk.data : null;
      }
      if (!forced && elapsed >= PLAY_SECONDS * 0.45) {
        trackList = (await send(['get_property', 'track-list'])).data || [];
        // The lowest variant's tracks: the demuxer lists one program per
        // variant, in the master's order, so track n of a kind is the
        // master's n-th variant. Video and audio both move there (the
        // audio of a demuxed stream is one rendition: it stays).
        const of = (kind) => trackList.filter((x) => x.type === kind);
        const nameOf = (kind, x) => (of(kind).length === info.main.length ? info.masterOrder[of(kind).indexOf(x)] : null);
        const lowOf = (kind) => of(kind).find((x) => nameOf(kind, x) === info.main[0].name);
        const low = lowOf(kind);
        const before = of(kind).find((x) => x.selected);
        let r2 = { error: `no ${kind} track for ${info.main[0].name}` };
        if (low) {
          if (kind === 'video' && lowOf('audio')) await send(['set_property', 'aid', lowOf('audio').id]);
          r2 = await send(['set_property', kind === 'video' ? 'vid' : 'aid', low.id]);
        }
        forced = { t: Date.now() - t0, to: low && low.id, variant: low && nameOf(kind, low), from: before && before.id, fromVariant: before && nameOf(kind, before), result: r2.error };
      }
    }
    const tl = await Promise.race([send(['get_property', 'track-list']), sleep(2000).then(() => null)]);
    if (tl && tl.data) selected = tl.data.find((x) => x.type === (info.video ? 'video' : 'audio') && x.selected);
    ipc.write(JSON.stringify({ command: ['quit'] }) + '\n');
    await sleep(300);
    ipc.destroy();
  } finally {
    proc.kill('SIGKILL');
    server.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  if (ended && ended.reason === 'error') errors.push(`end-file: ${ended.error}`);
  // A track switch restarts the demuxer at the new playlist's live edge:
  // the playhead stops, then goes on from there. That stretch (up to 8 s)
  // is left out; playback must then go on as before.
  let excuse = null;
  let switchStall = null;
  if (forced) {
    const moving = samples.findIndex((s, i) => i > 1 && s.t > forced.t + 500 && s.pos > samples[i - 1].pos && samples[i - 1].pos > samples[i - 2].pos && samples[i - 2].pos > 0);
    const resumed = moving >= 0 ? samples[moving - 2].t : Infinity;
    switchStall = resumed - forced.t;
    excuse = { from: forced.t - SAMPLE_MS, to: Math.min(resumed, forced.t + 8000) };
  }
  const { fails, summary } = judgeClient({ stream: info, live: seekable === false, errors, samples, segs, excuse, jumps: ts === 'source' });
  if (switchStall !== null && switchStall > 8000) fails.push(`the playhead did not move on within 8 s of the forced switch`);
  const firstMove = samples.find((s, i) => i > 0 && s.pos !== samples[i - 1].pos);
  const inExcuse = (p) => excuse && p.from >= excuse.from && p.from <= excuse.to;
  const rebuffers = pauses.filter((p) => firstMove && p.from > firstMove.t && !inExcuse(p)).map((p) => ({ ...p, ms: (p.to ?? Date.now() - t0) - p.from }));
  const long = rebuffers.filter((p) => p.ms > 250);
  if (long.length) fails.push(`${long.length} rebuffers (paused-for-cache) over 250 ms, longest ${Math.max(...long.map((p) => p.ms))} ms (first at ${long[0].from} ms)`);
  // The switch: the lowest variant selected at the end, and its segments fetched after the switch, the former's no longer.
  let switchNote = 'never switched';
  if (!forced || forced.result !== 'success') fails.push(`forced switch failed: ${JSON.stringify(forced)}`);
  else {
    const lowest = info.main[0].name;
    const after = segs.filter((s) => s.t > forced.t);
    const low = after.filter((s) => info.variantOf(s.url) === lowest);
    const others = segs.filter((s) => s.t > forced.t + 6000 && info.main.some((v) => v.name !== lowest && info.variantOf(s.url) === v.name));
    if (!selected || selected.id !== forced.to) fails.push(`after forcing track ${forced.to} mpv reports ${selected && selected.id}`);
    if (low.length < 3) fails.push(`${low.length} segments of the lowest variant fetched after the forced switch`);
    if (others.length) fails.push(`${others.length} segments of other variants still fetched 6 s after the forced switch (${others[0].url})`);
    switchNote = `switched ${forced.fromVariant} → ${forced.variant} (playhead moving again after ${switchStall} ms)`;
  }
  return {
    name: `mpv, ${stream}, ts=${ts}`,
    fails,
    events: [{ kind: 'mpv', forced, pauses, ended, log: log.slice(-300) }],
    net: segs,
    summary: `${summary}, ${rebuffers.length} rebuffers (longest ${rebuffers.length ? Math.max(...rebuffers.map((p) => p.ms)) : 0} ms), ${switchNote}`,
  };
}

/** ffprobe's packets of `file`: per stream index, { codec_type, dts[] (s) }. */
async function probePackets(file) {
  const out = await L.run('ffprobe', ['-v', 'error', '-show_entries', 'packet=stream_index,dts_time,duration_time:stream=index,codec_type',
    '-of', 'json', file]);
  let parsed = {};
  try {
    parsed = JSON.parse(out.stdout);
  } catch {}
  const streams = {};
  for (const s of parsed.streams || []) streams[s.index] = { type: s.codec_type, dts: [], last: 0 };
  for (const p of parsed.packets || []) {
    const s = streams[p.stream_index];
    if (s && p.dts_time !== undefined) {
      s.dts.push(Number(p.dts_time));
      s.last = Number(p.duration_time || 0);
    }
  }
  return streams;
}

/**
 * Splits Streamlink's debug log (written with the thread name first:
 * `[HLSStreamWorker-0]`, `[HLSStreamWriter-audio-0]`, …) into its HLS
 * substreams: one, or one per rendition when it muxes external audio. Per
 * substream: the numbers written in order, those written out of turn
 * (gaps), the fMP4 initialization sections (a number written again right
 * after itself) and the seconds written (the durations it queued them with).
 */
export function streamlinkSubstreams(lines) {
  const subs = new Map();
  const sub = (key) => {
    if (!subs.has(key)) subs.set(key, { key, durations: new Map(), written: [], gaps: [], inits: 0 });
    return subs.get(key);
  };
  for (const line of lines) {
    const th = /\[HLSStream(?:Worker|Writer)(-[^\]]*)\]/.exec(line);
    if (!th) continue;
    const q = /Queuing HLSSegment\(num=(\d+),.*?duration=([\d.]+)/.exec(line);
    if (q) sub(th[1]).durations.set(Number(q[1]), Number(q[2]));
    const w = /Writing segment (\d+) to output/.exec(line);
    if (w) {
      const x = sub(th[1]);
      const n = Number(w[1]);
      const last = x.written[x.written.length - 1];
      if (last === n) x.inits++;
      else {
        if (last !== undefined && n !== last + 1) x.gaps.push(n);
        x.written.push(n);
      }
    }
  }
  return [...subs.values()].filter((x) => x.written.length).map((x) => ({
    key: x.key,
    start: x.written[0],
    written: x.written,
    gaps: x.gaps,
    inits: x.inits,
    seconds: x.written.reduce((a, n) => a + (x.durations.get(n) || 0), 0),
  }));
}

/**
 * Streamlink records the stream (`best`, `--hls-live-edge 3`; external
 * audio renditions muxed in by its ffmpeg) for PLAY_SECONDS and is stopped
 * with SIGINT. From its debug log: live (no end sequence), the media
 * sequence numbers written, which must run without a gap in every
 * substream and cross ≥ 2 loop points, and no error or warning (but its
 * discontinuity notices). From ffprobe on the file: decode timestamps never
 * going back in any stream (audio stepping back by less than one AAC frame,
 * ≤ 25 ms, at a loop point is counted, not failed: the documented overlap
 * of `ts=continuous`), and every stream lasting as long as the segments of
 * one substream written (± 0.5 s; audio also loses up to 0.5 s per loop
 * point) and ≥ 0.9 × the wall time recorded.
 */
export async function streamlink({ stream = 'loop', ts = 'source', killAt = null } = {}) {
  const info = L.streamInfo(stream);
  const server = await L.startPseudolive();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pl-streamlink-'));
  const file = path.join(dir, 'rec.ts');
  const url = `${server.base}${L.srcOf(stream, ts)}`;
  const t0 = Date.now();
  const fails = [];
  let summary = '';
  const log = [];
  let live = null;
  const errors = [];
  let code = null;
  try {
    const proc = L.track(spawn('timeout', ['-s', 'INT', '-k', '10', String(PLAY_SECONDS), STREAMLINK, '--loglevel', 'debug',
      '--logformat', '[{threadName}][{name}][{levelname}] {message}', '--hls-live-edge', '3',
      '--stream-segmented-queue-deadline', '3', '--ffmpeg-ffmpeg', 'ffmpeg', `hls://${url}`, 'best', '-o', file, '-f'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const onLog = (line, t) => {
      log.push(`${t} ${line}`);
      const s = /End Sequence: (\S+)/.exec(line);
      if (s && live === null) live = s[1] === 'None';
      if (/\]\[(error|warning|critical)\] /.test(line) && !/Encountered a stream discontinuity/.test(line)) errors.push(line.slice(0, 200));
    };
    lines(proc.stdout, t0, onLog);
    lines(proc.stderr, t0, onLog);
    const exit = new Promise((r) => proc.on('close', (c) => r(c)));
    const started = Date.now();
    while (proc.exitCode === null && (Date.now() - started) / 1000 < PLAY_SECONDS + 15) {
      await sleep(SAMPLE_MS);
      if (killAt !== null && (Date.now() - started) / 1000 >= killAt && server.proc.exitCode === null) server.proc.kill('SIGKILL');
    }
    code = await exit;
    const wall = (Date.now() - started) / 1000;
    if (live !== true) fails.push(`not detected as live (End Sequence ${live === null ? 'not logged' : 'set'})`);
    for (const e of errors.slice(0, 3)) fails.push(`streamlink: ${e}`);
    const subs = streamlinkSubstreams(log);
    // The variants' substream: the one with the fewest segments (an audio rendition may be cut finer).
    const written = subs.length ? [...subs].sort((a, b) => a.written.length - b.written.length)[0].written : [];
    if (!subs.length || written.length < 10) fails.push(`${written.length} segments written`);
    for (const [i, x] of subs.entries()) if (x.gaps.length) fails.push(`media sequence of substream ${i + 1} not contiguous: ${x.gaps.length} written out of turn (first ${x.gaps[0]})`);
    const perLoop = info.tracks[info.main[0].name].length;
    const loops = written.length ? Math.floor(written[written.length - 1] / perLoop) - Math.floor(written[0] / perLoop) : 0;
    if (loops < 2) fails.push(`the segments written crossed ${loops} loop points (want ≥ 2)`);
    let size = 0;
    try {
      size = statSync(file).size;
    } catch {}
    if (size === 0) fails.push('nothing recorded');
    else {
      const streams = await probePackets(file);
      const recorded = [];
      let overlaps = 0;
      for (const [idx, st] of Object.entries(streams)) {
        if (st.dts.length < 2) continue;
        const backs = st.dts.map((d, i) => (i > 0 ? st.dts[i - 1] - d : 0)).map((by, i) => ({ by, i })).filter((x) => x.by > 0);
        const small = backs.filter((x) => st.type === 'audio' && x.by <= 0.025);
        overlaps += small.length;
        const big = backs.filter((x) => !small.includes(x));
        if (big.length) fails.push(`stream ${idx} (${st.type}): decode timestamps go back ${big.length} times, first at packet ${big[0].i} (${st.dts[big[0].i - 1].toFixed(3)} → ${st.dts[big[0].i].toFixed(3)} s)`);
        const span = st.dts[st.dts.length - 1] - st.dts[0] + st.last;
        recorded.push(`${st.type} ${span.toFixed(1)} s`);
        const slack = 0.5 + (st.type === 'audio' ? 0.5 * (loops + 1) : 0);
        const closest = subs.map((x) => x.seconds).sort((a, b) => Math.abs(a - span) - Math.abs(b - span))[0] || 0;
        if (Math.abs(span - closest) > slack) fails.push(`stream ${idx} (${st.type}) lasts ${span.toFixed(1)} s by its timestamps, the segments written ${subs.map((x) => x.seconds.toFixed(1)).join(' / ')} s`);
        if (span < 0.9 * wall) fails.push(`stream ${idx} (${st.type}) lasts ${span.toFixed(1)} s, recorded for ${wall.toFixed(1)} s of wall time`);
      }
      summary = `recorded ${wall.toFixed(1)} s of wall time: ${subs.map((x) => `${x.written.length} segments (${x.written[0]}–${x.written[x.written.length - 1]}, ${x.seconds.toFixed(1)} s${x.inits ? `, ${x.inits} init sections` : ''})`).join(' and ')}, ` +
        `${loops} loop points, ${(size / 1024).toFixed(0)} KiB lasting ${recorded.join(', ')} by ffprobe, audio stepping back ≤ 25 ms ${overlaps} times`;
      if (!recorded.length) fails.push('ffprobe found no stream in the recording');
    }
  } finally {
    server.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  return { name: `Streamlink recording, ${stream}, ts=${ts}`, fails, events: [{ kind: 'streamlink', code, log: log.slice(-200) }], summary };
}
