#!/usr/bin/env bash
# The README's main command, headless, against the built-in simulated camera.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
env -u KASA_IP -u DISPLAY -u WAYLAND_DISPLAY bash scripts/run --seconds 4 --output "$tmp/main.mkv" | tee "$tmp/out.log"
grep -q "stats: connected=true" "$tmp/out.log"
grep -q "recorded $tmp/main.mkv" "$tmp/out.log"
gst-discoverer-1.0 "$tmp/main.mkv" | grep -q "H.264"
