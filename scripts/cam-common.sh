# Sourced by the user scripts: set up once, build the `cam` tool, and run it.
# The camera: --uri URI or CAM_URI (rtsp://user@ip:554/stream1, kasa://user@ip,
# tutk://user@UID); the password: CAM_PASSWORD. Without one: the simulated Tapo camera.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cam_build() {
  if [ -z "${CAM_SKIP_SETUP:-}" ]; then bash "$root/scripts/setup" >&2; fi
  export PATH="$HOME/.cargo/bin:$PATH"
  # The simulated camera is a program of its own, beside `cam`.
  (cd "$root" && cargo build --release --quiet -p camtool -p tapo-sim)
}
cam_exec() {
  cam_build
  exec "$root/target/release/cam" "$@"
}
