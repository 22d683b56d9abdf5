#!/bin/sh
# Ring-record a TUTK/Kalay camera through camsrc (which rebuilds tutksrc if the camera
# stalls): 60 s fragmented-MP4 segments (G.711 audio as AAC), at most 20 GB and 7 days.
#   TUTK_LIBRARY_PATH=/opt/tutk/lib CAMSRC_PASSWORD=... CAM_URI=tutk://admin@UID pipelines/tutk-record.sh
exec gst-launch-1.0 -e camsrc uri="${CAM_URI:?tutk://admin@HBNASLSCFC1MN4Y9221A}" name=c \
  ! ringrecorder name=r location="${CAM_RECORD_DIR:-/var/lib/cams/tutk}" max-size-time=60s max-bytes=20GB max-age=7d \
  c.audio ! r.audio
