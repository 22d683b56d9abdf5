#!/usr/bin/env bash
# scripts/restream against the simulated camera: ffprobe (a client that is not ours) sees
# the camera's H.264 and PCMA with a digest login and is refused without one; listening
# beyond loopback without a login is refused; Ctrl-C (SIGINT) stops it cleanly; the
# password is printed nowhere.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
export CAM_SKIP_SETUP=1
if env -u CAM_URI -u CAM_RTSP_AUTH bash scripts/restream --sim --bind 0.0.0.0 --port 0 > "$tmp/open.log" 2>&1; then
  echo "restream listened on 0.0.0.0 without a login"; cat "$tmp/open.log"; exit 1
fi
grep -q "CAM_RTSP_AUTH" "$tmp/open.log" || { cat "$tmp/open.log"; exit 1; }
export CAM_RTSP_AUTH='viewer:rtsp-Pass-9'
env -u CAM_URI bash scripts/restream --sim --port 0 --bind 127.0.0.1 > "$tmp/out.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1500); do grep -q "cam: re-streaming" "$tmp/out.log" && break; sleep 0.2; done
url=$(grep -o 'rtsp://127.0.0.1:[0-9]*/cam' "$tmp/out.log" | head -1)
[ -n "$url" ] || { cat "$tmp/out.log"; exit 1; }
login=${url/rtsp:\/\//rtsp://viewer:rtsp-Pass-9@}
# The first frames need a moment after the server is up.
for _ in $(seq 50); do
  timeout 20 ffprobe -v error -rtsp_transport tcp -show_entries stream=codec_name -of csv=p=0 "$login" > "$tmp/streams.txt" 2>&1 && break
  sleep 0.5
done
grep -qx "h264" "$tmp/streams.txt" && grep -qx "pcm_alaw" "$tmp/streams.txt" || { cat "$tmp/streams.txt" "$tmp/out.log"; exit 1; }
if timeout 20 ffprobe -v error -rtsp_transport tcp "$url" > "$tmp/noauth.txt" 2>&1; then
  echo "ffprobe got in without a login"; exit 1
fi
grep -q "401" "$tmp/noauth.txt" || { cat "$tmp/noauth.txt"; exit 1; }
kill -INT $pid
wait $pid
grep -q "RTSP client stream(s) served" "$tmp/out.log" || { cat "$tmp/out.log"; exit 1; }
! grep -q "rtsp-Pass-9" "$tmp/out.log"
echo "restream script: ok"
