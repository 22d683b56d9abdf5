#!/usr/bin/env bash
# scripts/record against the simulated camera: segments are announced and play, the
# file limit holds, Ctrl-C (SIGINT) finishes the segment in progress, and a bad limit
# is refused with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export CAM_SKIP_SETUP=1
env -u CAM_URI bash scripts/record --sim --seconds 9 --location "$tmp/front" \
  --max-size-time 2s --max-files 2 | tee "$tmp/out.log"
[ "$(grep -c '^cam: segment ' "$tmp/out.log")" -ge 3 ]
files=$(find "$tmp/front" -name 'front-*.mp4' | sort)
[ "$(echo "$files" | wc -l)" -eq 2 ]
for f in $files; do
  gst-discoverer-1.0 "$f" > "$tmp/disc.log"
  grep -q "H.264" "$tmp/disc.log" && grep -q "AAC" "$tmp/disc.log"
done
# Settings from the environment, stopped by SIGINT as Ctrl-C would.
CAM_RECORD_DIR="$tmp/back" CAM_FORMAT=mkv CAM_MAX_SIZE_TIME=30s \
  env -u CAM_URI bash scripts/record --sim > "$tmp/int.log" &
pid=$!
for _ in $(seq 100); do grep -q "Ctrl-C stops" "$tmp/int.log" 2>/dev/null && break; sleep 0.2; done
sleep 5
kill -INT "$pid"
wait "$pid"
grep -q "^cam: segment $tmp/back/.*\.mkv" "$tmp/int.log"
mkv=$(find "$tmp/back" -name 'back-*.mkv')
[ -n "$mkv" ] && [ -z "$(find "$tmp/back" -name '*.partial')" ]
gst-discoverer-1.0 "$mkv" > "$tmp/disc.txt"
grep -q "A-Law" "$tmp/disc.txt"
# A bad limit: exit 1 with the reason, nothing recorded.
set +e
env -u CAM_URI bash scripts/record --sim --max-bytes 12XB --location "$tmp/bad" 2> "$tmp/bad.log"
code=$?
set -e
[ "$code" = 1 ] && grep -q 'unknown size unit' "$tmp/bad.log" && [ ! -e "$tmp/bad" ]
echo "record script: ok"
