// Shared by the player scenarios: servers (pseudolive, the test pages, nginx),
// headless Chromium, and the judges of a play-through.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.PSEUDOLIVE_BIN || path.join(here, '../../target/release/pseudolive');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NGINX = process.env.NGINX || '/usr/sbin/nginx';
export const PLAY_SECONDS = Number(process.env.PLAY_SECONDS || 50);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The test stream: tests/player/static/loop, an 18 s loop of 2 s segments with a source discontinuity at 10 s. */
export const LOOP_SECONDS = 18;
export const VARIANTS = ['low', 'mid', 'high'];

// Every process started here dies with this process, whatever happens.
const children = new Set();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
export function track(proc) {
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return proc;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function startPseudolive(extra = [], fixedPort = null) {
  const port = fixedPort || (await freePort());
  const proc = track(spawn(BIN, ['127.0.0.1', String(port), '--static', path.join(here, 'static'), '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'inherit', 'inherit'],
  }));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`${base}/streams.json`);
      const streams = await res.json();
      if (streams.every((s) => s.state === 'ready')) return { proc, base, port };
    } catch {}
    await sleep(50);
  }
  proc.kill();
  throw new Error('pseudolive did not become ready');
}

/** A `start=` option: a timeline that began `ago` seconds before now, so loop points fall at known instants. */
export function timelineStartingAgo(ago) {
  const startS = Math.floor(Date.now() / 1000) - ago;
  return { startS, option: `start=${startS}` };
}

/** The test pages and the players' scripts, served from another origin than the stream. */
export async function startPageServer() {
  const port = await freePort();
  const nm = (p) => path.join(here, 'node_modules', p);
  const files = {
    '/hls.html': ['text/html', path.join(here, 'hls.html')],
    '/shaka.html': ['text/html', path.join(here, 'shaka.html')],
    '/videojs.html': ['text/html', path.join(here, 'videojs.html')],
    '/record.js': ['text/javascript', path.join(here, 'record.js')],
    '/hls.js': ['text/javascript', nm('hls.js/dist/hls.min.js')],
    '/shaka.js': ['text/javascript', nm('shaka-player/dist/shaka-player.compiled.js')],
    '/video.js': ['text/javascript', nm('video.js/dist/video.min.js')],
  };
  const server = http.createServer((req, res) => {
    const f = files[req.url.split('?')[0]];
    if (!f) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': f[0] }).end(readFileSync(f[1]));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${port}`, url: `http://127.0.0.1:${port}/hls.html` };
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
    // playwright gives each launch a fresh, empty profile directory.
  });
}

/**
 * A new tab on `pageUrl` calling `window[starter](...args)`. The tab's
 * network responses and failed requests are logged in `tab.net` as
 * { t (ms on the page's clock), url, status } (status 0: failed);
 * `tab.origin` is the page clock's zero in ms since the epoch.
 */
export async function openPlayer(browser, pageUrl, starter, ...args) {
  const tab = await browser.newPage();
  tab.net = [];
  let origin = null;
  const now = () => (origin === null ? 0 : Date.now() - origin);
  tab.on('response', (r) => tab.net.push({ t: now(), url: r.url(), status: r.status() }));
  tab.on('requestfailed', (r) => tab.net.push({ t: now(), url: r.url(), status: 0, failure: (r.failure() || {}).errorText }));
  await tab.goto(pageUrl);
  origin = await tab.evaluate(() => performance.timeOrigin + window.t0);
  tab.origin = origin;
  tab.net.forEach((n) => (n.t = 0));
  await tab.evaluate(([fn, a]) => window[fn](...a), [starter, args]);
  return tab;
}

/** The page's event log and samples. */
export async function readBack(tab) {
  return tab.evaluate(() => ({ events: window.events, samples: window.samples }));
}

/** Media time and wall time (s) advanced between the first sample at or after `fromMs` (and before `toMs`) and the last. */
export function progress(samples, fromMs, toMs = Infinity) {
  const after = samples.filter((s) => s.t >= fromMs && s.t <= toMs);
  if (after.length === 0) return { after, played: 0, wall: 0 };
  const first = after[0];
  const last = after[after.length - 1];
  return { after, played: last.time - first.time, wall: (last.t - first.t) / 1000 };
}

/** The first jump of currentTime (backwards, or ahead of wall time by over 1 s) among `samples`, as text. */
export function firstJump(samples, excused = () => false) {
  for (let i = 1; i < samples.length; i++) {
    const dt = samples[i].time - samples[i - 1].time;
    const dw = (samples[i].t - samples[i - 1].t) / 1000;
    if ((dt < -0.01 || dt > dw + 1.0) && !excused(samples[i], dt)) return `currentTime jumped by ${dt.toFixed(2)} s in ${dw.toFixed(2)} s at ${samples[i].t} ms`;
  }
  return null;
}

/**
 * Loop points the playhead crossed, from its program date-time on a
 * timeline that started at `startS` (Unix seconds): the number of
 * distinct loops played, minus one. Null when the player gives no date.
 */
export function loopsCrossed(samples, startS, loopSeconds = LOOP_SECONDS) {
  const loops = new Set(samples.filter((s) => s.pdt).map((s) => Math.floor((s.pdt / 1000 - startS) / loopSeconds)));
  return loops.size === 0 ? null : loops.size - 1;
}

/** The variant (low, mid, high) a segment URL belongs to, or null. */
export function variantOf(url) {
  const m = /\/loop\/(low|mid|high)\/[^/]+\.ts(\?|$)/.exec(url);
  return m ? m[1] : null;
}

/** Checks a play-through of hls.js; returns the list of failures (empty = pass). */
export function judgeHls(events, samples, { allowWaiting = false } = {}) {
  const fails = [];
  const of = (kind) => events.filter((e) => e.kind === kind);
  const loaded = of('LEVEL_LOADED');
  if (loaded.length === 0) fails.push('no LEVEL_LOADED');
  if (loaded.some((e) => !e.live)) fails.push('a LEVEL_LOADED was not live');
  for (const e of of('ERROR')) {
    if (e.fatal) fails.push(`fatal error ${e.details}: ${e.reason}`);
    if (/PARSING/i.test(e.details)) fails.push(`parsing error ${e.details}: ${e.reason}`);
  }
  for (const e of [...of('hls:warn'), ...of('hls:error')]) {
    if (/media sequence mismatch|discontinuity sequence mismatch|Cannot merge/i.test(e.message)) fails.push(`hls.js: ${e.message}`);
  }
  const firstPlaying = of('video:playing')[0];
  if (!firstPlaying) fails.push('never playing');
  else {
    const waits = events.filter((e) => e.kind === 'video:waiting' && e.t > firstPlaying.t);
    if (waits.length && !allowWaiting) fails.push(`${waits.length} 'waiting' after the first 'playing' (first at ${waits[0].t} ms)`);
    const { after, played, wall } = progress(samples, firstPlaying.t);
    if (played < 0.9 * wall) fails.push(`currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s of wall time`);
    const jump = firstJump(after);
    if (jump) fails.push(jump);
    const last = samples[samples.length - 1];
    if (last && last.total > 0 && last.dropped / last.total >= 0.1) fails.push(`dropped ${last.dropped}/${last.total} frames`);
  }
  const ccs = new Set(of('FRAG_CHANGED').map((e) => e.cc));
  if (ccs.size < 3) fails.push(`only ${ccs.size} discontinuity counters played (${[...ccs]}): need two crossings`);
  return fails;
}

export function printLog(name, events, netlog = []) {
  console.error(`--- ${name}: event log (${events.length} events) ---`);
  for (const e of events) console.error(JSON.stringify(e));
  if (netlog.length) {
    console.error(`--- ${name}: network log (${netlog.length} responses) ---`);
    for (const n of netlog) console.error(JSON.stringify(n));
  }
}

/**
 * Runs `body({ server, page, browser })` with a fresh pseudolive, the test
 * pages' server and a browser, and closes all three whatever happens.
 */
export async function withBrowser(body, serverArgs = []) {
  const server = await startPseudolive(serverArgs);
  const page = await startPageServer();
  const browser = await launch();
  try {
    return await body({ server, page, browser });
  } finally {
    await browser.close();
    page.server.close();
    server.proc.kill();
  }
}

/** Runs a command; resolves with its exit code, stdout and stderr. */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const p = track(spawn(cmd, args, opts));
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** nginx as load balancer and cache in front of pseudolive replicas on `ports`. */
export async function startNginx(ports) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pl-nginx-'));
  const port = await freePort();
  const conf = `
daemon off;
user root;
worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 1024; }
http {
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  log_format cache '$uri $upstream_cache_status $status $upstream_addr';
  access_log ${dir}/access.log cache;
  proxy_cache_path ${dir}/cache keys_zone=pseudolive:10m max_size=200m inactive=10m;
  upstream pseudolive {
    ${ports.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`).join('\n    ')}
    keepalive 16;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://pseudolive;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache pseudolive;
      proxy_cache_lock on;
      proxy_cache_use_stale error timeout updating;
      proxy_next_upstream error timeout http_502 http_503;
      proxy_connect_timeout 1s;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
}`;
  writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const proc = track(spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'inherit', 'inherit'] }));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${base}/loop.m3u8`)).ok) return { proc, base, dir };
    } catch {}
    await sleep(50);
  }
  throw new Error(`nginx did not start: ${readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
}

/**
 * A reverse proxy in front of `target` that logs every request as
 * { t (ms since start), url, status } (status 0: the upstream failed), for
 * clients outside the browser.
 */
export async function startRecordingProxy(target) {
  const port = await freePort();
  const log = [];
  const t0 = Date.now();
  const server = http.createServer((req, res) => {
    const up = http.request(target + req.url, { method: req.method, headers: req.headers }, (ur) => {
      log.push({ t: Date.now() - t0, url: req.url, status: ur.statusCode });
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => {
      log.push({ t: Date.now() - t0, url: req.url, status: 0 });
      res.destroy();
    });
    req.pipe(up);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { server, log, t0, base: `http://127.0.0.1:${port}` };
}

/**
 * The instant (ms since the epoch) of segment 0 of the timeline a `start=`
 * option names: the program date-time of media sequence 0, read from the
 * playlist of the instant `startS`.
 */
export async function anchorOf(base, startS, media = 'loop_low') {
  const text = await (await fetch(`${base}/start=${startS}/${media}.m3u8?now=${startS * 1000}`)).text();
  const msn = Number((/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text) || [])[1]);
  const pdt = (/#EXT-X-PROGRAM-DATE-TIME:(\S+)/.exec(text) || [])[1];
  if (msn !== 0 || !pdt) throw new Error(`the playlist at start=${startS} does not begin with segment 0 and a date:\n${text}`);
  return Date.parse(pdt);
}

/**
 * Plays for `seconds` of wall time: kills `proc` at `killAt` seconds (the
 * negative controls) and runs each `{ at, run }` of `actions` once at its
 * second. Returns the start (ms since the epoch) and what the actions returned.
 */
export async function playFor(seconds, { proc = null, killAt = null, actions = [] } = {}) {
  const started = Date.now();
  const done = [];
  while ((Date.now() - started) / 1000 < seconds) {
    await sleep(250);
    const elapsed = (Date.now() - started) / 1000;
    if (proc && killAt !== null && elapsed >= killAt && proc.exitCode === null && !proc.killed) proc.kill('SIGKILL');
    const next = actions[done.length];
    if (next && elapsed >= next.at) done.push({ at: Date.now() - started, value: await next.run() });
  }
  return { started, done };
}

/** The longest time (ms) the playhead stood still between page times `fromMs` and `toMs`, and when that began. */
export function longestStill(samples, fromMs, toMs) {
  let best = { ms: 0, at: null };
  let runStart = null;
  const inRange = samples.filter((s) => s.t >= fromMs && s.t <= toMs);
  for (let i = 1; i < inRange.length; i++) {
    const still = Math.abs(inRange[i].time - inRange[i - 1].time) < 0.02;
    if (still) {
      if (runStart === null) runStart = inRange[i - 1].t;
      const ms = inRange[i].t - runStart;
      if (ms > best.ms) best = { ms, at: runStart };
    } else runStart = null;
  }
  return best;
}

/** Position of a segment file of the loop stream within the loop (0 to 8), or null. */
export function loopIndex(url) {
  const m = /\/(a|b)_seg_(\d+)\.ts(\?|$)/.exec(url);
  return m ? (m[1] === 'a' ? 0 : 5) + Number(m[2]) : null;
}

/**
 * Loop points crossed by the segments fetched, in request order: a fetch of
 * one of the loop's first two segments right after one of its last two,
 * whatever the variants (clients that read every variant at once, or switch,
 * interleave them).
 */
export function loopWraps(urls) {
  let wraps = 0;
  let prev = null;
  for (const url of urls) {
    const i = loopIndex(url);
    if (i === null) continue;
    if (prev !== null && prev >= 7 && i <= 1) wraps++;
    prev = i;
  }
  return wraps;
}

/**
 * What the harnesses know of a stream of tests/player/static, read from its
 * files: `name`, `main` (the variants of the master, lowest bandwidth
 * first, each { name, bandwidth, height }), `masterOrder` (their names in
 * the master's order), `renditions` (track names of
 * EXT-X-MEDIA playlists), `tracks` (track name → its segment files in loop
 * order), `loopSeconds` (sum of the first variant's #EXTINF),
 * `discontinuities` per loop (the loop point and the source's own), `video`
 * (whether the variants carry video), `variantOf(url)` (the track a segment
 * URL belongs to, or null) and `segmentOf(url)` ({ track, index, count }).
 */
export function streamInfo(name) {
  const dir = path.join(here, 'static', name);
  const master = readFileSync(path.join(dir, 'abr.m3u8'), 'utf8').split('\n').map((l) => l.trim());
  const attr = (line, key) => (new RegExp(`[:,]${key}=("[^"]*"|[^,]*)`).exec(line) || [])[1]?.replace(/"/g, '');
  const trackOf = (uri) => uri.split('/')[0];
  const main = [];
  const renditions = [];
  master.forEach((line, i) => {
    if (line.startsWith('#EXT-X-STREAM-INF')) {
      const res = attr(line, 'RESOLUTION');
      main.push({ name: trackOf(master[i + 1]), bandwidth: Number(attr(line, 'BANDWIDTH')), height: res ? Number(res.split('x')[1]) : null });
    }
    if (line.startsWith('#EXT-X-MEDIA') && attr(line, 'URI')) renditions.push(trackOf(attr(line, 'URI')));
  });
  const masterOrder = main.map((v) => v.name);
  main.sort((a, b) => a.bandwidth - b.bandwidth);
  const tracks = {};
  let loopSeconds = null;
  let discontinuities = 1;
  for (const t of [...main.map((v) => v.name), ...renditions]) {
    const text = readFileSync(path.join(dir, t, 'index.m3u8'), 'utf8');
    tracks[t] = text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.trim());
    if (loopSeconds === null) {
      loopSeconds = [...text.matchAll(/#EXTINF:([\d.]+)/g)].reduce((s, m) => s + Number(m[1]), 0);
      discontinuities += (text.match(/#EXT-X-DISCONTINUITY\s/g) || []).length;
    }
  }
  const re = new RegExp(`/${name}/([^/]+)/([^/?]+)(\\?|$)`);
  const segmentOf = (url) => {
    const m = re.exec(url);
    if (!m || !tracks[m[1]]) return null;
    const index = tracks[m[1]].indexOf(m[2]);
    return index < 0 ? null : { track: m[1], index, count: tracks[m[1]].length };
  };
  return {
    name, main, masterOrder, renditions, tracks, loopSeconds, discontinuities, segmentOf,
    video: main.some((v) => v.height),
    variantOf: (url) => (segmentOf(url) || {}).track || null,
  };
}

/**
 * Loop points crossed by the segments fetched of `stream` (a streamInfo), in
 * request order, counted over the tracks named in `tracks` (default: the
 * variants of the master, which are cut alike): a fetch of one of the loop's
 * first two segments right after one of its last two.
 */
export function wrapsOf(stream, urls, tracks = stream.main.map((v) => v.name)) {
  let wraps = 0;
  let prev = null;
  for (const url of urls) {
    const s = stream.segmentOf(url);
    if (!s || !tracks.includes(s.track)) continue;
    if (prev !== null && prev.index >= prev.count - 2 && s.index <= 1) wraps++;
    prev = s;
  }
  return wraps;
}

/** The master playlist path of `stream` in timestamp mode `ts` (`source` or `continuous`), after any other `options`. */
export function srcOf(stream, ts, options = []) {
  return `/${[...options, `ts=${ts}`].join('/')}/${stream}.m3u8`;
}
