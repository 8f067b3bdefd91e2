// Real players against a running pseudolive: hls.js and Chromium's own HLS
// player in headless Chromium, ffmpeg as an HLS client, and hls.js through an
// nginx load balancer and cache in front of two replicas. A negative
// control checks that the same harness fails when the server stops mid-play.
//
// Usage: node run.mjs [hlsjs] [native] [ffmpeg] [cdn] [negative]   (default: all)
// Env: PSEUDOLIVE_BIN (default ../../target/release/pseudolive),
//      CHROMIUM (default /usr/bin/chromium), PLAY_SECONDS (default 50).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.PSEUDOLIVE_BIN || path.join(here, '../../target/release/pseudolive');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const NGINX = process.env.NGINX || '/usr/sbin/nginx';
const PLAY_SECONDS = Number(process.env.PLAY_SECONDS || 50);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every server started here dies with this process, whatever happens.
const children = new Set();
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

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

async function startPseudolive(extra = [], fixedPort = null) {
  const port = fixedPort || (await freePort());
  const proc = spawn(BIN, ['127.0.0.1', String(port), '--static', path.join(here, 'static'), '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.add(proc);
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

/** The test page, served from another origin than the stream. */
async function startPageServer() {
  const port = await freePort();
  const files = {
    '/page.html': ['text/html', readFileSync(path.join(here, 'page.html'))],
    '/hls.js': ['text/javascript', readFileSync(path.join(here, 'node_modules/hls.js/dist/hls.min.js'))],
  };
  const server = http.createServer((req, res) => {
    const f = files[req.url.split('?')[0]];
    if (!f) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': f[0] }).end(f[1]);
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${port}/page.html` };
}

async function launch() {
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

/** A new tab on the test page, playing `src` with `starter` (startHls or startNative). */
async function openPlayer(browser, pageUrl, starter, src) {
  const tab = await browser.newPage();
  await tab.goto(pageUrl);
  await tab.evaluate(([fn, s]) => window[fn](s), [starter, src]);
  return tab;
}

/** Media time and wall time (s) advanced between the first sample at or after `fromMs` and the last. */
function progress(samples, fromMs) {
  const after = samples.filter((s) => s.t >= fromMs);
  if (after.length === 0) return { after, played: 0, wall: 0 };
  const first = after[0];
  const last = after[after.length - 1];
  return { after, played: last.time - first.time, wall: (last.t - first.t) / 1000 };
}

/** Checks a play-through; returns the list of failures (empty = pass). */
function judgeHls(events, samples, wallSeconds) {
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
    if (waits.length) fails.push(`${waits.length} 'waiting' after the first 'playing' (first at ${waits[0].t} ms)`);
    const { after, played, wall } = progress(samples, firstPlaying.t);
    if (played < 0.9 * wall) fails.push(`currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s of wall time`);
    for (let i = 1; i < after.length; i++) {
      const dt = after[i].time - after[i - 1].time;
      const dw = (after[i].t - after[i - 1].t) / 1000;
      if (dt < -0.01 || dt > dw + 1.0) {
        fails.push(`currentTime jumped by ${dt.toFixed(2)} s in ${dw.toFixed(2)} s at ${after[i].t} ms`);
        break;
      }
    }
    const last = samples[samples.length - 1];
    if (last && last.total > 0 && last.dropped / last.total >= 0.1) fails.push(`dropped ${last.dropped}/${last.total} frames`);
  }
  const ccs = new Set(of('FRAG_CHANGED').map((e) => e.cc));
  if (ccs.size < 3) fails.push(`only ${ccs.size} discontinuity counters played (${[...ccs]}): need two crossings`);
  if (wallSeconds < 0) fails.push('internal: negative wall time');
  return fails;
}

function printLog(name, events) {
  console.error(`--- ${name}: event log (${events.length} events) ---`);
  for (const e of events) console.error(JSON.stringify(e));
}

/**
 * Runs `body({ server, page, browser })` with a fresh pseudolive, the test
 * page's server and a browser, and closes all three whatever happens.
 */
async function withBrowser(body) {
  const server = await startPseudolive();
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

/** hls.js for PLAY_SECONDS with two forced switches; `stopServerAt` kills the server then. */
async function hlsjs({ stopServerAt } = {}) {
  const name = stopServerAt ? 'negative control' : 'hls.js';
  return withBrowser(async ({ server, page, browser }) => {
    const { proc, base } = server;
    const tab = await openPlayer(browser, page.url, 'startHls', `${base}/loop.m3u8`);
    const started = Date.now();
    const switches = [];
    const switchAt = [PLAY_SECONDS * 0.35, PLAY_SECONDS * 0.65];
    while ((Date.now() - started) / 1000 < PLAY_SECONDS) {
      await sleep(500);
      const elapsed = (Date.now() - started) / 1000;
      if (stopServerAt && elapsed >= stopServerAt && proc.exitCode === null && !proc.killed) proc.kill('SIGKILL');
      if (switches.length < switchAt.length && elapsed >= switchAt[switches.length]) {
        const target = await tab.evaluate(() => {
          const next = (window.hls.currentLevel + 1) % window.hls.levels.length;
          window.hls.nextLevel = next;
          return next;
        });
        switches.push({ target, at: Date.now() - started });
      }
    }
    const events = await tab.evaluate(() => window.events);
    const samples = await tab.evaluate(() => window.samples);
    const fails = judgeHls(events, samples, PLAY_SECONDS);
    for (const s of switches) {
      const sw = events.find((e) => e.kind === 'LEVEL_SWITCHED' && e.level === s.target && e.t >= s.at - 2000);
      const frag = events.find((e) => e.kind === 'FRAG_LOADED' && e.level === s.target && e.t >= s.at - 2000);
      if (!sw || !frag) fails.push(`forced switch to level ${s.target} at ${s.at} ms: ${sw ? '' : 'no LEVEL_SWITCHED '}${frag ? '' : 'no fragment of that level'}`);
    }
    if (switches.length < 2) fails.push('fewer than two forced switches');
    const last = samples[samples.length - 1] || {};
    const ccs = [...new Set(events.filter((e) => e.kind === 'FRAG_CHANGED').map((e) => e.cc))];
    const summary = `currentTime ${(last.time || 0).toFixed(1)} s, discontinuity counters ${ccs.join(',')}, ` +
      `switches to ${switches.map((s) => s.target).join(',')}, dropped ${last.dropped || 0}/${last.total || 0} frames`;
    return { name, fails, events, summary };
  });
}

/** Chromium's built-in HLS player, no hls.js. */
async function native() {
  return withBrowser(async ({ server, page, browser }) => {
    const tab = await openPlayer(browser, page.url, 'startNative', `${server.base}/loop.m3u8`);
    await sleep(Math.min(PLAY_SECONDS, 35) * 1000);
    const events = await tab.evaluate(() => window.events);
    const samples = await tab.evaluate(() => window.samples);
    const fails = [];
    const can = events.find((e) => e.kind === 'native:canPlayType');
    if (!can || can.answer === '') fails.push(`Chromium reports no native HLS support (canPlayType = ${JSON.stringify(can && can.answer)})`);
    const firstPlaying = events.find((e) => e.kind === 'video:playing');
    if (!firstPlaying) fails.push('never playing');
    const err = events.find((e) => e.kind === 'video:error');
    if (err) fails.push(`media error code ${err.code}`);
    const { played, wall } = progress(samples, firstPlaying ? firstPlaying.t : Infinity);
    if (wall < 25) fails.push(`played for only ${wall.toFixed(1)} s of wall time`);
    if (played < 0.9 * wall) fails.push(`currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s`);
    const summary = `canPlayType ${JSON.stringify(can && can.answer)}, played ${played.toFixed(1)} s in ${wall.toFixed(1)} s`;
    return { name: 'Chromium native HLS', fails, events, summary };
  });
}

/** ffmpeg as a client of one variant: decoded time must reach 30 s. */
async function ffmpeg() {
  const { proc, base } = await startPseudolive();
  const fails = [];
  let events = [];
  let summary = '';
  try {
    const out = await new Promise((resolve) => {
      const p = spawn('timeout', ['-k', '5', '75', 'ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'warning',
        '-m3u8_hold_counters', '5', '-i', `${base}/loop_mid.m3u8`, '-t', '30', '-f', 'null', '-', '-progress', 'pipe:1']);
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    const times = [...out.stdout.matchAll(/out_time_us=(\d+)/g)].map((m) => Number(m[1]) / 1e6);
    const reached = times.length ? Math.max(...times) : 0;
    events = [{ kind: 'ffmpeg', code: out.code, reached, stderr: out.stderr.slice(-2000) }];
    if (reached < 29.9) fails.push(`ffmpeg decoded only ${reached.toFixed(2)} s of 30 (exit ${out.code})`);
    summary = `decoded ${reached.toFixed(2)} s, exit ${out.code}`;
  } finally {
    proc.kill();
  }
  return { name: 'ffmpeg client', fails, events, summary };
}

/** nginx as load balancer and cache in front of two replicas with one epoch. */
async function startNginx(ports) {
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
  const proc = spawn(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'inherit', 'inherit'] });
  children.add(proc);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${base}/loop.m3u8`)).ok) return { proc, base, dir };
    } catch {}
    await sleep(50);
  }
  throw new Error(`nginx did not start: ${readFileSync(path.join(dir, 'error.log'), 'utf8')}`);
}

/** hls.js through nginx while one replica is killed and restarted. */
async function cdn() {
  const epoch = ['--epoch', '2026-01-01T00:00:00Z'];
  let a = await startPseudolive(epoch);
  const b = await startPseudolive(epoch);
  const ng = await startNginx([a.port, b.port]);
  const page = await startPageServer();
  const browser = await launch();
  const fails = [];
  let events = [];
  let summary = '';
  try {
    const tab = await openPlayer(browser, page.url, 'startHls', `${ng.base}/loop.m3u8`);
    // A second viewer of the same stream: its requests are what the cache absorbs.
    await openPlayer(browser, page.url, 'startHls', `${ng.base}/loop.m3u8`);
    const started = Date.now();
    let killed = false;
    let restarted = false;
    while ((Date.now() - started) / 1000 < PLAY_SECONDS) {
      await sleep(250);
      const elapsed = (Date.now() - started) / 1000;
      if (!killed && elapsed >= PLAY_SECONDS * 0.35) {
        a.proc.kill('SIGKILL');
        killed = true;
      }
      if (killed && !restarted && elapsed >= PLAY_SECONDS * 0.6) {
        a = await startPseudolive(epoch, a.port);
        restarted = true;
      }
    }
    events = await tab.evaluate(() => window.events);
    const samples = await tab.evaluate(() => window.samples);
    fails.push(...judgeHls(events, samples, PLAY_SECONDS));
    const log = readFileSync(path.join(ng.dir, 'access.log'), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
    const ts = log.filter((f) => f[0].endsWith('.ts'));
    const hits = ts.filter((f) => f[1] === 'HIT').length;
    const upstreams = new Set(log.map((f) => f[3]).filter((u) => u && u !== '-'));
    summary = `segment cache hits ${hits}/${ts.length} (${ts.length ? ((100 * hits) / ts.length).toFixed(0) : 0}%), ` +
      `${log.length} requests via ${upstreams.size} upstream addresses, replica killed at ${(PLAY_SECONDS * 0.35).toFixed(0)} s and restarted at ${(PLAY_SECONDS * 0.6).toFixed(0)} s`;
    if (!restarted) fails.push('the replica was not restarted');
  } finally {
    await browser.close();
    page.server.close();
    a.proc.kill();
    b.proc.kill();
    ng.proc.kill();
  }
  return { name: 'hls.js through nginx (two replicas, one killed and restarted)', fails, events, summary };
}

async function main() {
  const which = process.argv.slice(2);
  const all = which.length === 0;
  const results = [];
  const run = async (key, fn) => {
    if (!all && !which.includes(key)) return;
    const t = Date.now();
    const r = await fn();
    r.seconds = ((Date.now() - t) / 1000).toFixed(0);
    results.push(r);
    console.log(`${r.fails.length ? 'FAIL' : 'ok  '} ${r.name} (${r.seconds} s)${r.summary ? ': ' + r.summary : ''}${r.fails.map((f) => '\n     - ' + f).join('')}`);
    if (r.fails.length && key !== 'negative') printLog(r.name, r.events);
  };
  await run('hlsjs', () => hlsjs());
  await run('native', native);
  await run('ffmpeg', ffmpeg);
  await run('cdn', cdn);
  await run('negative', async () => {
    // The server dies a third of the way in: the harness must notice.
    const r = await hlsjs({ stopServerAt: PLAY_SECONDS / 3 });
    const noticed = r.fails.length > 0;
    return { name: 'negative control (server killed mid-play must fail)', fails: noticed ? [] : ['the harness passed a server that stopped'], events: r.events, caught: r.fails };
  });
  const negative = results.find((r) => r.caught);
  if (negative) console.log(`     negative control caught: ${negative.caught.slice(0, 3).join('; ')}`);
  const failed = results.filter((r) => r.fails.length).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
