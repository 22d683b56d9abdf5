#!/usr/bin/env bash
# scripts/tutk against the fake SDK: scan finds the demo camera, sync sends the time,
# stream writes H.264 that GStreamer decodes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CAM_SKIP_SETUP=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TUTK_FAKE_DIR="$tmp/cams"
out=$(bash scripts/tutk --fake scan -t 100)
grep -q "uid=HBNASLSCFC1MN4Y9221A ip=127.0.0.1 port=32761 name=fake-demo-camera" <<<"$out" || { echo "scan: $out"; exit 1; }
bash scripts/tutk --fake sync -d HBNASLSCFC1MN4Y9221A -u admin 2>"$tmp/sync.log"
grep -q "synced time" "$tmp/sync.log" || { cat "$tmp/sync.log"; exit 1; }
grep -q "^0xF028 " "$tmp/cams/HBNASLSCFC1MN4Y9221A.ioctl"
timeout -k 30 -s INT 3 bash scripts/tutk --fake -q stream -d HBNASLSCFC1MN4Y9221A -u admin -f "$tmp/out.h264" || true
gst-launch-1.0 -q filesrc location="$tmp/out.h264" ! h264parse ! avdec_h264 ! fakesink
[ "$(stat -c %s "$tmp/out.h264")" -gt 1000 ] || { echo "stream wrote too little"; exit 1; }
echo "scripts/tutk: scan, sync and stream work against the fake SDK"
