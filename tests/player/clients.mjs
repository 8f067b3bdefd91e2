// More HLS clients: Shaka Player and video.js (VHS) in headless Chromium,
// GStreamer's playbin3 and playbin outside the browser. Each takes the
// stream (a directory of tests/player/static with video), the timestamp
// mode `ts` (`source` or `continuous`) and `killAt`.
import path from 'node:path';
import * as L from './lib.mjs';
import { PLAY_SECONDS } from './lib.mjs';

/**
 * What a browser player must do on the loop stream: live, nothing fatal,
 * the playhead moving with wall time (≥ 0.9×) for ≥ 40 s without jumps or
 * rebuffers over 250 ms (one of up to `switchStallMs` allowed right after a
 * forced switch), two loop points crossed, and the forced switch to the low
 * variant taken (reported as selected, its segments fetched, the top
 * variant's no longer).
 */
function judgePlayer({ info, events, samples, net, state, force, fatal, loops, switchStallMs = 0 }) {
  const fails = [];
  const LOW = info.main[0].height;
  const lowest = info.main[0].name;
  const top = info.main[info.main.length - 1].name;
  for (const e of fatal) fails.push(`fatal error: ${JSON.stringify(e)}`);
  if (!state.live) fails.push(`not detected as live (${JSON.stringify(state)})`);
  const firstPlaying = events.find((e) => e.kind === 'video:playing');
  let summary = '';
  if (!firstPlaying) fails.push('never playing');
  else {
    const { after, played, wall } = L.progress(samples, firstPlaying.t);
    if (wall < 40) fails.push(`played for ${wall.toFixed(1)} s of wall time (want ≥ 40)`);
    if (played < 0.9 * wall) fails.push(`currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s of wall time`);
    const allowed = (e) => force && e.t >= force.at - 500 && e.t <= force.at + 3000;
    // A forced switch that clears the buffer may seek back a frame or two.
    const jump = L.firstJump(after, (s, dt) => allowed(s) && dt >= -0.25 && dt <= 0);
    if (jump) fails.push(jump);
    // A rebuffer: from `waiting` to the next `playing`; up to 250 ms allowed.
    const waits = events.filter((e) => e.kind === 'video:waiting' && e.t > firstPlaying.t).map((w) => {
      const resumed = events.find((e) => e.kind === 'video:playing' && e.t >= w.t);
      return { t: w.t, ms: resumed ? resumed.t - w.t : Infinity, excused: allowed(w) };
    });
    const long = waits.filter((w) => !w.excused && w.ms > 250);
    if (long.length) fails.push(`${long.length} rebuffers ('waiting' to 'playing') over 250 ms after the first 'playing' (first ${long[0].ms} ms at ${long[0].t} ms)`);
    if (force) {
      const still = L.longestStill(samples, force.at - 500, force.at + 3000);
      if (still.ms > switchStallMs + 250) fails.push(`the playhead stood still ${still.ms} ms at the forced switch (allowed ${switchStallMs})`);
    }
    summary = `played ${played.toFixed(1)} s in ${wall.toFixed(1)} s, ${waits.length} rebuffers (longest ${waits.length ? Math.max(...waits.map((w) => w.ms)) : 0} ms)`;
  }
  if (loops === null || loops < 2) fails.push(`the playhead crossed ${loops} loop points (want ≥ 2)`);
  const segs = net.filter((n) => info.variantOf(n.url));
  const wraps = L.wrapsOf(info, segs.map((n) => n.url));
  if (wraps < 2) fails.push(`the segments fetched crossed ${wraps} loop points (want ≥ 2)`);
  for (const r of info.renditions) {
    const w = L.wrapsOf(info, segs.map((n) => n.url), [r]);
    if (w < 2) fails.push(`the segments of rendition ${r} fetched crossed ${w} loop points (want ≥ 2)`);
  }
  // Requests the player aborted itself (a switch) are not failures.
  const bad = segs.filter((n) => n.status !== 200 && n.failure !== 'net::ERR_ABORTED');
  if (bad.length) fails.push(`${bad.length} segment requests failed (first: ${bad[0].status} ${bad[0].url})`);
  if (!force) fails.push('no forced switch');
  else {
    if (state.selected !== LOW) fails.push(`after forcing the ${LOW}p variant the player reports ${state.selected}p`);
    const low = segs.filter((n) => n.t > force.at && info.variantOf(n.url) === lowest);
    const high = segs.filter((n) => n.t > force.at + 4000 && info.variantOf(n.url) === top);
    if (low.length < 3) fails.push(`${low.length} segments of the low variant fetched after the forced switch`);
    if (high.length) fails.push(`${high.length} segments of the top variant still fetched 4 s after the forced switch`);
  }
  summary += `, ${loops} loop points crossed, ${wraps} in the segments fetched, variants ${state.heights}p, switched ${force ? 'to ' + state.selected + 'p' : 'never'}`;
  return { fails, summary };
}

/** A browser player for PLAY_SECONDS with a forced switch to the low variant at 45 %. */
async function browserPlayer({ name, page, starter, force, stateFn, urlFor, judgeExtra, killAt, info }) {
  const LOW = info.main[0].height;
  return L.withBrowser(async ({ server, page: pages, browser }) => {
    const { src, anchor } = await urlFor(server);
    const tab = await L.openPlayer(browser, `${pages.base}/${page}`, starter, src);
    const { done } = await L.playFor(PLAY_SECONDS, {
      proc: server.proc,
      killAt,
      actions: [{ at: PLAY_SECONDS * 0.45, run: () => tab.evaluate(`${force}(${LOW})`).then(() => true) }],
    });
    const { events, samples } = await L.readBack(tab);
    const state = await tab.evaluate((f) => window[f](), stateFn);
    const forcedEvent = events.find((e) => e.kind === 'forced');
    const run = { info, events, samples, net: tab.net, state, force: forcedEvent ? { at: forcedEvent.t } : null, anchor };
    const { fails, summary } = judgeExtra(run);
    return { name, fails, events, net: tab.net, summary };
  });
}

/** Shaka Player: loop points from the playhead's program date-time. */
export function shaka({ stream = 'loop', ts = 'source', killAt = null } = {}) {
  const info = L.streamInfo(stream);
  return browserPlayer({
    info,
    name: `Shaka Player, ${stream}, ts=${ts}`,
    page: 'shaka.html',
    starter: 'startShaka',
    force: 'forceShakaVariant',
    stateFn: 'shakaState',
    killAt,
    urlFor: async (server) => {
      const startS = Math.floor(Date.now() / 1000);
      return { src: `${server.base}${L.srcOf(stream, ts, [`start=${startS}`])}`, anchor: await L.anchorOf(server.base, startS, `${stream}_${info.main[0].name}`) };
    },
    judgeExtra: (run) => {
      const fatal = run.events.filter((e) => e.kind === 'shaka:error' && e.severity === 2);
      const firstPlaying = run.events.find((e) => e.kind === 'video:playing');
      const dated = run.samples.filter((s) => s.pdt && firstPlaying && s.t >= firstPlaying.t);
      const loops = dated.length ? L.loopsCrossed(dated, run.anchor / 1000, info.loopSeconds) : null;
      // selectVariantTrack(t, true) clears the buffer: one short rebuffer is expected there.
      const verdict = judgePlayer({ ...run, fatal, loops, switchStallMs: 2000 });
      if (!run.events.some((e) => e.kind === 'shaka:loaded' && e.live)) verdict.fails.push('isLive() was false when loaded');
      // The date at the playhead runs with media time across loop points (the server's EXT-X-PROGRAM-DATE-TIME).
      const drift = dated.map((s) => s.pdt - s.time * 1000);
      const spread = drift.length ? Math.max(...drift) - Math.min(...drift) : Infinity;
      if (spread > 500) verdict.fails.push(`the playhead's date drifted ${spread.toFixed(0)} ms against currentTime`);
      const recoverable = run.events.filter((e) => e.kind === 'shaka:error' && e.severity !== 2).length;
      verdict.summary += `, date drift ${spread.toFixed(0)} ms, ${recoverable} recoverable errors`;
      return verdict;
    },
  });
}

/** video.js (VHS): loop points from the playhead segment's discontinuity sequence. */
export function videojs({ stream = 'loop', ts = 'source', killAt = null } = {}) {
  const info = L.streamInfo(stream);
  return browserPlayer({
    info,
    name: `video.js (VHS), ${stream}, ts=${ts}`,
    page: 'videojs.html',
    starter: 'startVideojs',
    force: 'forceVjsLevel',
    stateFn: 'vjsState',
    killAt,
    // liveTracker shows its live UI only with ≥ 20 s seekable beyond 3 × TD:
    // a 20-segment window, on a timeline old enough to fill it.
    urlFor: async (server) => ({ src: `${server.base}${L.srcOf(stream, ts, [`start=${Math.floor(Date.now() / 1000) - 60}`, 'window=20'])}` }),
    judgeExtra: (run) => {
      const fatal = run.events.filter((e) => e.kind === 'vjs:error');
      const firstPlaying = run.events.find((e) => e.kind === 'video:playing');
      // Discontinuities per loop: the loop point and the source's own.
      const loopsSeen = new Set(run.samples.filter((s) => s.dsn !== null && firstPlaying && s.t >= firstPlaying.t).map((s) => Math.floor(s.dsn / info.discontinuities)));
      const verdict = judgePlayer({ ...run, fatal, loops: loopsSeen.size ? loopsSeen.size - 1 : null });
      if (!run.state.infinite) verdict.fails.push('duration is not Infinity');
      if (!run.state.tracking) verdict.fails.push(`liveTracker not tracking (seekable ${run.state.seekable.toFixed(1)} s)`);
      verdict.summary += `, liveTracker tracking with ${run.state.seekable.toFixed(0)} s seekable`;
      return verdict;
    },
  });
}

/**
 * GStreamer playbin3 (hlsdemux2) or the legacy playbin (hlsdemux) on
 * `stream` in timestamp mode `ts`, into clock-synced fakesinks, its position
 * queried twice a second, the demuxer's bitrate capped just above the lowest
 * variant at 45 % (a forced switch down to it: hlsdemux2's max-bitrate, or
 * hlsdemux's connection-speed, which it scales by its bitrate-limit of 0.8),
 * through a recording proxy. A BUFFERING message after PLAYING longer than
 * 250 ms is a rebuffer (the legacy hlsdemux posts a short one from the new
 * multiqueue of each variant change).
 */
export async function gstreamer({ element = 'playbin3', stream = 'loop', ts = 'source', killAt = null } = {}) {
  const info = L.streamInfo(stream);
  const server = await L.startPseudolive();
  const proxy = await L.startRecordingProxy(server.base);
  const capAt = PLAY_SECONDS * 0.45;
  const want = element === 'playbin3' ? 'hlsdemux2' : 'hlsdemux';
  const cap = Math.ceil((info.main[0].bandwidth * 1.1) / (want === 'hlsdemux' ? 0.8 : 1));
  const lowest = info.main[0].name;
  try {
    const src = `${proxy.base}${L.srcOf(stream, ts, [`start=${Math.floor(Date.now() / 1000)}`])}`;
    const [out] = await Promise.all([
      L.run('timeout', ['-k', '5', String(PLAY_SECONDS + 30), '/usr/bin/python3', path.join(L.here, 'gst-play.py'), src, String(PLAY_SECONDS), String(capAt), String(cap), element]),
      L.playFor(killAt === null ? 0 : killAt + 1, { proc: server.proc, killAt }),
    ]);
    const events = out.stdout.split('\n').filter(Boolean).map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return { kind: 'stdout', line: l };
      }
    });
    events.push({ kind: 'exit', code: out.code, stderr: out.stderr.slice(-2000) });
    const fails = [];
    if (out.code !== 0) fails.push(`gst-play.py exited ${out.code}${out.code === 124 ? ' (timeout)' : ''}`);
    for (const e of events.filter((e) => e.kind === 'error')) fails.push(`error: ${e.message} ${e.debug}`);
    const demuxer = events.find((e) => e.kind === 'demuxer');
    if (!demuxer || demuxer.name !== want) fails.push(`demuxer ${demuxer && demuxer.name}, want ${want}`);
    const playing = events.find((e) => e.kind === 'state' && e.state === 'playing');
    const positions = events.filter((e) => e.kind === 'position' && e.pos !== null && playing && e.t >= playing.t);
    let summary = '';
    if (!playing) fails.push('never PLAYING');
    if (positions.length < 2) fails.push('no position while playing');
    else {
      const first = positions[0];
      const last = positions[positions.length - 1];
      const wall = (last.t - first.t) / 1000;
      const advanced = last.pos - first.pos;
      if (wall < 40) fails.push(`positions over ${wall.toFixed(1)} s of wall time (want ≥ 40)`);
      if (advanced < 0.9 * wall) fails.push(`position advanced ${advanced.toFixed(1)} s in ${wall.toFixed(1)} s of wall time`);
      for (let i = 1; i < positions.length; i++) {
        const dp = positions[i].pos - positions[i - 1].pos;
        const dw = (positions[i].t - positions[i - 1].t) / 1000;
        if (dp < -0.01 || dp > dw + 1) {
          fails.push(`position jumped by ${dp.toFixed(2)} s in ${dw.toFixed(2)} s at ${positions[i].t} ms`);
          break;
        }
      }
      summary = `position advanced ${advanced.toFixed(1)} s in ${wall.toFixed(1)} s`;
    }
    // Rebuffers: from a BUFFERING below 100 % to the next at 100 %.
    const edges = events.filter((e) => e.kind === 'buffering' && playing && e.t > playing.t);
    const rebuffers = edges.filter((e) => e.percent < 100).map((e) => {
      const end = edges.find((x) => x.t >= e.t && x.percent === 100);
      return { at: e.t, ms: end ? end.t - e.t : Infinity };
    });
    const long = rebuffers.filter((r) => r.ms > 250);
    if (long.length) fails.push(`${long.length} rebuffers over 250 ms after PLAYING (first ${long[0].ms} ms at ${long[0].at} ms)`);
    // The proxy's clock started before gst-play.py's: compare on the proxy's.
    const segs = proxy.log.filter((n) => info.variantOf(n.url));
    const wraps = L.wrapsOf(info, segs.map((n) => n.url));
    if (wraps < 2) fails.push(`the segments fetched crossed ${wraps} loop points (want ≥ 2)`);
    for (const r of info.renditions) {
      const w = L.wrapsOf(info, segs.map((n) => n.url), [r]);
      if (w < 2) fails.push(`the segments of rendition ${r} fetched crossed ${w} loop points (want ≥ 2)`);
    }
    const bad = segs.filter((n) => n.status !== 200);
    if (bad.length) fails.push(`${bad.length} segment requests failed (first: ${bad[0].status} ${bad[0].url})`);
    const capped = events.find((e) => e.kind === 'capped');
    const isMain = (n) => info.main.some((v) => v.name === info.variantOf(n.url));
    if (!capped) fails.push('bitrate never capped');
    else {
      const capT = capAt * 1000;
      const low = segs.filter((n) => n.t > capT && info.variantOf(n.url) === lowest);
      const high = segs.filter((n) => n.t > capT + 4000 && isMain(n) && info.variantOf(n.url) !== lowest);
      if (low.length < 3) fails.push(`${low.length} segments of the lowest variant fetched after capping the bitrate`);
      if (high.length) fails.push(`${high.length} segments of other variants still fetched 4 s after capping (${high[0].url})`);
    }
    const order = segs.filter(isMain).map((n) => info.variantOf(n.url)).filter((v, i, all) => i === 0 || v !== all[i - 1]);
    summary += `, ${rebuffers.length} buffering messages after PLAYING (longest ${rebuffers.length ? Math.max(...rebuffers.map((r) => r.ms)) : 0} ms), ` +
      `${wraps} loop points crossed in the segments fetched, variants fetched ${order.join(' → ')}`;
    return { name: `GStreamer ${element} (${want}), ${stream}, ts=${ts}`, fails, events, net: proxy.log, summary };
  } finally {
    proxy.server.close();
    server.proc.kill();
  }
}
