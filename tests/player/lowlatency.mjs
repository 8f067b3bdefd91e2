// Low-latency HLS (ll=<part target>): hls.js in lowLatencyMode plays the
// parts near the live edge, across loop points, at a latency close to
// PART-HOLD-BACK; the same player on the regular playlist is the control
// and must sit several target durations behind.
import * as L from './lib.mjs';

export const LL_SECONDS = 64;
const PART_TARGET = 0.5;
const PART_HOLD_BACK = 3 * PART_TARGET;

/** hls.js on `src` for `seconds`, sampling hls.latency and the wall-clock latency of the playhead every second. */
async function hlsjsLatency(browser, page, base, src, { seconds, lowLatencyMode, proc = null, killAt = null }) {
  // Playing up to 1.5× speed lets hls.js catch up with its target latency after a slow start.
  const tab = await L.openPlayer(browser, page.url, 'startHls', `${base}${src}`, { lowLatencyMode, maxLiveSyncPlaybackRate: 1.5 });
  const lat = [];
  const timer = setInterval(async () => {
    try {
      lat.push(await tab.evaluate(() => ({
        t: window.ms(),
        latency: window.hls.latency,
        target: window.hls.targetLatency,
        wall: window.hls.playingDate ? Date.now() - window.hls.playingDate.getTime() : null,
      })));
    } catch {}
  }, 1000);
  try {
    await L.playFor(seconds, { proc, killAt });
  } finally {
    clearInterval(timer);
  }
  const { events, samples } = await L.readBack(tab);
  await tab.close();
  return { events, samples, lat, net: tab.net };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

/** Latencies measured after the first 15 s (hls.js settles on its target first). */
function settled(lat) {
  return lat.filter((s) => s.t > 15000 && Number.isFinite(s.latency) && s.latency > 0);
}

/**
 * hls.js with lowLatencyMode on /ll=0.5/<stream>.m3u8 for LL_SECONDS (three
 * loop points of the 18 s loop): no fatal error, no rebuffer after start,
 * playhead advancing with wall time, parts loaded, latency within 1 s of
 * PART-HOLD-BACK. Control: the same player on the regular playlist, whose
 * latency must be ≥ 2 s more (it waits for whole segments).
 */
export async function hlsjsLowLatency({ stream = 'loop', killAt = null, control = true } = {}) {
  return L.withBrowser(async ({ server, page, browser }) => {
    const src = `/ll=${PART_TARGET}/${stream}.m3u8`;
    const [ll, regular] = await Promise.all([
      hlsjsLatency(browser, page, server.base, src, { seconds: LL_SECONDS, lowLatencyMode: true, proc: server.proc, killAt }),
      control ? hlsjsLatency(browser, page, server.base, `/${stream}.m3u8`, { seconds: LL_SECONDS, lowLatencyMode: true }) : null,
    ]);
    // fMP4: hls.js skips the ~60 ms AAC-priming hole at each loop point; rebuffers up to 250 ms allowed there.
    const fmp4 = stream === 'loopf';
    const fails = L.judgeHls(ll.events, ll.samples, { allowWaiting: fmp4 });
    if (fmp4) {
      const firstPlaying = ll.events.find((e) => e.kind === 'video:playing');
      for (const w of ll.events.filter((e) => e.kind === 'video:waiting' && firstPlaying && e.t > firstPlaying.t)) {
        const resumed = ll.events.find((e) => e.kind === 'video:playing' && e.t >= w.t);
        const took = resumed ? resumed.t - w.t : Infinity;
        if (took > 250) fails.push(`rebuffered ${took} ms at ${w.t} ms (allowed 250)`);
      }
    }
    const parts = ll.net.filter((n) => n.url.includes('/part=') && n.status === 200).length;
    if (parts < 40) fails.push(`only ${parts} parts loaded (hls.js is not playing parts)`);
    const blocking = ll.net.filter((n) => n.url.includes('_HLS_msn=') && n.status === 200).length;
    if (blocking < 20) fails.push(`only ${blocking} blocking playlist reloads answered`);
    const s = settled(ll.lat);
    const med = median(s.map((x) => x.latency));
    const worst = Math.max(...s.map((x) => x.latency));
    if (s.length < 20) fails.push(`${s.length} latency samples after the first 15 s`);
    if (!(Math.abs(med - PART_HOLD_BACK) <= 1)) fails.push(`median latency ${med.toFixed(2)} s, PART-HOLD-BACK ${PART_HOLD_BACK} s`);
    if (!(worst <= PART_HOLD_BACK + 1)) fails.push(`latency reached ${worst.toFixed(2)} s (PART-HOLD-BACK ${PART_HOLD_BACK} s)`);
    // Loop points crossed: loops touched by the parts fetched (their g=<n> over the segments per loop).
    const perLoop = { loop: 9, loopf: 5 }[stream];
    const loops = new Set(ll.net.filter((n) => n.status === 200 && /\/g=\d+\/part=/.test(n.url))
      .map((n) => Math.floor(Number(/\/g=(\d+)\//.exec(n.url)[1]) / perLoop)));
    const wraps = loops.size - 1;
    if (wraps < 2) fails.push(`${wraps} loop points crossed by the parts fetched (want ≥ 2)`);
    const tgt = median(s.map((x) => x.target));
    let summary = `target ${tgt}, ${parts} parts, ${blocking} blocking reloads, latency median ${med.toFixed(2)} s (max ${worst.toFixed(2)}), ` +
      `${wraps} loop points`;
    if (regular) {
      const r = settled(regular.lat);
      const rmed = median(r.map((x) => x.latency));
      if (!(rmed >= med + 2)) fails.push(`control: regular playlist latency ${rmed.toFixed(2)} s is not ≥ 2 s above LL's ${med.toFixed(2)} s`);
      summary += `; control without parts: latency median ${rmed.toFixed(2)} s`;
    }
    return { name: `hls.js lowLatencyMode, ll=${PART_TARGET} (${stream})`, fails, events: ll.events, net: ll.net, summary };
  });
}

/** Shaka Player with streaming.lowLatencyMode on the LL playlist: plays without a critical error, at low latency. */
export async function shakaLowLatency({ stream = 'loopf', killAt = null } = {}) {
  return L.withBrowser(async ({ server, page, browser }) => {
    const tab = await browser.newPage();
    await tab.goto(page.url.replace('hls.html', 'shaka.html'));
    const src = `${server.base}/ll=${PART_TARGET}/${stream}.m3u8`;
    await tab.evaluate(async (url) => {
      shaka.polyfill.installAll();
      const player = new shaka.Player();
      window.player = player;
      player.configure({ streaming: { lowLatencyMode: true } });
      player.addEventListener('error', (e) => record('shaka:error', { code: e.detail.code, severity: e.detail.severity, data: String(e.detail.data && e.detail.data[0]).slice(0, 200) }));
      player.addEventListener('buffering', (e) => record('shaka:buffering', { buffering: e.buffering, time: video.currentTime }));
      window.playheadDate = () => { const d = player.getPlayheadTimeAsDate(); return d ? d.getTime() : null; };
      await player.attach(video);
      try {
        await player.load(url);
        record('shaka:loaded', { live: player.isLive() });
      } catch (e) {
        record('shaka:error', { code: e.code, severity: e.severity, data: 'load: ' + String(e.data && e.data[0]).slice(0, 200) });
      }
    }, src);
    const lat = [];
    const timer = setInterval(async () => {
      try {
        lat.push(await tab.evaluate(() => ({ t: window.ms(), latency: window.player.getStats().liveLatency })));
      } catch {}
    }, 1000);
    try {
      await L.playFor(LL_SECONDS, { proc: server.proc, killAt });
    } finally {
      clearInterval(timer);
    }
    const { events, samples } = await L.readBack(tab);
    const fails = [];
    const loaded = events.find((e) => e.kind === 'shaka:loaded');
    if (!loaded || !loaded.live) fails.push('not loaded as live');
    for (const e of events.filter((e) => e.kind === 'shaka:error' && e.severity === 2)) fails.push(`critical error ${e.code} ${e.data}`);
    const firstPlaying = events.find((e) => e.kind === 'video:playing');
    const { played, wall } = L.progress(samples, firstPlaying ? firstPlaying.t + 5000 : Infinity);
    if (wall < 30 || played < 0.9 * wall) fails.push(`currentTime advanced ${played.toFixed(1)} s in ${wall.toFixed(1)} s`);
    const med = median(settled(lat).map((x) => x.latency));
    if (!(med <= PART_HOLD_BACK + 1)) fails.push(`median live latency ${med.toFixed(2)} s (PART-HOLD-BACK ${PART_HOLD_BACK} s)`);
    const summary = `played ${played.toFixed(1)} s in ${wall.toFixed(1)} s, live latency median ${med.toFixed(2)} s`;
    return { name: `Shaka lowLatencyMode, ll=${PART_TARGET} (${stream})`, fails, events, summary };
  });
}
