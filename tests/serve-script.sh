#!/usr/bin/env bash
# scripts/serve against the simulated camera: the page and snapshot answer over HTTP,
# viewers must log in when CAM_WEB_AUTH is set, and Ctrl-C (SIGINT) stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
export CAM_SKIP_SETUP=1 CAM_WEB_AUTH='viewer:w3b-pass'
env -u CAM_URI bash scripts/serve --sim --web-port 0 --bind 127.0.0.1 > "$tmp/out.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1500); do grep -q "cam: serving" "$tmp/out.log" && break; sleep 0.2; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/out.log" | head -1 | cut -d: -f3)
[ -n "$port" ] || { cat "$tmp/out.log"; exit 1; }
http() { # path, extra header line -> status line and headers
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'HEAD %s HTTP/1.1\r\nHost: cam\r\n%s\r\n' "$1" "$2" >&3
  timeout 5 sed '/^\r$/q' <&3 | tr -d '\r'
  exec 3<&-
}
# Frames need a moment after the server is up.
for _ in $(seq 50); do http /snapshot.jpg "Authorization: Basic $(printf viewer:w3b-pass | base64)
" | grep -q "200 OK" && break; sleep 0.2; done
http /snapshot.jpg "Authorization: Basic $(printf viewer:w3b-pass | base64)
" > "$tmp/ok.txt"
grep -q "^HTTP/1.1 200 OK" "$tmp/ok.txt" && grep -qi "^content-type: image/jpeg" "$tmp/ok.txt" || { cat "$tmp/ok.txt"; exit 1; }
http / "" > "$tmp/noauth.txt"
grep -q "^HTTP/1.1 401" "$tmp/noauth.txt" || { cat "$tmp/noauth.txt"; exit 1; }
http /stream.mjpeg "Authorization: Basic $(printf viewer:w3b-pass | base64)
" | grep -qi "^content-type: multipart/x-mixed-replace; boundary="
kill -INT $pid
wait $pid
grep -q "cam: served" "$tmp/out.log"
! grep -q "w3b-pass" "$tmp/out.log"
echo "serve script: ok"
