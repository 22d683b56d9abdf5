#!/usr/bin/env bash
# The README's main command, headless, against the built-in simulated camera: it probes,
# records while the camera reboots, and the clip plays.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
env -u CAM_URI -u KASA_IP -u DISPLAY -u WAYLAND_DISPLAY bash scripts/run --seconds 8 --output "$tmp/main.mkv" | tee "$tmp/out.log"
grep -q "probe: codec    H.264" "$tmp/out.log"
grep -q "probe: audio    G.711 A-law" "$tmp/out.log"
grep -q "cam: camera back after" "$tmp/out.log"
grep -q "recorded $tmp/main.mkv" "$tmp/out.log"
gst-discoverer-1.0 "$tmp/main.mkv" > "$tmp/disc.log"
grep -q "H.264" "$tmp/disc.log"
grep -q "A-Law" "$tmp/disc.log"
# The same scripts users run: probe exits 0, a headless view says why it cannot.
CAM_SKIP_SETUP=1 env -u CAM_URI bash scripts/probe --sim > "$tmp/probe.log"
grep -q "probe: size     1920x1080" "$tmp/probe.log"
set +e
CAM_SKIP_SETUP=1 env -u DISPLAY -u WAYLAND_DISPLAY bash scripts/view --sim 2> "$tmp/view.log"
code=$?
set -e
[ "$code" = 2 ] && grep -q "no display" "$tmp/view.log"
# A camera that is not there: probe fails with a reason and exit 1.
set +e
CAM_SKIP_SETUP=1 bash scripts/probe --uri rtsp://127.0.0.1:9/stream1 --timeout 3 --stall-timeout 2 > "$tmp/bad.log"
code=$?
set -e
[ "$code" = 1 ] && grep -q "probe: FAILED" "$tmp/bad.log"
echo "main command: ok"
