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
async function ffmpegMap0(base, src) {
  const proxy = await L.startRecordingProxy(base);
  try {
    const out = await L.run('timeout', ['-k', '5', String(TIMEOUT_SECONDS), 'ffmpeg', '-hide_banner', '-nostats', '-loglevel', 'verbose',
      '-i', `${proxy.base}${src}`, '-map', '0', '-t', String(MEDIA_SECONDS), '-f', 'null', '-']);
    // "Output stream #0:1 (audio): 1874 frames encoded (1918976 samples); ..."
    const streams = [...out.stderr.matchAll(/Output stream #0:(\d+) \((video|audio)\): (\d+) frames encoded(?: \((\d+) samples\))?/g)]
      .map((m) => ({ index: Number(m[1]), kind: m[2], seconds: m[2] === 'video' ? Number(m[3]) / 25 : Number(m[4]) / 48000 }));
    const segments = proxy.log.filter((n) => n.status === 200).map((n) => n.url);
    const variants = [...new Set(segments.map(L.variantOf).filter(Boolean))];
    return { code: out.code, streams, wraps: L.loopWraps(segments), variants, stderr: out.stderr };
  } finally {
    proxy.server.close();
  }
}

function judgeMap0(r) {
  const fails = [];
  if (r.code !== 0) fails.push(r.code === 124 ? `ffmpeg still running after ${TIMEOUT_SECONDS} s (timeout)` : `ffmpeg exited ${r.code}`);
  if (r.streams.length < 6) fails.push(`${r.streams.length} output streams reported (want 6: three variants of video and audio)`);
  for (const s of r.streams) if (s.seconds < MEDIA_SECONDS - 3) fails.push(`output stream ${s.index} (${s.kind}) got ${s.seconds.toFixed(1)} s of ${MEDIA_SECONDS}`);
  if (r.variants.length < 3) fails.push(`segments of ${r.variants.length} variants fetched (${r.variants}), want 3`);
  if (r.wraps < 2) fails.push(`${r.wraps} loop points crossed by the segments fetched (want ≥ 2)`);
  return fails;
}

/**
 * ffmpeg -map 0 on /ts=continuous/loop.m3u8 must exit 0 with every stream
 * complete; the same harness on the source timestamps (/ts=source/loop.m3u8, where
 * ffmpeg starves a playlist at the first loop point) is the control and
 * must fail.
 */
export async function ffmpegContinuous({ killAt = null } = {}) {
  const server = await L.startPseudolive();
  try {
    const killer = L.playFor(killAt === null ? 0 : killAt + 1, { proc: server.proc, killAt });
    const [r, control] = await Promise.all([ffmpegMap0(server.base, '/ts=continuous/loop.m3u8'), ffmpegMap0(server.base, '/ts=source/loop.m3u8')]);
    await killer;
    const fails = judgeMap0(r);
    const controlFails = judgeMap0(control);
    if (controlFails.length === 0) fails.push('the control (ts=source) passed the same judge: the harness cannot tell the modes apart');
    const summary = `exit ${r.code}, media per stream ${r.streams.map((s) => s.seconds.toFixed(1)).join('/')} s, ` +
      `${r.wraps} loop points crossed; control ts=source failed as it must (${controlFails[0] || '-'})`;
    return { name: 'ffmpeg -map 0, ts=continuous (three variants)', fails, events: [{ kind: 'ffmpeg', stderr: r.stderr.slice(-3000) }], summary };
  } finally {
    server.proc.kill();
  }
}
