// hls.js against pseudolive's per-URL faults. Each scenario plays the
// faulted URL and, in a second tab of the same browser, a control URL
// without the fault; the scenario's judge must pass the first and fail the
// second (the harness can tell the fault apart from a clean stream).
import * as L from './lib.mjs';

const of = (events, kind) => events.filter((e) => e.kind === kind);

/** What every fault scenario asks of hls.js: live, nothing fatal, playing. */
function basics(events) {
  const fails = [];
  const loaded = of(events, 'LEVEL_LOADED');
  if (loaded.length === 0) fails.push('no LEVEL_LOADED');
  if (loaded.some((e) => !e.live)) fails.push('a LEVEL_LOADED was not live');
  for (const e of of(events, 'ERROR')) if (e.fatal) fails.push(`fatal error ${e.details}: ${e.reason}`);
  if (!of(events, 'video:playing').length) fails.push('never playing');
  return fails;
}

const segmentG = (url) => {
  const m = /\/g=(\d+)\/loop\/[^/]+\/[^/]+\.ts$/.exec(url);
  return m ? Number(m[1]) : null;
};

/**
 * `fault=404,every=N`: hls.js meets the 404s (as non-fatal fragLoadErrors
 * and as responses), plays past the missing segments and keeps playing
 * across loop points for at least 40 s. The server must answer 404 exactly
 * for the segments numbered by a multiple of N.
 */
export function judge404({ events, samples, net }, every) {
  const fails = basics(events);
  const errors404 = of(events, 'ERROR').filter((e) => e.details === 'fragLoadError' && e.code === 404 && !e.fatal);
  const segs = net.filter((n) => /\.ts$/.test(n.url));
  const responses404 = segs.filter((n) => n.status === 404);
  if (errors404.length < 2) fails.push(`hls.js reported ${errors404.length} non-fatal fragLoadError 404s (want ≥ 2)`);
  if (responses404.length < 2) fails.push(`${responses404.length} segment requests answered 404 (want ≥ 2)`);
  for (const n of segs) {
    const g = segmentG(n.url);
    if (g === null) continue;
    const want = g % every === 0 ? 404 : 200;
    if (n.status !== want) {
      fails.push(`server answered ${n.url} with ${n.status}, want ${want}`);
      break;
    }
  }
  const missing = [...new Set(errors404.map((e) => e.sn))];
  const changed = of(events, 'FRAG_CHANGED').map((e) => e.sn);
  const passed = missing.filter((sn) => changed.some((c) => c > sn));
  if (passed.length < 2) fails.push(`played past ${passed.length} missing segments (want ≥ 2)`);
  const firstPlaying = of(events, 'video:playing')[0];
  if (firstPlaying) {
    const { after, played, wall } = L.progress(samples, firstPlaying.t);
    if (wall < 40) fails.push(`played for ${wall.toFixed(1)} s of wall time (want ≥ 40)`);
    // Each missing segment costs a short stall, then hls.js skips its gap: overall near real time.
    if (played < 0.75 * wall) fails.push(`currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s of wall time`);
    const tail = L.progress(samples, samples.length ? samples[samples.length - 1].t - 8000 : 0);
    if (tail.played < 4) fails.push(`currentTime advanced ${tail.played.toFixed(1)} s in the last ${tail.wall.toFixed(1)} s`);
    const back = after.findIndex((s, i) => i > 0 && s.time < after[i - 1].time - 0.01);
    if (back > 0) fails.push(`currentTime went back at ${after[back].t} ms`);
  }
  const ccs = new Set(of(events, 'FRAG_CHANGED').map((e) => e.cc));
  if (ccs.size < 3) fails.push(`only ${ccs.size} discontinuity counters played: need two crossings`);
  return { fails, summary: `${errors404.length} fragLoadError 404s, ${responses404.length} 404 responses, played past ${passed.length} missing segments` };
}

/**
 * `fault=stale,cycle=S:A-B`: while the playlist is stale, hls.js reloads it
 * unchanged, runs out of buffer and stalls; after B it sees the playlist
 * move again and plays on in real time. `stale` holds the page times
 * (ms) of A and B and the newest segment of the window frozen at A.
 */
export function judgeStale({ events, samples }, stale) {
  const fails = basics(events);
  const { from, to, frozenEnd } = stale;
  const firstPlaying = of(events, 'video:playing')[0];
  if (firstPlaying && firstPlaying.t > from) fails.push(`first playing at ${firstPlaying.t} ms, after the stale interval began (${from} ms)`);
  const during = of(events, 'LEVEL_LOADED').filter((e) => e.t > from + 100 && e.t < to - 100);
  const unchanged = during.filter((e) => !e.updated);
  if (unchanged.length < 3) fails.push(`${unchanged.length} unchanged playlist reloads while stale (want ≥ 3)`);
  const moved = during.filter((e) => e.endSN > frozenEnd);
  if (moved.length) fails.push(`the playlist moved while stale: segment ${moved[0].endSN} listed at ${moved[0].t} ms (frozen at ${frozenEnd})`);
  const still = L.longestStill(samples, from, to + 2000);
  if (still.ms < 2000) fails.push(`the playhead never stood still for 2 s while stale (longest ${still.ms} ms)`);
  const stallEvents = events.filter((e) => e.t >= from && e.t <= to + 2000 &&
    (e.kind === 'video:waiting' || (e.kind === 'ERROR' && e.details === 'bufferStalledError')));
  if (!stallEvents.length) fails.push('no waiting event or bufferStalledError while stale');
  const movedAgain = of(events, 'LEVEL_LOADED').find((e) => e.t >= to && e.endSN > frozenEnd);
  if (!movedAgain) fails.push('the playlist never moved again after the stale interval');
  const resume = to + 3000;
  const { played, wall } = L.progress(samples, resume);
  if (wall < 10) fails.push(`only ${wall.toFixed(1)} s of play after the stale interval (want ≥ 10)`);
  if (played < 0.9 * wall) fails.push(`after the stale interval currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s`);
  const waits = of(events, 'video:waiting').filter((e) => e.t > resume);
  if (waits.length) fails.push(`'waiting' at ${waits[0].t} ms, after playback resumed`);
  const summary = `${unchanged.length} unchanged reloads while stale, playhead still for ${(still.ms / 1000).toFixed(1)} s, ` +
    `then ${played.toFixed(1)} s played in ${wall.toFixed(1)} s`;
  return { fails, summary };
}

/**
 * `fault=slow:KBPS,variant=<top>` with hls.js starting on the top level:
 * it loads from the top level, switches down and plays on.
 */
export function judgeSlow({ events, samples, net }, top) {
  const fails = basics(events);
  const firstLoaded = of(events, 'LEVEL_LOADED')[0];
  if (firstLoaded && firstLoaded.level !== top) fails.push(`started on level ${firstLoaded.level}, not the top level ${top}`);
  const down = of(events, 'LEVEL_SWITCHED').find((e) => e.level < top);
  if (!down) fails.push(`never switched below level ${top}`);
  else {
    const topRequest = net.find((n) => L.variantOf(n.url) === 'high' && n.t <= down.t);
    if (!topRequest) fails.push('no segment of the top level requested before the switch down');
    if (!of(events, 'FRAG_LOADED').some((e) => e.level < top && e.t >= down.t - 2000)) fails.push('no fragment of a lower level loaded');
  }
  const firstPlaying = of(events, 'video:playing')[0];
  if (firstPlaying) {
    const { played, wall } = L.progress(samples, firstPlaying.t);
    if (played < 0.9 * wall) fails.push(`currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s of wall time`);
  }
  const switches = of(events, 'LEVEL_SWITCHED').map((e) => e.level);
  return { fails, summary: `level switches ${switches.join('→') || 'none'}` };
}

/**
 * Plays `url` and `controlUrl` in two tabs of one browser for `seconds`,
 * then judges both with `judge(run, tabTimes)`. The scenario fails when the
 * faulted tab fails its judge or the control tab passes it.
 */
async function faultScenario({ name, seconds, killAt, url, controlUrl, config = {}, judge }) {
  return L.withBrowser(async ({ server, page, browser }) => {
    const ctx = await url(server);
    const tab = await L.openPlayer(browser, page.url, 'startHls', ctx.src, config);
    const control = await L.openPlayer(browser, page.url, 'startHls', ctx.controlSrc, config);
    await L.playFor(seconds, { proc: server.proc, killAt });
    const runs = [];
    for (const t of [tab, control]) runs.push({ ...(await L.readBack(t)), net: t.net, origin: t.origin });
    const verdict = judge(runs[0], ctx);
    const controlVerdict = judge(runs[1], ctx);
    const fails = [...verdict.fails];
    if (controlVerdict.fails.length === 0) fails.push(`the control (${ctx.controlSrc.replace(server.base, '')}) passed the same judge: the harness cannot tell the fault apart`);
    const summary = `${verdict.summary}; control failed as it must (${controlVerdict.fails[0] || '-'})`;
    return { name, fails, events: runs[0].events, net: runs[0].net, summary };
  });
}

export const fault404 = ({ killAt = null } = {}) => {
  const every = 7;
  return faultScenario({
    name: `hls.js, fault=404,every=${every}`,
    seconds: 46,
    killAt,
    url: async (server) => ({ src: `${server.base}/fault=404,every=${every}/loop.m3u8`, controlSrc: `${server.base}/loop.m3u8` }),
    judge: (run) => judge404(run, every),
  });
};

export const faultStale = ({ killAt = null } = {}) => {
  // A timeline starting now: its second 24 is about 12 s into the play
  // (the playlist of `start` is already a full window), after hls.js has
  // filled its buffer; the playlist stays frozen for 16 s.
  const [a, b] = [24, 40];
  let ctx = null;
  return faultScenario({
    name: `hls.js, fault=stale,cycle=60:${a}-${b}`,
    seconds: 46,
    killAt,
    url: async (server) => {
      const startS = Math.floor(Date.now() / 1000);
      const anchor = await L.anchorOf(server.base, startS);
      const frozen = await (await fetch(`${server.base}/start=${startS}/loop_high.m3u8?now=${anchor + a * 1000}`)).text();
      const msn = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(frozen)[1]);
      const frozenEnd = msn + frozen.split('\n').filter((l) => l.startsWith('#EXTINF')).length - 1;
      ctx = { anchor, frozenEnd, src: `${server.base}/start=${startS}/fault=stale,cycle=60:${a}-${b}/loop.m3u8`, controlSrc: `${server.base}/start=${startS}/loop.m3u8` };
      return ctx;
    },
    judge: (run) => judgeStale(run, { from: ctx.anchor + a * 1000 - run.origin, to: ctx.anchor + b * 1000 - run.origin, frozenEnd: ctx.frozenEnd }),
  });
};

export const faultSlow = ({ killAt = null } = {}) => {
  const kbps = 100;
  return faultScenario({
    name: `hls.js from the top level, fault=slow:${kbps},variant=high`,
    seconds: 30,
    killAt,
    config: { startLevel: 2 },
    url: async (server) => ({ src: `${server.base}/fault=slow:${kbps},variant=high/loop.m3u8`, controlSrc: `${server.base}/loop.m3u8` }),
    judge: (run) => judgeSlow(run, 2),
  });
};
