// Real players against a running pseudolive: hls.js, Chromium's own HLS
// player, Shaka Player and video.js in headless Chromium, ffmpeg and
// GStreamer as HLS clients, hls.js through an nginx load balancer and cache
// in front of two replicas, and hls.js against injected faults. Negative
// controls check that each harness fails when the server stops mid-play.
// Independent scenarios run side by side (PLAYER_JOBS at once).
//
// Usage: node run.mjs [KEY...]   (default: all; `node run.mjs list` names them)
// Env: PSEUDOLIVE_BIN (default ../../target/release/pseudolive),
//      CHROMIUM (default /usr/bin/chromium), PLAY_SECONDS (default 50),
//      PLAYER_JOBS (scenarios at once, default 4).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as L from './lib.mjs';
import { PLAY_SECONDS, sleep } from './lib.mjs';
import { fault404, faultSlow, faultStale } from './faults.mjs';
import { ffmpegContinuous } from './continuous.mjs';
import { gstreamer, shaka, videojs } from './clients.mjs';

/** hls.js for PLAY_SECONDS with two forced switches; `killAt` (s) kills the server then. */
async function hlsjs({ killAt = null, src = '/loop.m3u8', name = 'hls.js', maxRebufferMs = 0 } = {}) {
  return L.withBrowser(async ({ server, page, browser }) => {
    const tab = await L.openPlayer(browser, page.url, 'startHls', `${server.base}${src}`);
    const forceNext = () => tab.evaluate(() => {
      const next = (window.hls.currentLevel + 1) % window.hls.levels.length;
      window.hls.nextLevel = next;
      return next;
    });
    const { done } = await L.playFor(PLAY_SECONDS, {
      proc: server.proc,
      killAt,
      actions: [{ at: PLAY_SECONDS * 0.35, run: forceNext }, { at: PLAY_SECONDS * 0.65, run: forceNext }],
    });
    const switches = done.map((d) => ({ target: d.value, at: d.at }));
    const { events, samples } = await L.readBack(tab);
    const fails = L.judgeHls(events, samples, { allowWaiting: maxRebufferMs > 0 });
    if (maxRebufferMs > 0) {
      // Short rebuffers are allowed (a gap skipped at a loop point), long ones not.
      const firstPlaying = events.find((e) => e.kind === 'video:playing');
      for (const w of events.filter((e) => e.kind === 'video:waiting' && firstPlaying && e.t > firstPlaying.t)) {
        const resumed = events.find((e) => e.kind === 'video:playing' && e.t >= w.t);
        const took = resumed ? resumed.t - w.t : Infinity;
        if (took > maxRebufferMs) fails.push(`rebuffered ${took} ms at ${w.t} ms (allowed ${maxRebufferMs})`);
      }
    }
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
    return { name, fails, events, net: tab.net, summary };
  });
}

/** Chromium's built-in HLS player, no hls.js. */
async function native({ src = '/loop.m3u8', name = 'Chromium native HLS' } = {}) {
  return L.withBrowser(async ({ server, page, browser }) => {
    const tab = await L.openPlayer(browser, page.url, 'startNative', `${server.base}${src}`);
    await sleep(Math.min(PLAY_SECONDS, 35) * 1000);
    const { events, samples } = await L.readBack(tab);
    const fails = [];
    const can = events.find((e) => e.kind === 'native:canPlayType');
    if (!can || can.answer === '') fails.push(`Chromium reports no native HLS support (canPlayType = ${JSON.stringify(can && can.answer)})`);
    const firstPlaying = events.find((e) => e.kind === 'video:playing');
    if (!firstPlaying) fails.push('never playing');
    const err = events.find((e) => e.kind === 'video:error');
    if (err) fails.push(`media error code ${err.code}`);
    const { played, wall } = L.progress(samples, firstPlaying ? firstPlaying.t : Infinity);
    if (wall < 25) fails.push(`played for only ${wall.toFixed(1)} s of wall time`);
    if (played < 0.9 * wall) fails.push(`currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s`);
    const summary = `canPlayType ${JSON.stringify(can && can.answer)}, played ${played.toFixed(1)} s in ${wall.toFixed(1)} s`;
    return { name, fails, events, summary };
  });
}

/** ffmpeg as a client of one variant: decoded time must reach 30 s. */
async function ffmpeg() {
  const { proc, base } = await L.startPseudolive();
  const fails = [];
  let events = [];
  let summary = '';
  try {
    const out = await L.run('timeout', ['-k', '5', '75', 'ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'warning',
      '-m3u8_hold_counters', '5', '-i', `${base}/loop_mid.m3u8`, '-t', '30', '-f', 'null', '-', '-progress', 'pipe:1']);
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

/** hls.js through nginx while one replica is killed and restarted. */
async function cdn() {
  const epoch = ['--epoch', '2026-01-01T00:00:00Z'];
  let a = await L.startPseudolive(epoch);
  const b = await L.startPseudolive(epoch);
  const ng = await L.startNginx([a.port, b.port]);
  const page = await L.startPageServer();
  const browser = await L.launch();
  const fails = [];
  let events = [];
  let summary = '';
  try {
    const tab = await L.openPlayer(browser, page.url, 'startHls', `${ng.base}/loop.m3u8`);
    // A second viewer of the same stream: its requests are what the cache absorbs.
    await L.openPlayer(browser, page.url, 'startHls', `${ng.base}/loop.m3u8`);
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
        a = await L.startPseudolive(epoch, a.port);
        restarted = true;
      }
    }
    const back = await L.readBack(tab);
    events = back.events;
    fails.push(...L.judgeHls(events, back.samples));
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


/** `killed(harness)`: the harness with the server killed a third of the way in; it must fail. */
function killed(harness, seconds, label) {
  return async () => {
    const r = await harness({ killAt: seconds / 3 });
    const noticed = r.fails.length > 0;
    return {
      name: `negative control: ${label || r.name}, server killed at ${(seconds / 3).toFixed(0)} s, must fail`,
      fails: noticed ? [] : ['the harness passed a server that stopped'],
      events: r.events,
      summary: noticed ? `caught: ${r.fails.slice(0, 3).join('; ')}` : '',
    };
  };
}

// Every scenario: key, what runs, and its rough wall time (longest first in the queue).
const scenarios = [
  { key: 'hlsjs', seconds: PLAY_SECONDS, run: () => hlsjs() },
  { key: 'native', seconds: 35, run: () => native() },
  // fMP4 (tests/player/static/loopf, a 10 s loop of two variants). hls.js
  // meets a ~60 ms hole at each loop point (ffmpeg's AAC priming in fMP4,
  // passed through as it is) and skips it: rebuffers up to 250 ms allowed.
  { key: 'hlsjs-fmp4', seconds: PLAY_SECONDS, run: () => hlsjs({ src: '/loopf.m3u8', name: 'hls.js, fMP4', maxRebufferMs: 250 }) },
  { key: 'native-fmp4', seconds: 35, run: () => native({ src: '/loopf.m3u8', name: 'Chromium native HLS, fMP4' }) },
  { key: 'ffmpeg', seconds: 30, run: ffmpeg },
  { key: 'cdn', seconds: PLAY_SECONDS, run: cdn },
  { key: 'negative', seconds: PLAY_SECONDS, run: killed(hlsjs, PLAY_SECONDS, 'hls.js') },
  { key: 'fault-404', seconds: 46, run: () => fault404() },
  { key: 'fault-404-killed', seconds: 46, run: killed(fault404, 46) },
  { key: 'fault-stale', seconds: 46, run: () => faultStale() },
  { key: 'fault-stale-killed', seconds: 46, run: killed(faultStale, 46) },
  { key: 'fault-slow', seconds: 30, run: () => faultSlow() },
  { key: 'fault-slow-killed', seconds: 30, run: killed(faultSlow, 30) },
  { key: 'continuous-ffmpeg', seconds: 60, run: () => ffmpegContinuous() },
  { key: 'continuous-ffmpeg-killed', seconds: 60, run: killed(ffmpegContinuous, 36) },
  { key: 'shaka', seconds: PLAY_SECONDS, run: () => shaka() },
  { key: 'shaka-killed', seconds: PLAY_SECONDS, run: killed(shaka, PLAY_SECONDS) },
  { key: 'videojs', seconds: PLAY_SECONDS, run: () => videojs() },
  { key: 'videojs-killed', seconds: PLAY_SECONDS, run: killed(videojs, PLAY_SECONDS) },
  { key: 'gstreamer', seconds: PLAY_SECONDS, run: () => gstreamer() },
  { key: 'gstreamer-killed', seconds: PLAY_SECONDS, run: killed(gstreamer, PLAY_SECONDS) },
  { key: 'continuous-hlsjs', seconds: PLAY_SECONDS, run: () => hlsjs({ src: '/ts=continuous/loop.m3u8', name: 'hls.js, ts=continuous' }) },
];

/** Runs `jobs` with at most `limit` at once; `onDone` sees each result as it comes. */
async function pool(jobs, limit, onDone) {
  const queue = [...jobs];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) {
      const job = queue.shift();
      const t = Date.now();
      let r;
      try {
        r = await job.run();
      } catch (e) {
        r = { name: job.key, fails: [`harness error: ${e.stack || e}`], events: [] };
      }
      r.key = job.key;
      r.seconds = ((Date.now() - t) / 1000).toFixed(0);
      onDone(r);
    }
  });
  await Promise.all(workers);
}

async function main() {
  const which = process.argv.slice(2);
  if (which.includes('list')) {
    for (const s of scenarios) console.log(s.key);
    return;
  }
  const unknown = which.filter((k) => !scenarios.some((s) => s.key === k));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; \`node run.mjs list\` names them`);
  const jobs = scenarios.filter((s) => which.length === 0 || which.includes(s.key)).sort((a, b) => b.seconds - a.seconds);
  const limit = Number(process.env.PLAYER_JOBS || 4);
  const t0 = Date.now();
  const results = [];
  await pool(jobs, limit, (r) => {
    results.push(r);
    console.log(`${r.fails.length ? 'FAIL' : 'ok  '} ${r.name} (${r.seconds} s)${r.summary ? ': ' + r.summary : ''}${r.fails.map((f) => '\n     - ' + f).join('')}`);
    if (r.fails.length) L.printLog(r.name, r.events || [], r.net || []);
  });
  const failed = results.filter((r) => r.fails.length).length;
  console.log(`${results.length - failed} passed, ${failed} failed, ${((Date.now() - t0) / 1000).toFixed(0)} s with ${limit} at once`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
