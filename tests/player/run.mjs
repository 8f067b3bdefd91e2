// Real players against a running pseudolive: hls.js, Chromium's own HLS
// player, Shaka Player and video.js in headless Chromium, ffmpeg, GStreamer
// (playbin3 and the legacy playbin), VLC, mpv and Streamlink as HLS
// clients, hls.js through an nginx load balancer and cache in front of two
// replicas, and hls.js against injected faults; the clients on the four
// test streams (tests/player/static: muxed TS with a source discontinuity,
// audio only, demuxed audio, fMP4) in both timestamp modes. Negative
// controls check that each harness fails when the server stops mid-play;
// a client that fails in one mode is run there as a control that must fail.
// Independent scenarios run side by side (PLAYER_JOBS at once).
//
// Usage: node run.mjs [KEY...]   (default: the suite; `node run.mjs list` names them)
//        node run.mjs matrix [--add]   every client on every stream in both modes (the
//                                survey; --add counts its runs with the last survey's)
//        node run.mjs readme     write README.md's client table from the last survey
//                                (target/player-matrix-survey.json; `matrix` does it too)
// A run of the whole suite writes target/player-matrix.{json,md} and fails
// when README.md's table disagrees with it (versions, or a cell it ran).
// Env: PSEUDOLIVE_BIN (default ../../target/release/pseudolive),
//      CHROMIUM (default /usr/bin/chromium), PLAY_SECONDS (default 50),
//      PLAYER_JOBS (scenarios at once, default 4; a client outside the
//      browser counts as half a scenario).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as L from './lib.mjs';
import { PLAY_SECONDS, sleep } from './lib.mjs';
import { fault404, faultSlow, faultStale } from './faults.mjs';
import { ffmpegContinuous } from './continuous.mjs';
import { gstreamer, shaka, videojs } from './clients.mjs';
import { mpv, streamlink, vlc } from './matrix.mjs';
import { LL_SECONDS, hlsjsLowLatency, shakaLowLatency } from './lowlatency.mjs';
import { RESULTS, clientVersions, matrixMarkdown, readme, readmeDisagrees } from './table.mjs';

/** hls.js for PLAY_SECONDS with two forced switches; `killAt` (s) kills the server then. */
async function hlsjs({ killAt = null, src = L.srcOf('loop', 'source'), name = 'hls.js', maxRebufferMs = 0 } = {}) {
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
async function native({ src = L.srcOf('loop', 'source'), name = 'Chromium native HLS' } = {}) {
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

// The client matrix: each client, the streams it runs on, how it is
// judged, and `suite`: stream:ts → what the suite expects there (`pass`;
// `fail`: run as a control that must fail). `node run.mjs matrix` runs every
// stream in both modes whatever the expectation.
const CLIENTS = {
  hlsjs: {
    label: 'hls.js in headless Chromium',
    version: [['hls.js', 'hls.js'], ['Chromium', 'chromium']],
    browser: true,
    streams: ['loop', 'loopa', 'loopd', 'loopf'],
    checks: 'live, no fatal or parsing error, no `waiting` (fMP4: none over 250 ms), `currentTime` ≥ 0.9 × wall time without jumps, ≥ 3 discontinuity counters played, two forced switches (`nextLevel`) taken',
    // hls.js skips a ~60 ms hole at each fMP4 loop point (ffmpeg's AAC priming): rebuffers up to 250 ms allowed there.
    run: ({ stream, ts, killAt }) => hlsjs({ src: L.srcOf(stream, ts), name: `hls.js, ${stream}, ts=${ts}`, maxRebufferMs: stream === 'loopf' ? 250 : 0, killAt }),
  },
  shaka: {
    label: 'Shaka Player in headless Chromium',
    version: [['shaka-player', 'shaka-player']],
    browser: true,
    streams: ['loop', 'loopd', 'loopf'],
    checks: '`isLive()`, no critical error, ≥ 40 s at ≥ 0.9 × wall time without jumps or rebuffers (`waiting` to `playing`) over 250 ms (≤ 2 s at the forced switch, which clears the buffer), two loop points by the playhead\'s program date-time (within 0.5 s of `currentTime`), `selectVariantTrack` to the lowest variant taken',
    run: shaka,
  },
  videojs: {
    label: 'video.js (VHS) in headless Chromium',
    version: [['video.js', 'video.js'], ['VHS', 'vhs']],
    browser: true,
    streams: ['loop', 'loopd', 'loopf'],
    checks: 'duration `Infinity` and the live tracker on (`window=20`), no error, ≥ 40 s at ≥ 0.9 × wall time without jumps or rebuffers over 250 ms, two loop points by the playhead segment\'s discontinuity sequence, a quality-level switch to the lowest variant taken',
    run: videojs,
  },
  playbin3: {
    label: 'GStreamer `playbin3` (hlsdemux2)',
    version: [['GStreamer', 'gstreamer']],
    streams: ['loop', 'loopa', 'loopd', 'loopf'],
    checks: 'clean exit, position (fakesinks synced to the clock) ≥ 0.9 × wall time for ≥ 40 s without jumps, no BUFFERING over 250 ms, two loop points in the segments fetched, `max-bitrate` capped: the lowest variant only 4 s later',
    run: (o) => gstreamer({ ...o, element: 'playbin3' }),
  },
  playbin: {
    label: 'GStreamer `playbin` (legacy hlsdemux)',
    version: [['GStreamer', 'gstreamer']],
    streams: ['loop', 'loopa', 'loopd', 'loopf'],
    checks: 'as `playbin3`, the switch by `connection-speed`',
    run: (o) => gstreamer({ ...o, element: 'playbin' }),
  },
  vlc: {
    label: 'VLC (as `nobody`, rc interface, dummy outputs)',
    version: [['VLC', 'vlc']],
    streams: ['loop', 'loopa', 'loopd', 'loopf'],
    checks: 'live (playlist reloads), no error line, played audio ≥ 0.9 × wall time for ≥ 40 s, never still over 0.75 s (its counters move in 0.36 s steps), `get_time` never back with `ts=continuous`, two loop points in its own segment log; no command forces a variant: its own switches are logged',
    run: vlc,
  },
  mpv: {
    label: 'mpv (null outputs, JSON IPC)',
    version: [['mpv', 'mpv']],
    streams: ['loop', 'loopa', 'loopd', 'loopf'],
    checks: 'live (not seekable), no error, `playback-time` ≥ 0.9 × wall time for ≥ 40 s, never still over 0.5 s, no `paused-for-cache` over 250 ms, no jump with `ts=continuous`, two loop points in its own request log, a switch of `vid`/`aid` to the lowest variant\'s program taken (the ≤ 8 s it takes to restart at the live edge left out)',
    run: mpv,
  },
  streamlink: {
    label: 'Streamlink recording (`best`, `-o`)',
    version: [['Streamlink', 'streamlink'], ['ffprobe', 'ffmpeg']],
    streams: ['loop', 'loopa', 'loopd', 'loopf'],
    checks: 'live, no error or warning but discontinuities, media sequence written without a gap across ≥ 2 loop points in every substream; ffprobe: decode timestamps never going back (audio by ≤ 25 ms counted, not failed), every stream lasting as long as the segments written (± 0.5 s) and ≥ 0.9 × the wall time recorded',
    run: streamlink,
  },
};

// What the suite runs of the matrix, from the survey (`node run.mjs
// matrix`, whose results README.md's table shows): every client on every
// stream kind it plays, on `loop` in both modes, elsewhere in a mode where
// it passes reliably (or, where it passes in neither, as a control that
// must fail). Left out: Shaka on `loopd` and `loopf`, video.js on `loopd`,
// which pass only in some runs (see README.md).
const SUITE = {
  hlsjs: { 'loop:source': 'pass', 'loop:continuous': 'pass', 'loopa:source': 'pass', 'loopd:source': 'pass', 'loopf:source': 'pass' },
  shaka: { 'loop:source': 'pass', 'loop:continuous': 'pass' },
  videojs: { 'loop:source': 'pass', 'loop:continuous': 'pass', 'loopf:source': 'pass' },
  playbin3: { 'loop:source': 'pass', 'loop:continuous': 'pass', 'loopa:source': 'pass', 'loopd:source': 'pass', 'loopf:source': 'fail', 'loopf:continuous': 'pass' },
  playbin: { 'loop:source': 'pass', 'loop:continuous': 'pass', 'loopa:source': 'pass', 'loopd:continuous': 'pass', 'loopf:continuous': 'pass' },
  vlc: { 'loop:source': 'pass', 'loop:continuous': 'pass', 'loopa:source': 'pass', 'loopd:source': 'fail', 'loopf:source': 'fail' },
  mpv: { 'loop:source': 'fail', 'loop:continuous': 'pass', 'loopa:source': 'pass', 'loopd:source': 'fail', 'loopf:continuous': 'fail' },
  streamlink: { 'loop:source': 'fail', 'loop:continuous': 'pass', 'loopa:continuous': 'pass', 'loopd:continuous': 'pass', 'loopf:continuous': 'pass' },
};

/** A matrix scenario: `expect` pass, or fail (a control: the scenario passes when the client fails). */
function matrixScenario(client, stream, ts, expect) {
  const c = CLIENTS[client];
  return {
    key: `${client}:${stream}:${ts}`,
    seconds: PLAY_SECONDS + 10,
    weight: c.browser ? 1 : 0.5,
    matrix: { client, stream, ts, expect },
    run: async () => {
      const r = await c.run({ stream, ts });
      r.clientPassed = r.fails.length === 0;
      if (expect === 'fail') {
        return {
          ...r,
          name: `${r.name}: fails, as measured (control)`,
          fails: r.clientPassed ? [`passed: it now plays in this mode; make it 'pass' in SUITE (run.mjs) and regenerate README's table`] : [],
          summary: `failed as expected: ${r.fails.slice(0, 3).join('; ')}`,
        };
      }
      return r;
    },
  };
}

function matrixScenarios(all) {
  const out = [];
  for (const [client, c] of Object.entries(CLIENTS)) {
    for (const stream of c.streams) {
      for (const ts of ['source', 'continuous']) {
        const expect = SUITE[client][`${stream}:${ts}`];
        if (expect || all) out.push(matrixScenario(client, stream, ts, all ? 'measure' : expect));
      }
    }
  }
  return out;
}

// Every other scenario: key, what runs, and its rough wall time (longest first in the queue).
const others = [
  { key: 'native', seconds: 35, run: () => native() },
  { key: 'native-fmp4', seconds: 35, run: () => native({ src: L.srcOf('loopf', 'source'), name: 'Chromium native HLS, fMP4' }) },
  { key: 'ffmpeg', seconds: 30, weight: 0.5, run: ffmpeg },
  { key: 'cdn', seconds: PLAY_SECONDS, run: cdn },
  { key: 'negative', seconds: PLAY_SECONDS, run: killed(hlsjs, PLAY_SECONDS, 'hls.js') },
  { key: 'fault-404', seconds: 46, run: () => fault404() },
  { key: 'fault-404-killed', seconds: 46, run: killed(fault404, 46) },
  { key: 'fault-stale', seconds: 46, run: () => faultStale() },
  { key: 'fault-stale-killed', seconds: 46, run: killed(faultStale, 46) },
  { key: 'fault-slow', seconds: 30, run: () => faultSlow() },
  { key: 'fault-slow-killed', seconds: 30, run: killed(faultSlow, 30) },
  { key: 'continuous-ffmpeg', seconds: 60, weight: 0.5, run: () => ffmpegContinuous() },
  { key: 'continuous-ffmpeg-demuxed', seconds: 60, weight: 0.5, run: () => ffmpegContinuous({ stream: 'loopd' }) },
  { key: 'continuous-ffmpeg-killed', seconds: 60, weight: 0.5, run: killed(ffmpegContinuous, 36) },
  { key: 'shaka-killed', seconds: PLAY_SECONDS, run: killed(shaka, PLAY_SECONDS) },
  { key: 'videojs-killed', seconds: PLAY_SECONDS, run: killed(videojs, PLAY_SECONDS) },
  { key: 'playbin3-killed', seconds: PLAY_SECONDS, weight: 0.5, run: killed((o) => gstreamer({ ...o, element: 'playbin3' }), PLAY_SECONDS) },
  { key: 'playbin-killed', seconds: PLAY_SECONDS, weight: 0.5, run: killed((o) => gstreamer({ ...o, element: 'playbin' }), PLAY_SECONDS) },
  { key: 'vlc-killed', seconds: PLAY_SECONDS, weight: 0.5, run: killed(vlc, PLAY_SECONDS) },
  { key: 'mpv-killed', seconds: PLAY_SECONDS, weight: 0.5, run: killed((o) => mpv({ ...o, ts: 'continuous' }), PLAY_SECONDS) },
  { key: 'streamlink-killed', seconds: PLAY_SECONDS, weight: 0.5, run: killed((o) => streamlink({ ...o, ts: 'continuous' }), PLAY_SECONDS) },
  // Low-latency HLS: hls.js on TS and fMP4 parts (each with the same player
  // on the regular playlist as the control of its latency), Shaka on fMP4.
  { key: 'll-hlsjs', seconds: LL_SECONDS, weight: 2, run: () => hlsjsLowLatency({ stream: 'loop' }) },
  { key: 'll-hlsjs-fmp4', seconds: LL_SECONDS, run: () => hlsjsLowLatency({ stream: 'loopf', control: false }) },
  { key: 'll-shaka-fmp4', seconds: LL_SECONDS, run: () => shakaLowLatency({ stream: 'loopf' }) },
  { key: 'll-hlsjs-killed', seconds: LL_SECONDS, run: killed((o) => hlsjsLowLatency({ ...o, control: false }), LL_SECONDS, 'hls.js lowLatencyMode') },
];

/**
 * Runs `jobs` (longest first) with running weights adding up to at most
 * `limit` (a browser scenario weighs 1, a client outside it 0.5); `onDone`
 * sees each result as it comes.
 */
async function pool(jobs, limit, onDone) {
  const queue = [...jobs];
  let load = 0;
  const running = new Set();
  const start = (job) => {
    const w = job.weight || 1;
    load += w;
    const t = Date.now();
    const p = (async () => {
      let r;
      try {
        r = await job.run();
      } catch (e) {
        r = { name: job.key, fails: [`harness error: ${e.stack || e}`], events: [] };
      }
      r.key = job.key;
      r.matrix = job.matrix;
      r.seconds = ((Date.now() - t) / 1000).toFixed(0);
      load -= w;
      running.delete(p);
      onDone(r);
    })();
    running.add(p);
  };
  while (queue.length || running.size) {
    const i = queue.findIndex((j) => load + (j.weight || 1) <= limit + 1e-9);
    if (queue.length && (i >= 0 || running.size === 0)) start(queue.splice(Math.max(i, 0), 1)[0]);
    else await Promise.race(running);
  }
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === 'readme') {
    const { same } = readme(false);
    console.log(same ? 'README.md client table unchanged' : 'README.md client table written');
    return;
  }
  const survey = args[0] === 'matrix';
  const scenarios = survey ? matrixScenarios(true) : [...matrixScenarios(false), ...others];
  const which = survey ? [] : args;
  if (which.includes('list')) {
    for (const s of scenarios) console.log(s.key);
    return;
  }
  // Any client:stream:ts of the matrix can be named, in the suite or not.
  for (const k of which) {
    const m = /^(\w+):(\w+):(source|continuous)$/.exec(k);
    if (m && CLIENTS[m[1]] && CLIENTS[m[1]].streams.includes(m[2]) && !scenarios.some((s) => s.key === k)) scenarios.push(matrixScenario(m[1], m[2], m[3], 'measure'));
  }
  const unknown = which.filter((k) => !scenarios.some((s) => s.key === k));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; \`node run.mjs list\` names them`);
  const jobs = scenarios.filter((s) => which.length === 0 || which.includes(s.key)).sort((a, b) => b.seconds - a.seconds);
  const limit = Number(process.env.PLAYER_JOBS || 4);
  const t0 = Date.now();
  const results = [];
  const versions = clientVersions();
  await pool(jobs, limit, (r) => {
    results.push(r);
    console.log(`${r.fails.length ? 'FAIL' : 'ok  '} ${r.name} (${r.seconds} s)${r.summary ? ': ' + r.summary : ''}${r.fails.map((f) => '\n     - ' + f).join('')}`);
    if (r.fails.length && !survey) L.printLog(r.name, r.events || [], r.net || []);
  });
  const bad = results.filter((r) => r.fails.length).length;
  let readmeBad = 0;
  const wall = ((Date.now() - t0) / 1000).toFixed(0);
  // The matrix's results: every run of the whole suite (or survey) writes them.
  if (which.length === 0) {
    const out = {
      date: new Date().toISOString(),
      wallSeconds: Number(wall),
      jobs: limit,
      versions: await versions,
      clients: Object.fromEntries(Object.entries(CLIENTS).map(([id, c]) => [id, { label: c.label, version: c.version, checks: c.checks }])),
      matrix: results.filter((r) => r.matrix).map((r) => ({ ...r.matrix, key: r.key, ok: r.fails.length === 0, runs: [{ passed: r.clientPassed, summary: r.summary, fails: r.fails }] }))
        .sort((a, b) => a.key.localeCompare(b.key)),
    };
    // `matrix --add`: this survey's runs join the last survey's (same versions), so the table counts every run.
    if (survey && args.includes('--add') && existsSync(RESULTS.replace(/\.json$/, '-survey.json'))) {
      const before = JSON.parse(readFileSync(RESULTS.replace(/\.json$/, '-survey.json'), 'utf8'));
      if (JSON.stringify(before.versions) !== JSON.stringify(out.versions)) throw new Error('the last survey ran other versions: run `node run.mjs matrix` without --add');
      for (const m of out.matrix) {
        const old = before.matrix.find((x) => x.key === m.key);
        if (old) m.runs = [...(old.runs || [{ passed: old.clientPassed, summary: old.summary, fails: old.fails }]), ...m.runs];
      }
      out.surveys = (before.surveys || [before.date]).concat(out.date);
    }
    mkdirSync(path.dirname(RESULTS), { recursive: true });
    const file = survey ? RESULTS.replace(/\.json$/, '-survey.json') : RESULTS;
    writeFileSync(file, JSON.stringify(out, null, 1));
    const detail = out.matrix.flatMap((m) => m.runs.map((r, i) => `| ${m.client} | ${m.stream} | ${m.ts} | ${i + 1} | ${r.passed ? 'passes' : 'fails'} | ${(r.passed ? r.summary : r.fails.join('; ')).replace(/\|/g, '/')} |`));
    writeFileSync(file.replace(/\.json$/, '.md'), [matrixMarkdown(out), '', '| client | stream | ts | run | result | detail |', '|---|---|---|---|---|---|', ...detail, ''].join('\n'));
    console.log(`matrix results: ${file} and ${file.replace(/\.json$/, '.md')}`);
    if (survey) {
      readme(false, file);
      console.log('README.md client table written from the survey');
    } else if (bad === 0) {
      const disagree = readmeDisagrees(out);
      if (disagree.length) {
        console.log(`FAIL README.md's client table disagrees with this run (measure again and regenerate: node tests/player/run.mjs matrix):\n${disagree.map((d) => '     - ' + d).join('\n')}`);
        readmeBad = 1;
      } else console.log('ok   README.md client table agrees with this run (versions, and every cell the suite ran)');
    }
  }
  console.log(`${results.length - bad} passed, ${bad + readmeBad} failed, ${wall} s with ${limit} at once`);
  process.exit(bad + readmeBad ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
