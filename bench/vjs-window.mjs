// What video.js (VHS, `liveui: true`) shows for live playlists of different
// window sizes: the player suite's loop stream (2 s segments, target
// duration 2) with the server's default window and with `window=N` /
// `dvr=S`, each played for 25 s on a timeline old enough to fill any window.
// Prints, per window: the seconds listed, video.js's seekable range, whether
// its live tracker tracks (it wants ≥ 20 s seekable) and which live UI it
// shows (`vjs-liveui`: seek bar and "seek to live" button; `vjs-live`: a
// LIVE label, no seek bar). Screenshots of the player: target/vjs-window-*.png.
//
// Usage: node bench/vjs-window.mjs [OPTION...]   (default: the list below)
// Env: PSEUDOLIVE_BIN, CHROMIUM (as tests/player/run.mjs).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import * as L from '../tests/player/lib.mjs';

const options = process.argv.slice(2).length ? process.argv.slice(2) : ['', 'window=10', 'window=12', 'window=13', 'window=14', 'window=15', 'window=20', 'dvr=30'];
const out = path.join(L.here, '../../target');
mkdirSync(out, { recursive: true });

async function measure(browser, pages, server, option) {
  const start = `start=${Math.floor(Date.now() / 1000) - 300}`;
  const src = `${server.base}/${[start, option].filter(Boolean).join('/')}/ts=source/loop.m3u8`;
  const tab = await L.openPlayer(browser, `${pages.base}/videojs.html`, 'startVideojs', src);
  // The test page has no style sheet: video.js's own decides what is shown.
  await tab.addStyleTag({ path: path.join(L.here, 'node_modules/video.js/dist/video-js.min.css') });
  await tab.evaluate(() => window.player.controls(true));
  await L.sleep(25000);
  const state = await tab.evaluate(() => {
    const p = window.player;
    const s = p.seekable();
    p.userActive(true);
    const shown = (c) => !!(c && c.el() && getComputedStyle(c.el()).display !== 'none' && getComputedStyle(c.el()).visibility !== 'hidden' && !c.hasClass('vjs-hidden'));
    return {
      duration: p.duration(),
      seekable: s.length ? [s.start(0), s.end(0)] : null,
      isLive: p.liveTracker.isLive(),
      tracking: p.liveTracker.isTracking(),
      liveWindow: p.liveTracker.liveWindow(),
      liveui: p.hasClass('vjs-liveui'),
      liveClass: p.hasClass('vjs-live'),
      seekBar: shown(p.controlBar.progressControl),
      seekToLive: shown(p.controlBar.seekToLive),
      liveDisplay: shown(p.controlBar.liveDisplay),
      currentTime: p.currentTime(),
    };
  });
  const playlist = await (await fetch(`${server.base}/${[start, option].filter(Boolean).join('/')}/loop_low.m3u8`)).text();
  const listed = [...playlist.matchAll(/#EXTINF:([\d.]+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  const segments = (playlist.match(/#EXTINF/g) || []).length;
  await tab.screenshot({ path: path.join(out, `vjs-window-${option || 'default'}.png`) });
  await tab.close();
  return { option: option || '(server default)', segments, listed, ...state };
}

async function main() {
  const server = await L.startPseudolive();
  const pages = await L.startPageServer();
  const browser = await L.launch();
  try {
    console.log('| URL option | segments listed | seconds listed | seekable (s) | liveTracker tracking | player class | shown in the control bar |');
    console.log('|---|---|---|---|---|---|---|');
    // Two at a time: the measurement is of states, not of timing.
    for (let i = 0; i < options.length; i += 2) {
      const rows = await Promise.all(options.slice(i, i + 2).map((o) => measure(browser, pages, server, o)));
      for (const r of rows) {
        const seekable = r.seekable ? (r.seekable[1] - r.seekable[0]).toFixed(1) : '-';
        const ui = [r.seekBar ? 'seek bar' : null, r.seekToLive ? '"seek to live" button' : null, r.liveDisplay ? 'LIVE label' : null].filter(Boolean).join(', ') || 'none';
        console.log(`| \`${r.option}\` | ${r.segments} | ${r.listed.toFixed(0)} | ${seekable} | ${r.tracking ? 'yes' : 'no'} | ${r.liveui ? '`vjs-liveui`' : r.liveClass ? '`vjs-live`' : '-'} | ${ui} |`);
      }
    }
  } finally {
    await browser.close();
    pages.server.close();
    server.proc.kill();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
