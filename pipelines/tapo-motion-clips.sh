#!/bin/sh
# Keep clips of a Tapo camera's motion events with a person or an animal in them, until
# Ctrl-C: 5 s before the motion to 10 s after, cut from the camera's H.264 (no re-encoding),
# with a JPEG snapshot of the best detection, under $1 (default /var/lib/cams/front-clips).
# CAM_URI=rtsp://user@ip:554/stream2 (the small stream is plenty), CAMSRC_PASSWORD from the
# environment. RECORD=all keeps every motion event; LABELS=person,animal,car.
exec gst-launch-1.0 -e -m camsrc uri="${CAM_URI:?rtsp://user@192.168.1.20:554/stream2}" audio=false \
  ! motionclips location="${1:-/var/lib/cams/front-clips}" camera="${CAMERA:-front}" \
    record="${RECORD:-confirmed}" objects::labels="${LABELS:-person,animal}"
