#!/usr/bin/env bash
# The README's install path and plain gst-launch-1.0 use, against the simulated camera:
# meson installs the plugin system-wide, gst-inspect-1.0 finds it without
# GST_PLUGIN_PATH, a `gst-launch-1.0 -e` recording is playable with audio and video, and
# playbin plays a kasa:// URI.
set -euo pipefail
cd "$(dirname "$0")/.."
unset GST_PLUGIN_PATH
b=target/meson-build
# The plugins as the suite already built them (dev profile, the workspace's target/): this
# test is about the install and gst-launch use, and a separate release build of tract
# would cost CI a quarter of an hour.
opts=(-Dcargo-profile=dev -Dcargo-target-dir="$PWD/target")
if [ -d "$b/meson-private" ]; then meson setup --reconfigure "${opts[@]}" "$b" >/dev/null; else meson setup "${opts[@]}" "$b" >/dev/null; fi
meson compile -C "$b" >/dev/null
meson install -C "$b" >/dev/null
plugindir=$(pkg-config --variable=pluginsdir gstreamer-1.0)
test -f "$plugindir/libgstkasasrc.so"

inspect=$(gst-inspect-1.0 kasasrc)
for want in "Supported URI protocols" "kasa" "tls-fingerprint" "max-reconnects" "Default: 19443" "Write only"; do
  grep -q -- "$want" <<<"$inspect" || { echo "gst-inspect-1.0 kasasrc lacks: $want"; exit 1; }
done
grep -q "Filename .*/gstreamer-1.0/libgstkasasrc.so" <<<"$inspect"

tmp=$(mktemp -d)
sim_pid=
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
cargo build --quiet -p kasa-sim
KASA_SIM_PASSWORD='launch-test pw' target/debug/kasa-sim --port 0 --size 640x360 --user me@example.com < /dev/null > "$tmp/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/sim.log" && break; sleep 0.1; done
port=$(grep -o '127.0.0.1:[0-9]*' "$tmp/sim.log" | head -1 | cut -d: -f2)
[ -n "$port" ] || { cat "$tmp/sim.log"; exit 1; }

# Record with -e; SIGINT makes gst-launch send EOS so the muxer finalises.
KASA_PASSWORD='launch-test pw' timeout -k 30 -s INT 5 gst-launch-1.0 -e \
  kasasrc ip=127.0.0.1 port="$port" username=me@example.com name=k \
  k.video ! h264parse ! queue ! matroskamux name=m ! filesink location="$tmp/rec.mkv" \
  k.audio ! queue ! m.audio_0 > "$tmp/launch.log" 2>&1 || true
grep -q "EOS" "$tmp/launch.log" || { cat "$tmp/launch.log"; exit 1; }
info=$(gst-discoverer-1.0 "$tmp/rec.mkv")
grep -q "H.264" <<<"$info" || { echo "$info"; exit 1; }
grep -qi "mu-law" <<<"$info" || { echo "$info"; exit 1; }
frames=$(gst-launch-1.0 filesrc location="$tmp/rec.mkv" ! matroskademux ! h264parse ! avdec_h264 ! fakesink silent=false -v 2>&1 | grep -c "chain" || true)
[ "$frames" -ge 30 ] || { echo "only $frames frames decode from the recording"; exit 1; }
echo "recorded and decoded $frames frames with audio"

# playbin with a kasa:// URI (percent-encoded user), decoding audio and video.
timeout -k 30 5 gst-launch-1.0 -m playbin "uri=kasa://me%40example.com:launch-test%20pw@127.0.0.1:$port" \
  video-sink="fakesink silent=false" audio-sink="fakesink silent=false" -v > "$tmp/playbin.log" 2>&1 || true
grep -q "kasasrc-online" "$tmp/playbin.log" || { tail -30 "$tmp/playbin.log"; exit 1; }
if grep -q "ERROR" "$tmp/playbin.log"; then grep ERROR "$tmp/playbin.log"; exit 1; fi
grep -q "audio/x-raw" "$tmp/playbin.log"
grep -q "video/x-raw" "$tmp/playbin.log"
echo "playbin played kasa:// with audio and video"

# camsrc, installed the same way, running the pipelines/ scripts users copy, against the
# simulated Tapo camera: Matroska with PCMA as sent, fragmented MP4 with AAC.
test -f "$plugindir/libgstcamsrc.so"
inspect=$(gst-inspect-1.0 camsrc)
for want in "stall-timeout" "rtsp-transport" "Default: 10" "Write only" "Supported URI protocols" "tutk"; do
  grep -q -- "$want" <<<"$inspect" || { echo "gst-inspect-1.0 camsrc lacks: $want"; exit 1; }
done
cargo build --quiet -p tapo-sim
TAPO_SIM_PASSWORD='tapo launch pw' target/debug/tapo-sim --port 0 --quirks null-sprop,extra-track < /dev/null > "$tmp/tapo.log" 2>&1 &
tapo_pid=$!
trap 'kill $tapo_pid 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do grep -q "listening on" "$tmp/tapo.log" && break; sleep 0.1; done
tport=$(grep -o '127.0.0.1:[0-9]*' "$tmp/tapo.log" | head -1 | cut -d: -f2)
[ -n "$tport" ] || { cat "$tmp/tapo.log"; exit 1; }
export CAM_URI="rtsp://admin@127.0.0.1:$tport/stream2" CAMSRC_PASSWORD='tapo launch pw'
timeout -k 30 -s INT 6 sh pipelines/tapo-record.sh "$tmp/tapo.mkv" > "$tmp/tapo-launch.log" 2>&1 || true
info=$(gst-discoverer-1.0 "$tmp/tapo.mkv")
grep -q "H.264" <<<"$info" && grep -q "A-Law" <<<"$info" || { echo "$info"; tail "$tmp/tapo-launch.log"; exit 1; }
timeout -k 30 -s INT 6 sh pipelines/tapo-record-mp4.sh "$tmp/tapo.mp4" > "$tmp/tapo-mp4.log" 2>&1 || true
info=$(gst-discoverer-1.0 "$tmp/tapo.mp4")
grep -q "H.264" <<<"$info" && grep -qi "AAC" <<<"$info" || { echo "$info"; tail "$tmp/tapo-mp4.log"; exit 1; }
echo "camsrc recorded the simulated Tapo camera to Matroska (PCMA) and fragmented MP4 (AAC)"
# ringrecorder, installed, in the gst-launch pipeline users copy: 2 s segments, Ctrl-C.
test -f "$plugindir/libgstringrec.so"
inspect=$(gst-inspect-1.0 ringrecorder)
for want in "max-size-time" "max-bytes" "max-age" "Default: \"60s\"" "Default: \"mp4\""; do
  grep -q -- "$want" <<<"$inspect" || { echo "gst-inspect-1.0 ringrecorder lacks: $want"; exit 1; }
done
MAX_SIZE_TIME=2s timeout -k 30 -s INT 8 sh pipelines/tapo-ring-record.sh "$tmp/ring/front" > "$tmp/ring.log" 2>&1 || true
segs=$(find "$tmp/ring/front" -name 'front-*T*Z*.mp4' | sort)
[ "$(echo "$segs" | grep -c .)" -ge 2 ] || { find "$tmp/ring"; tail "$tmp/ring.log"; exit 1; }
[ -z "$(find "$tmp/ring" -name '*.partial')" ] || { echo "a .partial was left after Ctrl-C"; exit 1; }
for f in $segs; do
  info=$(gst-discoverer-1.0 "$f")
  grep -q "H.264" <<<"$info" && grep -qi "AAC" <<<"$info" || { echo "$f: $info"; exit 1; }
done
echo "ringrecorder recorded $(echo "$segs" | wc -l) playable segments from gst-launch-1.0"
# mjpeghttpsink, installed: its properties as gst-inspect shows them.
test -f "$plugindir/libgstmjpeghttp.so"
inspect=$(gst-inspect-1.0 mjpeghttpsink)
for want in "max-clients" "bound-port" "Default: 8080" "Default: \"0.0.0.0\"" "Write only" "image/jpeg"; do
  grep -q -- "$want" <<<"$inspect" || { echo "gst-inspect-1.0 mjpeghttpsink lacks: $want"; exit 1; }
done
# tutksrc, installed: its properties, and the SDK that is never shipped.
test -f "$plugindir/libgsttutksrc.so"
inspect=$(gst-inspect-1.0 tutksrc)
for want in "library-path" "license-key" "allow-remote" "Default: false" "Write only" "video/x-h264" "image/jpeg" "tutk"; do
  grep -q -- "$want" <<<"$inspect" || { echo "gst-inspect-1.0 tutksrc lacks: $want"; exit 1; }
done
err=$(TUTK_LIBRARY_PATH=/nonexistent gst-launch-1.0 tutksrc uid=HBNASLSCFC1MN4Y9221A ! fakesink 2>&1 || true)
grep -q "TUTK SDK not found" <<<"$err" || { echo "tutksrc without an SDK: $err"; exit 1; }
echo "tutksrc installed; without an SDK it says where it looked"
# motiondetect, installed: a gst-launch scene with a moving ball gives a motion start.
test -f "$plugindir/libgstmotion.so"
out=$(timeout -k 30 60 gst-launch-1.0 -m videotestsrc pattern=ball num-buffers=30 ! video/x-raw,width=320,height=240 \
  ! motiondetect min-area=0.001 calm-time=0.5 ! fakesink 2>&1)
grep -q "motion, type=(string)start" <<<"$out" || { echo "motiondetect under gst-launch: $out" | tail -20; exit 1; }
echo "motiondetect installed and posting motion messages"
# objectdetect and motionclips, installed (the model is inside the plugin): a moving ball
# encoded to H.264 under gst-launch gives a dismissed event and, with record=all, a clip
# and a snapshot.
for e in objectdetect motionclips; do
  gst-inspect-1.0 "$e" >/dev/null || { echo "gst-inspect-1.0 $e fails"; exit 1; }
done
clips=$(mktemp -d)
out=$(timeout -k 30 120 gst-launch-1.0 -m videotestsrc pattern=ball num-buffers=80 \
  ! video/x-raw,width=320,height=240,framerate=10/1 ! x264enc key-int-max=10 tune=zerolatency \
  ! motionclips location="$clips" camera=ball record=all pre-roll=1 post-roll=0.5 \
    motion::min-area=0.001 motion::calm-time=0.5 2>&1)
grep -q "objectdetect, type=(string)end, .*verdict=(string)dismissed" <<<"$out" \
  || { echo "objectdetect under gst-launch: $out" | tail -20; exit 1; }
grep -q "motionclips, type=(string)clip" <<<"$out" || { echo "motionclips under gst-launch: $out" | tail -20; exit 1; }
ls "$clips"/ball-*.mp4 "$clips"/ball-*.jpg >/dev/null || { echo "no clip or snapshot in $clips: $(ls "$clips")"; exit 1; }
rm -rf "$clips"
echo "objectdetect and motionclips installed: a dismissed event, its clip and snapshot"
