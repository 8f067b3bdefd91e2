#!/usr/bin/python3
"""GStreamer playbin3 (hlsdemux2) or playbin (the legacy hlsdemux) plays an HLS
URL into fakesinks synced to the clock, querying the position twice a second;
one JSON object per line on stdout. Optionally caps the demuxer's bitrate at
a given second (a forced down-switch): hlsdemux2's max-bitrate, the legacy
hlsdemux's connection-speed.

Usage: gst-play.py URI SECONDS [CAP_AT_SECONDS CAP_BITS_PER_SECOND [ELEMENT]]
ELEMENT: playbin3 (default) or playbin (with hlsdemux2 ranked out, so the
legacy hlsdemux plays).
"""
import json
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

Gst.init(None)
uri, seconds = sys.argv[1], float(sys.argv[2])
cap_at = float(sys.argv[3]) if len(sys.argv) > 4 else None
cap_bps = int(sys.argv[4]) if len(sys.argv) > 4 else None
element = sys.argv[5] if len(sys.argv) > 5 else "playbin3"
t0 = time.monotonic()


def emit(kind, **fields):
    print(json.dumps({"t": round((time.monotonic() - t0) * 1000), "kind": kind, **fields}), flush=True)


if element == "playbin":
    # GStreamer 1.22 ranks hlsdemux2 above the legacy hlsdemux, and playbin
    # would pick it too: the legacy client is the pair playbin + hlsdemux.
    feature = Gst.Registry.get().lookup_feature("hlsdemux2")
    if feature:
        feature.set_rank(Gst.Rank.NONE)
pipe = Gst.ElementFactory.make(element)
pipe.set_property("uri", uri)
for prop in ("video-sink", "audio-sink"):
    sink = Gst.ElementFactory.make("fakesink")
    sink.set_property("sync", True)
    pipe.set_property(prop, sink)

demuxers = []


def on_element(_bin, _sub, element):
    factory = element.get_factory()
    name = factory.get_name() if factory else ""
    if name.startswith("hlsdemux"):
        demuxers.append(element)
        emit("demuxer", name=name)


pipe.connect("deep-element-added", on_element)
loop = GLib.MainLoop()
exit_code = [0]
buffering = [False]


def on_message(_bus, msg):
    t = msg.type
    if t == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        emit("error", message=err.message, debug=(dbg or "")[:400])
        exit_code[0] = 2
        loop.quit()
    elif t == Gst.MessageType.EOS:
        emit("eos")
        loop.quit()
    elif t == Gst.MessageType.WARNING:
        err, dbg = msg.parse_warning()
        emit("warning", message=err.message, debug=(dbg or "")[:400])
    elif t == Gst.MessageType.BUFFERING:
        # Only the edges: buffering begins (below 100 %) and ends (100 %).
        percent = msg.parse_buffering()
        if (percent < 100) != buffering[0]:
            buffering[0] = percent < 100
            emit("buffering", percent=percent)
    elif t == Gst.MessageType.STATE_CHANGED and msg.src == pipe:
        _old, new, _pending = msg.parse_state_changed()
        emit("state", state=new.value_nick)


bus = pipe.get_bus()
bus.add_signal_watch()
bus.connect("message", on_message)
capped = [False]


def tick():
    elapsed = time.monotonic() - t0
    ok, pos = pipe.query_position(Gst.Format.TIME)
    fields = {"pos": pos / 1e9 if ok and pos >= 0 else None}
    if demuxers and demuxers[0].find_property("current-bandwidth"):
        fields["bandwidth"] = demuxers[0].get_property("current-bandwidth")
    emit("position", **fields)
    if cap_at is not None and not capped[0] and elapsed >= cap_at and demuxers:
        demuxer = demuxers[0]
        if demuxer.get_factory().get_name() == "hlsdemux2":
            demuxer.set_property("max-bitrate", cap_bps)
        else:
            demuxer.set_property("connection-speed", cap_bps // 1000)
        capped[0] = True
        emit("capped", max_bitrate=cap_bps)
    if elapsed >= seconds:
        loop.quit()
        return False
    return True


GLib.timeout_add(500, tick)
pipe.set_state(Gst.State.PLAYING)
loop.run()
pipe.set_state(Gst.State.NULL)
sys.exit(exit_code[0])
