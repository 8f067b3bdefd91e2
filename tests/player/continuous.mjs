// ts=continuous: timestamps that keep rising across loop points, for
// clients that ignore EXT-X-DISCONTINUITY. ffmpeg reading every variant of
// the master at once (-map 0) is the client that needs it.
import * as L from './lib.mjs';

const MEDIA_SECONDS = 40;
const TIMEOUT_SECONDS = 60;

/**
 * ffmpeg -map 0 on a master of three variants, decoding 40 s of media
 * (crossing two loop points) through a recording proxy. Returns its exit
 * code, the seconds of media each output stream got, and the loop points
 * crossed by the segments it fetched.
 */
async function ffmpegMap0(base, src, stream) {
  const proxy = await L.startRecordingProxy(base);
  try {
    const out = await L.run('timeout', ['-k', '5', String(TIMEOUT_SECONDS), 'ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'verbose',
      '-i', `${proxy.base}${src}`, '-map', '0', '-t', String(MEDIA_SECONDS), '-f', 'null', '-']);
    // "Output stream #0:1 (audio): 1874 frames encoded (1918976 samples); ..."
    const streams = [...out.stderr.matchAll(/Output stream #0:(\d+) \((video|audio)\): (\d+) frames encoded(?: \((\d+) samples\))?/g)]
      .map((m) => ({ index: Number(m[1]), kind: m[2], seconds: m[2] === 'video' ? Number(m[3]) / 25 : Number(m[4]) / 48000 }));
    const segments = proxy.log.filter((n) => n.status === 200).map((n) => n.url);
    const variants = [...new Set(segments.map(stream.variantOf).filter(Boolean))];
    return { code: out.code, streams, wraps: L.wrapsOf(stream, segments), variants, stderr: out.stderr };
  } finally {
    proxy.server.close();
  }
}

/** What -map 0 must get from each test stream: output streams, and playlists whose segments it reads. */
const MAP0 = {
  loop: { streams: 6, playlists: 3, what: 'three variants of video and audio' },
  loopd: { streams: 3, playlists: 3, what: 'two video variants and one audio rendition' },
};

function judgeMap0(r, want) {
  const fails = [];
  if (r.code !== 0) fails.push(r.code === 124 ? `ffmpeg still running after ${TIMEOUT_SECONDS} s (timeout)` : `ffmpeg exited ${r.code}`);
  if (r.streams.length < want.streams) fails.push(`${r.streams.length} output streams reported (want ${want.streams}: ${want.what})`);
  for (const s of r.streams) if (s.seconds < MEDIA_SECONDS - 3) fails.push(`output stream ${s.index} (${s.kind}) got ${s.seconds.toFixed(1)} s of ${MEDIA_SECONDS}`);
  if (r.variants.length < want.playlists) fails.push(`segments of ${r.variants.length} playlists fetched (${r.variants}), want ${want.playlists}`);
  if (r.wraps < 2) fails.push(`${r.wraps} loop points crossed by the segments fetched (want ≥ 2)`);
  return fails;
}

/**
 * ffmpeg -map 0 on /ts=continuous/<stream>.m3u8 (`loop`: three muxed
 * variants; `loopd`: two video variants and a demuxed audio rendition) must
 * exit 0 with every stream complete; the same harness on the source
 * timestamps (/ts=source/..., where ffmpeg starves a playlist at the first
 * loop point) is the control and must fail.
 */
export async function ffmpegContinuous({ killAt = null, stream = 'loop' } = {}) {
  const want = MAP0[stream];
  const info = L.streamInfo(stream);
  const server = await L.startPseudolive();
  try {
    const killer = L.playFor(killAt === null ? 0 : killAt + 1, { proc: server.proc, killAt });
    const [r, control] = await Promise.all([
      ffmpegMap0(server.base, L.srcOf(stream, 'continuous'), info),
      ffmpegMap0(server.base, L.srcOf(stream, 'source'), info),
    ]);
    await killer;
    const fails = judgeMap0(r, want);
    const controlFails = judgeMap0(control, want);
    if (controlFails.length === 0) fails.push('the control (ts=source) passed the same judge: the harness cannot tell the modes apart');
    const summary = `exit ${r.code}, media per stream ${r.streams.map((s) => s.seconds.toFixed(1)).join('/')} s, ` +
      `${r.wraps} loop points crossed; control ts=source failed as it must (${controlFails[0] || '-'})`;
    return { name: `ffmpeg -map 0, ts=continuous, ${stream} (${want.what})`, fails, events: [{ kind: 'ffmpeg', stderr: r.stderr.slice(-3000) }], summary };
  } finally {
    server.proc.kill();
  }
}
