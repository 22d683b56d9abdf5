#!/bin/sh
# Ring-record a Tapo camera until Ctrl-C: 60 s segments named by UTC start time under
# $1 (default /var/lib/cams/front), oldest deleted past 20 GB or 7 days; fragmented MP4
# with the audio as AAC. CAM_URI=rtsp://user@ip:554/stream1, CAMSRC_PASSWORD from the
# environment. MAX_SIZE_TIME, MAX_BYTES, MAX_AGE override the limits.
exec gst-launch-1.0 -e camsrc uri="${CAM_URI:?rtsp://user@192.168.1.20:554/stream1}" name=cam \
  ! ringrecorder name=rec location="${1:-/var/lib/cams/front}" \
    max-size-time="${MAX_SIZE_TIME:-60s}" max-bytes="${MAX_BYTES:-20GB}" max-age="${MAX_AGE:-7d}" \
  cam.audio ! rec.audio
