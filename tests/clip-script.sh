#!/usr/bin/env bash
# scripts/clip against each kind of simulated camera, into each container: Kasa (G.711
# mu-law audio), Tapo (A-law) and TUTK through the fake SDK (mu-law), to .mp4 (the audio
# as AAC) and .mkv (the audio as sent). Every file holds H.264 and the camera's audio.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export CAM_SKIP_SETUP=1
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# The simulated Kasa camera (its own process, password admin).
kport=$(free_port)
KASA_SIM_PASSWORD=admin "$root/target/debug/kasa-sim" --port "$kport" > "$tmp/kasa.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null && break; sleep 0.1; done
# The fake TUTK SDK with one camera.
mkdir -p "$tmp/tutk"
printf 'uid = CLIPTEST0000000000A1\nip = 127.0.0.1\nport = 32761\nname = clip\nusername = admin\npassword = demo\naudio = g711u\n' > "$tmp/tutk/CLIPTEST0000000000A1.conf"

check() { # FILE AUDIO-NAME
  gst-discoverer-1.0 "$1" > "$tmp/disc.log"
  grep -q "H.264" "$tmp/disc.log" && grep -q "$2" "$tmp/disc.log" || {
    echo "clip $1: expected H.264 and $2:"; cat "$tmp/disc.log"; exit 1; }
}
for ext in mp4 mkv; do
  # Kasa: mu-law.
  CAM_PASSWORD=admin bash scripts/clip --uri "kasa://admin@127.0.0.1:$kport" --seconds 4 \
    --output "$tmp/kasa.$ext" > "$tmp/kasa-$ext.log"
  grep -q "^cam: recorded $tmp/kasa.$ext" "$tmp/kasa-$ext.log"
  check "$tmp/kasa.$ext" "$([ $ext = mp4 ] && echo AAC || echo Mu-Law)"
  # Tapo: A-law (the built-in simulated camera).
  env -u CAM_URI bash scripts/clip --sim --seconds 4 --output "$tmp/tapo.$ext" > "$tmp/tapo-$ext.log"
  check "$tmp/tapo.$ext" "$([ $ext = mp4 ] && echo AAC || echo A-Law)"
  # TUTK through the fake SDK: mu-law.
  TUTK_FAKE_DIR="$tmp/tutk" TUTK_LIBRARY_PATH="$root/target/debug/libtutk_fake_sdk.so" \
    CAM_PASSWORD=demo bash scripts/clip --uri tutk://admin@CLIPTEST0000000000A1 --seconds 4 \
    --output "$tmp/tutk.$ext" > "$tmp/tutk-$ext.log"
  check "$tmp/tutk.$ext" "$([ $ext = mp4 ] && echo AAC || echo Mu-Law)"
done
# No working folder left behind.
[ -z "$(find "$tmp" -maxdepth 1 -name '.cam-clip-*')" ]
# A name that is not a video file is refused before anything starts.
set +e
env -u CAM_URI bash scripts/clip --sim --seconds 2 --output "$tmp/x.avi" 2> "$tmp/bad.log"
code=$?
set -e
[ "$code" != 0 ] && grep -q "a .mkv or .mp4 file" "$tmp/bad.log"
echo "clip script: ok"
