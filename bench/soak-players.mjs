// Soak with real players: hls.js and Shaka Player, each in its own headless
// Chromium tab, play the player suite's loop stream (18 s loop, three
// variants, a loop point and a source discontinuity every 9 s on average)
// from one pseudolive for MINUTES, ABR left on. Every 10 s: the server's RSS
// and each player's playhead. Fails on any error event of either player,
// a playhead advancing < 0.95 × wall time, a rebuffer longer than 1 s, or
// server RSS growing 10 % or more from the sample after warm-up (2 min) to
// the end. Not part of the test suite (an hour by default).
//
// Usage: node bench/soak-players.mjs [MINUTES=60]
// Env: PSEUDOLIVE_BIN, CHROMIUM (as tests/player/run.mjs).
import { readFileSync } from 'node:fs';
import * as L from '../tests/player/lib.mjs';

const minutes = Number(process.argv[2] || 60);
const WARM_S = Math.min(120, (minutes * 60) / 4);

const rssKb = (pid) => Number((/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8')) || [])[1]);

async function main() {
  const server = await L.startPseudolive();
  const pages = await L.startPageServer();
  const browser = await L.launch();
  const fails = [];
  try {
    const startS = Math.floor(Date.now() / 1000);
    const hls = await L.openPlayer(browser, pages.url, 'startHls', `${server.base}/loop.m3u8`);
    const shaka = await L.openPlayer(browser, `${pages.base}/shaka.html`, 'startShaka', `${server.base}/start=${startS}/loop.m3u8`);
    const tabs = { 'hls.js': hls, Shaka: shaka };
    const rss = [];
    const t0 = Date.now();
    for (let s = 0; s <= minutes * 60; s += 10) {
      const wait = t0 + s * 1000 - Date.now();
      if (wait > 0) await L.sleep(wait);
      const kb = rssKb(server.proc.pid);
      rss.push({ s, kb });
      const times = [];
      for (const [name, tab] of Object.entries(tabs)) times.push(`${name} ${(await tab.evaluate(() => window.video.currentTime)).toFixed(1)}`);
      console.log(`t=${s}s rss_kb=${kb} ${times.join(' ')}`);
    }
    for (const [name, tab] of Object.entries(tabs)) {
      const { events, samples } = await L.readBack(tab);
      const errors = events.filter((e) => e.kind === 'ERROR' || e.kind === 'shaka:error' || e.kind === 'video:error' || e.kind === 'hls:error');
      const firstPlaying = events.find((e) => e.kind === 'video:playing');
      const { played, wall } = L.progress(samples, firstPlaying ? firstPlaying.t : Infinity);
      const waits = events.filter((e) => firstPlaying && e.kind === 'video:waiting' && e.t > firstPlaying.t);
      const longWaits = waits.map((w) => {
        const resumed = events.find((e) => e.kind === 'video:playing' && e.t >= w.t);
        return { at: w.t, ms: resumed ? resumed.t - w.t : Infinity };
      }).filter((w) => w.ms > 1000);
      const ccs = new Set(events.filter((e) => e.kind === 'FRAG_CHANGED').map((e) => e.cc));
      const last = samples[samples.length - 1] || {};
      console.log(`${name}: played ${played.toFixed(1)} s in ${wall.toFixed(1)} s (${((100 * played) / Math.max(wall, 1e-9)).toFixed(2)} %), ` +
        `${errors.length} errors, ${waits.length} waiting (${longWaits.length} over 1 s), dropped ${last.dropped || 0}/${last.total || 0} frames` +
        (ccs.size ? `, ${ccs.size} discontinuity counters` : ''));
      for (const e of errors.slice(0, 5)) console.log(`  ${JSON.stringify(e)}`);
      if (errors.length) fails.push(`${name}: ${errors.length} errors`);
      if (!firstPlaying) fails.push(`${name}: never playing`);
      if (played < 0.95 * wall) fails.push(`${name}: played ${played.toFixed(1)} s in ${wall.toFixed(1)} s`);
      if (longWaits.length) fails.push(`${name}: ${longWaits.length} rebuffers over 1 s (first ${longWaits[0].ms} ms at ${longWaits[0].at} ms)`);
    }
    const warm = rss.find((r) => r.s >= WARM_S) || rss[0];
    const end = rss[rss.length - 1];
    const growth = ((end.kb - warm.kb) / warm.kb) * 100;
    console.log(`server RSS at start ${rss[0].kb} kB, after warm-up (${warm.s} s) ${warm.kb} kB, at the end ${end.kb} kB, ` +
      `max ${Math.max(...rss.map((r) => r.kb))} kB: growth ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} %`);
    if (growth >= 10) fails.push(`server RSS grew ${growth.toFixed(1)} %`);
    if (server.proc.exitCode !== null) fails.push(`the server exited (${server.proc.exitCode})`);
  } finally {
    await browser.close();
    pages.server.close();
    server.proc.kill();
  }
  console.log(fails.length ? `FAIL\n${fails.map((f) => '  - ' + f).join('\n')}` : 'ok');
  process.exit(fails.length ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
