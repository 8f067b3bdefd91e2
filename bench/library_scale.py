#!/usr/bin/env python3
"""Library scale: builds a synthetic library (STREAMS x 3 variants x SEGMENTS
segments, hard links to the fixture segments), starts pseudolive on it and
measures the time until every stream is ready, the peak RSS, and the time to
the first playlist of a stream requested right after start.

usage: bench/library_scale.py [--streams 100] [--segments 600] [--bin target/release/pseudolive]
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(lib, streams, segments):
    src_dir = os.path.join(ROOT, "fixtures", "av25")
    src = sorted(f for f in os.listdir(src_dir) if f.endswith(".ts"))
    for s in range(streams):
        sdir = os.path.join(lib, f"stream_{s:03d}")
        master = ["#EXTM3U", "#EXT-X-VERSION:3"]
        for v, rate in (("low", 200000), ("mid", 400000), ("high", 800000)):
            vdir = os.path.join(sdir, v)
            os.makedirs(vdir)
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"]
            for i in range(segments):
                name = f"seg_{i:04d}.ts"
                os.link(os.path.join(src_dir, src[i % len(src)]), os.path.join(vdir, name))
                if i > 0 and i % len(src) == 0:
                    lines.append("#EXT-X-DISCONTINUITY")  # each cycle of the 5 fixture files restarts its timestamps
                lines += ["#EXTINF:2.000,", name]
            lines.append("#EXT-X-ENDLIST")
            open(os.path.join(vdir, "index.m3u8"), "w").write("\n".join(lines) + "\n")
            master += [f"#EXT-X-STREAM-INF:BANDWIDTH={rate}", f"{v}/index.m3u8"]
        open(os.path.join(sdir, "abr.m3u8"), "w").write("\n".join(master) + "\n")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--segments", type=int, default=600)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "pseudolive"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pseudolive-scale-")
    try:
        t = time.time()
        build(tmp, a.streams, a.segments)
        total = a.streams * 3 * a.segments
        print(f"library: {a.streams} streams x 3 variants x {a.segments} segments = {total} segments (built in {time.time() - t:.1f} s)")
        subprocess.run(["sync"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        last = f"stream_{a.streams - 1:03d}"
        t0 = time.monotonic()
        proc = subprocess.Popen([a.bin, "127.0.0.1", str(port), "--static", tmp, "--log-level", "warn"])
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.002)
            t_listen = time.monotonic() - t0
            status, body = get(f"{base}/{last}_mid.m3u8")
            t_first = time.monotonic() - t0
            assert status == 200 and b"#EXTINF" in body, body[:200]
            while True:
                streams = json.loads(get(f"{base}/streams.json")[1])
                if all(s["state"] != "loading" for s in streams):
                    break
                time.sleep(0.02)
            t_ready = time.monotonic() - t0
            failed = [s["name"] for s in streams if s["state"] != "ready"]
            rss = peak_rss_mb(proc.pid)
            print(f"listening after {t_listen * 1000:.0f} ms")
            print(f"first playlist of the last stream ({last}) after {t_first * 1000:.0f} ms")
            print(f"all {len(streams)} streams ready after {t_ready:.2f} s ({total / t_ready:.0f} segments/s); failed: {failed or 'none'}")
            print(f"peak RSS {rss:.1f} MB")
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
