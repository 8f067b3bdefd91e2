// What every test page records, whatever plays: an event log and time
// samples of the <video id="v">, read back by run.mjs. A player adapter may
// set window.playheadDate() (ms since the epoch of the frame at the playhead,
// from EXT-X-PROGRAM-DATE-TIME) and window.playheadDsn() (the discontinuity
// sequence number of the segment at the playhead); samples carry both.
window.t0 = performance.now();
window.events = [];
window.samples = [];
window.ms = () => Math.round(performance.now() - window.t0);
window.record = (kind, data) => window.events.push(Object.assign({ t: window.ms(), kind }, data || {}));
window.video = document.getElementById('v');
for (const e of ['playing', 'waiting', 'stalled', 'seeking', 'seeked', 'error', 'ended', 'pause']) {
  video.addEventListener(e, () => record('video:' + e, { time: video.currentTime, code: video.error && video.error.code }));
}
setInterval(() => {
  const q = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : {};
  let pdt = null;
  let dsn = null;
  try { pdt = window.playheadDate ? window.playheadDate() : null; } catch {}
  try { dsn = window.playheadDsn ? window.playheadDsn() : null; } catch {}
  window.samples.push({ t: ms(), time: video.currentTime, pdt, dsn, dropped: q.droppedVideoFrames || 0, total: q.totalVideoFrames || 0 });
}, 250);
