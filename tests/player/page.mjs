// The stream page in headless Chromium: it plays the stream with hls.js
// (the CDN script answered from the local npm copy), its live state changes,
// and its timeline picture is drawn and moves. Screenshots are saved in
// target/page-screenshots/ for a person to look at. A negative control
// checks the same harness fails when the server is gone.
//
// Env: PSEUDOLIVE_BIN (default ../../target/release/pseudolive), CHROMIUM.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = process.env.PSEUDOLIVE_BIN || path.join(here, '../../target/release/pseudolive');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(here, '../../target/page-screenshots');
const HLSJS = 'https://cdn.example.invalid/hls.min.js';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

async function startServer() {
  const port = await freePort();
  const proc = spawn(BIN, ['127.0.0.1', String(port), '--static', path.join(here, 'static'),
    '--log-level', 'warn', '--hlsjs-url', HLSJS], { stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      const streams = await (await fetch(`${base}/streams.json`)).json();
      if (streams.length && streams.every((s) => s.state === 'ready')) return { proc, base };
    } catch {}
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error('pseudolive did not become ready');
}

/** Opens the page of the first stream and watches it for `seconds`; throws on failure. */
async function watchPage(browser, base, seconds, shot, onStart = () => {}) {
  const streams = await (await fetch(`${base}/streams.json`)).json();
  const stream = streams[0];
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await page.route(HLSJS, (route) => route.fulfill({
    contentType: 'text/javascript',
    body: readFileSync(path.join(here, 'node_modules/hls.js/dist/hls.min.js')),
  }));
  await page.goto(`${base}${stream.page}`);
  onStart();
  const read = () => page.evaluate(() => ({
    time: document.getElementById('video').currentTime,
    msn: document.getElementById('s-msn').textContent,
    pos: document.getElementById('s-pos').textContent,
    svg: !!document.getElementById('timeline-svg'),
    rects: document.querySelectorAll('#timeline-svg rect.seg').length,
    live: document.querySelectorAll('#timeline-svg rect.seg.live').length,
    now: document.querySelector('#timeline-svg line.now')?.getAttribute('x1'),
    error: document.getElementById('player-error').textContent,
  }));
  await sleep(3000);
  const first = await read();
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${shot}-start.png`) });
  await sleep(seconds * 1000);
  const last = await read();
  await page.screenshot({ path: path.join(SHOTS, `${shot}-end.png`) });
  await page.close();
  const problems = [];
  if (last.error) problems.push(`player error: ${last.error}`);
  if (!(last.time - first.time > seconds * 0.8)) problems.push(`video advanced ${last.time - first.time} s in ${seconds} s`);
  if (first.msn === last.msn) problems.push(`media sequence stuck at ${last.msn}`);
  if (first.pos === last.pos) problems.push(`position in loop stuck at ${last.pos}`);
  if (!last.svg || last.rects < stream.segments) problems.push(`timeline missing: ${JSON.stringify(last)}`);
  if (last.live < 1) problems.push('no segment highlighted as listed');
  if (first.now === last.now) problems.push(`timeline cursor did not move (${last.now})`);
  if (problems.length) throw new Error(problems.join('; '));
  return { first, last };
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
let failed = false;
const server = await startServer();
try {
  const { first, last } = await watchPage(browser, server.base, 10, 'stream-page');
  console.log(`ok   stream page: media sequence ${first.msn} → ${last.msn}, video ${first.time.toFixed(1)} → ${last.time.toFixed(1)} s, ${last.rects} segments drawn; screenshots in ${SHOTS}`);
} catch (e) {
  failed = true;
  console.log(`FAIL stream page: ${e.message}`);
} finally {
  server.proc.kill('SIGKILL');
}
// Negative control: the server dies while the page is open.
const doomed = await startServer();
try {
  await watchPage(browser, doomed.base, 10, 'negative-control', () => setTimeout(() => doomed.proc.kill('SIGKILL'), 1000));
  failed = true;
  console.log('FAIL negative control: the page harness passed with the server killed');
} catch (e) {
  console.log(`ok   negative control: a killed server fails the page harness (${e.message.slice(0, 120)})`);
} finally {
  doomed.proc.kill('SIGKILL');
}
await browser.close();
process.exit(failed ? 1 : 0);
